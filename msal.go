package kvassert

import (
	"context"
	"errors"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"
)

// NewMSALCredential adapts a Source to MSAL Go: pass the result to
// confidential.New. MSAL calls it on every token request it sends to the
// network, with the token endpoint of the tenant it is talking to, which
// becomes the assertion's aud, so confidential.WithTenantID works per tenant.
// MSAL caches the tokens; the assertion is made only on a cache miss.
func NewMSALCredential(src Source) (confidential.Credential, error) {
	if src == nil {
		return confidential.Credential{}, errors.New("kvassert: nil Source")
	}
	return confidential.NewCredFromAssertionCallback(func(ctx context.Context, o confidential.AssertionRequestOptions) (string, error) {
		return src.Assertion(ctx, o.ClientID, o.TokenEndpoint)
	}), nil
}
