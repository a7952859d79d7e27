// Package kvassert gets app-only Microsoft Entra ID access tokens for a
// multi-tenant application in any tenant where it is consented, authenticated
// by a certificate whose private key never leaves Azure Key Vault or Managed
// HSM.
//
// A Source makes the client assertion that proves the app's identity:
//
//   - NewKeyVaultCertificateSource: a Key Vault certificate, read once and
//     cached; each assertion costs one keys/sign call. Rotation is picked up
//     on a TTL and at once when Entra rejects the old certificate; a renewed
//     version Entra refuses (not registered yet) is set aside while the
//     version it accepts is still valid (see Feedback).
//   - NewKeyVaultKeySource: a key ID plus the certificate (or its thumbprint)
//     given by the caller; needs only keys/sign and makes no lookups.
//   - NewManagedIdentitySource: a managed identity token used as a federated
//     identity credential (no certificate at all).
//   - NewLocalSource / LoadCertificateFiles: a local key, for development.
//
// A Source plugs into MSAL Go (NewMSALCredential) or becomes an
// azcore.TokenCredential for every Azure SDK for Go client and the Microsoft
// Graph SDK (NewCredential), with tokens cached per tenant, scope and claims,
// concurrent misses merged, and refresh ahead of expiry.
package kvassert

import (
	"context"
	"time"
)

// Source makes client assertions: signed JWTs that authenticate clientID at
// the token endpoint tokenEndpoint (which becomes the assertion's aud).
// Implementations are safe for concurrent use.
type Source interface {
	Assertion(ctx context.Context, clientID, tokenEndpoint string) (string, error)
}

// Feedback is implemented by Sources that learn from Entra's answers to
// their assertions: the Key Vault certificate source uses them to remember
// which certificate version Entra accepts, so that a renewed version not yet
// registered on the app does not stop tokens, and to pick up a rotation
// without a restart.
//
// The credentials (NewCredential, and AcquireWithFeedback for MSAL users)
// call them after each token request for which the Source made an assertion
// and named its signer with NoteSigner. A Source that wraps another (for
// logging or metrics, as golang.org/x/oauth2 composes TokenSources) must
// pass the ctx of Assertion on unchanged (or derived) to the wrapped Source,
// and forward Accepted and Refused (and ThrottleReporter's ThrottledSince)
// to it; a wrapper that does not loses rotation handling and throttling
// diagnostics. See the Example for a wrapper that does.
type Feedback interface {
	// Accepted reports that Entra issued a token for a request
	// authenticated by an assertion that signer signed. It is called on
	// the token path, so it must be cheap.
	Accepted(signer string)
	// Refused reports that Entra refused an assertion that signer signed
	// with an AADSTS code that a rotated, unregistered or revoked
	// certificate explains (700027, 7000274, 7000214, 7000277, 1000502).
	// It returns true when the Source now signs with something else, so
	// that one retry may succeed. It may block (re-reading a certificate),
	// within ctx.
	Refused(ctx context.Context, signer string, code int) (retry bool)
}

// ThrottleReporter is implemented by Sources that sign in Key Vault, so that
// a caller whose deadline passes learns that the vault was throttling.
// Wrappers forward it (see Feedback).
type ThrottleReporter interface {
	// ThrottledSince reports whether Key Vault is throttling the Source's
	// signs now, and since when.
	ThrottledSince() (time.Time, bool)
}
