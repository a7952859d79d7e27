package kvassert

import (
	"context"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
)

// SharedCache lets the replicas of a service share tokens: a Credential
// consults it on a local miss and on refresh, so that one replica acquires
// each token and the others reuse it. It is never consulted on a local cache
// hit. Implementations must degrade, not fail: when the shared store is
// unavailable they call acquire themselves. Package fleet implements it on
// Redis.
type SharedCache interface {
	// Token returns the fleet's token for key, calling acquire (at most
	// once, in this replica) when this replica must get it: no usable
	// shared token, or the shared one is stale (the token the caller wants
	// replaced; zero for a plain miss) and no other replica has replaced it
	// yet. Errors are acquire's own, or ctx's.
	Token(ctx context.Context, key SharedKey, stale azcore.AccessToken, acquire func(context.Context) (azcore.AccessToken, error)) (azcore.AccessToken, error)

	// Refuse shares that Entra refused the app in a tenant: key names the
	// app and the tenant (ClientID, Authority, Tenant; the other fields
	// are empty). From then on no replica is served a token the fleet
	// stored for that tenant before, whatever its scope, and Refusal
	// reports r to every replica until r.Until.
	Refuse(ctx context.Context, key SharedKey, r TenantRefusal) error
	// Refusal returns the refusal in force for key's tenant (key as for
	// Refuse); ok is false when there is none or its Until has passed.
	Refusal(ctx context.Context, key SharedKey) (r TenantRefusal, ok bool, err error)
	// Forget ends the refusal of key's tenant at once (an administrator
	// consented) and drops every token the fleet stored for the tenant.
	Forget(ctx context.Context, key SharedKey) error
}

// TenantRefusal is Entra's refusal of the app in one tenant (an AADSTS
// code such as 700016, the app not found there), as the replicas of a
// service share it through a SharedCache so that none of them signs an
// assertion for that tenant again before Until.
type TenantRefusal struct {
	// Code is the AADSTS code of the refusal.
	Code int
	// Until is when the next token request for the tenant is allowed.
	Until time.Time
	// Failures counts the refusals in a row; it sets the back-off.
	Failures int
}

// SharedKey names one token in a SharedCache: the app (client ID and
// authority host), the tenant, the scope (scopes joined by spaces), the
// claims challenge, whether the token is CAE-capable, and the Source whose
// assertion obtained it. Every field is part of the identity of the token:
// implementations must never hand out a token stored under another key, and
// must not share a token whose key has no Source.
type SharedKey struct {
	// ClientID is the application (client) ID.
	ClientID string
	// Authority is the authority host, e.g. "login.microsoftonline.com".
	Authority string
	// Tenant is the tenant ID the token is for.
	Tenant string
	// Scope is the scope, or the scopes joined by single spaces.
	Scope string
	// Claims is the claims challenge the token answers; empty for none.
	Claims string
	// CAE reports whether the token was requested CAE-capable.
	CAE bool
	// Source is the identity of the credential that proves the app's key
	// (CredentialOptions.SharedCache): the vault and certificate, the key and its
	// certificate, the managed identity, or the local certificate's
	// thumbprint. A credential is served only tokens that its own Source
	// obtained, so a certificate that is not (or no longer) registered on
	// the app never gets a token another replica's Source got.
	Source string
}
