package kvassert

import (
	"context"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/cache"
	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"
)

// msalSlot is one pooled MSAL client and the tenants it has served.
type msalSlot struct {
	client  *confidential.Client
	tenants map[string]struct{}
}

// serve records tenant as served by the slot's client and reports whether
// the client may serve it: false when it is a new tenant and the client has
// served msalTenantsPerClient already. The caller holds clientsMu.
func (s *msalSlot) serve(tenant string) bool {
	if _, ok := s.tenants[tenant]; ok {
		return true
	}
	if len(s.tenants) >= msalTenantsPerClient {
		return false
	}
	s.tenants[tenant] = struct{}{}
	return true
}

// emptyMSALCache is the serialised form of an empty MSAL cache.
var emptyMSALCache = []byte("{}")

// noTokenCache is the MSAL cache accessor of the credential's pooled
// clients: MSAL calls Replace before it reads its token cache and before it
// writes a new token, and Replace empties the cache. So MSAL never answers
// from its cache (the credential's own cache, which refreshes ahead, is in
// front): every AcquireTokenByCredential goes to the network, which means a
// failed refresh is reported instead of MSAL handing back the old token, and
// each client holds at most the one token it wrote last instead of every
// tenant's. MSAL calls Replace under its accessor lock, never across a
// network call.
type noTokenCache struct{}

// Replace empties MSAL's in-memory token cache.
func (noTokenCache) Replace(_ context.Context, c cache.Unmarshaler, _ cache.ReplaceHints) error {
	return c.Unmarshal(emptyMSALCache)
}

// Export keeps nothing.
func (noTokenCache) Export(context.Context, cache.Marshaler, cache.ExportHints) error { return nil }
