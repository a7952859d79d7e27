package kvassert

import (
	"context"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"
)

// NewMSALCredential adapts a Source to MSAL Go: pass the result to
// confidential.New. MSAL calls it on every token request it sends to the
// network, with the token endpoint of the tenant it is talking to, which
// becomes the assertion's aud, so confidential.WithTenantID works per tenant.
// MSAL caches the tokens; the assertion is made only on a cache miss.
//
// MSAL does not tell the Source what Entra answered. Wrap each
// AcquireTokenByCredential call in AcquireWithFeedback so that the Key Vault
// certificate source learns which certificate version Entra accepts and re-reads a rotated certificate;
// without it, a renewed certificate version that is not registered on the
// app yet makes token requests fail until it is registered, and a rotation
// is picked up only on the source's TTL.
func NewMSALCredential(src Source) (confidential.Credential, error) {
	if src == nil {
		return confidential.Credential{}, inputErr("src", "src is a nil Source")
	}
	return confidential.NewCredFromAssertionCallback(func(ctx context.Context, o confidential.AssertionRequestOptions) (string, error) {
		if err := ctx.Err(); err != nil {
			// The request was given up: no sign for it.
			return "", err
		}
		return src.Assertion(ctx, o.ClientID, o.TokenEndpoint)
	}), nil
}
