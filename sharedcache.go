package kvassert

import (
	"context"

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
