// Package kvassert gets app-only Microsoft Entra ID access tokens for a
// multi-tenant application in any tenant where it is consented, authenticated
// by a certificate whose private key never leaves Azure Key Vault or Managed
// HSM.
//
// A Source makes the client assertion that proves the app's identity:
//
//   - NewKeyVaultCertificateSource: a Key Vault certificate, read once and
//     cached; each assertion costs one keys/sign call. Rotation is picked up
//     on a TTL and at once when Entra rejects the old certificate.
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
)

// Source makes client assertions: signed JWTs that authenticate clientID at
// the token endpoint tokenEndpoint (which becomes the assertion's aud).
// Implementations are safe for concurrent use.
type Source interface {
	Assertion(ctx context.Context, clientID, tokenEndpoint string) (string, error)
}

// Invalidator is implemented by sources that cache a certificate which can
// rotate. Credentials call Invalidate when Entra rejects an assertion in a way
// that a rotated certificate explains (AADSTS700027, 7000274, 7000214,
// 7000277, 1000502) and then retry once.
type Invalidator interface {
	Invalidate()
}
