package kvclient

import (
	"context"
	"runtime/debug"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/kvassert/kvassert/internal/flight"
)

// guardedCredential is the vault's credential as this package's clients
// use it: a panic in its GetToken becomes a *flight.PanicError (what
// kvassert.PanicError names). azcore's bearer policy is not panic-safe: a
// panic while it acquires a token leaves its token state "being acquired"
// for good, so every later request of that client would wait forever (the
// credential's acquisitions then all ended at AcquireTimeout).
type guardedCredential struct{ cred azcore.TokenCredential }

// GetToken calls the wrapped credential, recovering its panic. Its errors
// are *CredentialError: the credential's own text is not kept (azidentity
// and MSAL quote the token endpoint's answer, a malformed 200 included).
func (g guardedCredential) GetToken(ctx context.Context, o policy.TokenRequestOptions) (tok azcore.AccessToken, err error) {
	defer func() {
		if r := recover(); r != nil {
			tok, err = azcore.AccessToken{}, &flight.PanicError{What: "the vault's credential", Value: r, Stack: debug.Stack()}
		}
		if err != nil {
			// Only a CredentialError itself is kept: one wrapped in other
			// text would carry that text.
			if _, ok := err.(*CredentialError); !ok {
				err = newCredentialError(g.cred, err)
			}
		}
	}()
	return g.cred.GetToken(ctx, o)
}

// Guard wraps cred (nil stays nil) so that a panic in its GetToken
// becomes a *flight.PanicError and its errors *CredentialError.
func Guard(cred azcore.TokenCredential) azcore.TokenCredential {
	switch cred.(type) {
	case nil, guardedCredential:
		return cred
	}
	return guardedCredential{cred}
}
