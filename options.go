package kvassert

import (
	"log/slog"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/kvassert/kvassert/telemetry"
)

// CredentialOptions configure NewCredential.
type CredentialOptions struct {
	// ClientOptions for token requests: Cloud (its ActiveDirectoryAuthorityHost
	// selects the sovereign cloud), Transport, Retry, Logging. Requests go
	// through an azcore pipeline, so 429/5xx answers are retried. They are
	// also given to a built-in Source whose own ClientOptions were left
	// zero (its vault or managed identity clients), so that a transport
	// (an emulator's, a proxy) is given once; see NewCredential.
	policy.ClientOptions
	// AdditionallyAllowedTenants lists the tenants other than the home
	// tenant that GetToken may be asked for; "*" allows any tenant. A tenant
	// not allowed is refused before any network call.
	AdditionallyAllowedTenants []string
	// Logger receives a warning when a token's background refresh first
	// fails and when a tenant that worked is offboarded (TenantOffboarded),
	// and at debug level one line per token acquired, later
	// failures of that refresh and its recovery (default slog.Default()):
	// with a logger at INFO, only what an operator must act on is written.
	// It is also given to a built-in Source whose own Logger is nil.
	// Tokens and assertions are never logged.
	Logger *slog.Logger
	// AcquireTimeout bounds one token acquisition that callers share
	// (default 2 minutes); each caller still returns when its own context ends.
	AcquireTimeout time.Duration
	// FetchOpenIDConfiguration makes MSAL fetch each tenant's OpenID
	// configuration from the network before its first token request. By
	// default the credential answers that request itself from the documented
	// v2.0 endpoint layout ({authority host}/{tenant}/oauth2/v2.0/token), so a
	// new tenant costs one round trip (the token POST) instead of two; an
	// unknown tenant is then reported by the token endpoint (AADSTS90002).
	FetchOpenIDConfiguration bool
	// Telemetry selects where the credential's OpenTelemetry metrics and
	// spans go (default: the global providers; see package telemetry and
	// README "Observability"). Its TracerProvider is also given to the token
	// requests' azcore pipeline unless ClientOptions.TracingProvider is set.
	// It is also given to a built-in Source whose own Telemetry is zero.
	Telemetry telemetry.Options
	// SharedCache, when set, shares tokens with the other replicas of the
	// service (package fleet implements it on Redis). It is consulted only
	// on a local cache miss (once per replica and token: inside the single
	// flight) and on background refresh (so that one replica refreshes and
	// the others pick up its token); a cached GetToken never touches it.
	// Tokens for a claims challenge are acquired locally and not shared.
	// Entra's refusals of a tenant are shared too (RefusedTenantRetry):
	// before a request to Entra the credential asks it whether another
	// replica was refused there, and fails fast if so.
	// Tokens are shared only between credentials of the same Source
	// identity: every kvassert Source has one (and WrapSource forwards it);
	// a Source of your own names the credential its assertions prove with
	// a method SourceIdentity() string (the same in every replica, never a
	// secret, at most 1 KiB of UTF-8). NewCredential refuses a Source
	// without one.
	SharedCache SharedCache
	// RefusedTenantRetry is the longest time a tenant that Entra refused
	// with a code a retry cannot fix at once (the app not found or disabled
	// in the tenant, the tenant not found, a Conditional Access block; see
	// README "Customer tenants") is remembered: until then GetToken for it
	// fails fast with the remembered *AuthError (RefusedUntil set) and
	// signs no assertion. The back-off starts at 5 seconds and doubles,
	// with jitter, up to RefusedTenantRetry (default 1 hour); then one
	// request tries again (at Entra: the SharedCache's tokens are not
	// taken for it), and a token clears it, as ForgetTenant does.
	// With a SharedCache the refusal is shared with the other replicas,
	// and a replica failing fast on a refusal the SharedCache holds asks
	// it again at most once per 10 seconds (one read, by one caller; no
	// sign): when the refusal is gone there (ForgetTenant on any replica),
	// the replica drops its own and the call goes to Entra; a later Until
	// there is adopted, but never more than RefusedTenantRetry past the
	// read; a SharedCache error keeps the refusal. A refusal code in a
	// 5xx or 429 answer is transient and not remembered.
	// Negative: refusals are not remembered (every call goes to Entra).
	RefusedTenantRetry time.Duration
	// TenantOffboarded, when set, is called once when a tenant that worked
	// (the credential had tokens for it) is refused because the customer
	// removed or disabled the app (AADSTS700016, 7000112): the credential
	// then has evicted the tenant's tokens from its cache and from the
	// SharedCache, logged a warning and counted the kvassert.tenant.state
	// metric. It runs in a goroutine of its own (a panic in it is
	// recovered); err is the classified refusal. It is called again only
	// after the tenant worked again.
	TenantOffboarded func(tenant string, err *AuthError)
}
