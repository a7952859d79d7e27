package kvassert

import (
	"context"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// ForTenant returns a view of cred that asks for tokens in tenant whenever a
// request names no tenant. Clients that never set TokenRequestOptions.TenantID,
// such as the Microsoft Graph SDK, then work in a customer tenant; the view
// shares cred's cache. A request that names a tenant keeps it. The tenant
// must be allowed by cred (checked here, before any network call).
func ForTenant(cred *Credential, tenant string) (azcore.TokenCredential, error) {
	t, err := cred.resolveTenant(tenant)
	if err != nil {
		return nil, err
	}
	return tenantView{cred: cred, tenant: t}, nil
}

type tenantView struct {
	cred   *Credential
	tenant string
}

func (v tenantView) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	if opts.TenantID == "" {
		opts.TenantID = v.tenant
	}
	return v.cred.GetToken(ctx, opts)
}
