package kvassert

import (
	"context"
	"fmt"
	"hash/maphash"

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

type clientKey struct {
	slot int
	cae  bool
}

// msalPoolSize is the number of MSAL clients a credential spreads tenants
// over (for each of CAE and non-CAE), so that no one client's lock or
// per-tenant state serves every tenant.
const msalPoolSize = 64

// msalTenantsPerClient bounds the tenants one pooled MSAL client has served:
// MSAL keeps each tenant's endpoints (about 0.5 KB) for the life of the
// client, so a client that reaches it is replaced by a new one, and the pool
// holds at most 64 x 64 tenants' endpoints per CAE setting. With derived
// discovery (the default) a new client costs no network call; with
// FetchOpenIDConfiguration it fetches each tenant's configuration again.
const msalTenantsPerClient = 64

// msalClient returns the pooled MSAL client for tenant. The clients keep no
// tokens (noTokenCache): the credential's cache is in front of them.
func (c *Credential) msalClient(tenant string, cae bool) (*confidential.Client, error) {
	k := clientKey{slot: int(maphash.String(c.cache.seed, tenant) % msalPoolSize), cae: cae}
	c.clientsMu.Lock()
	defer c.clientsMu.Unlock()
	s := c.clients[k]
	if s != nil && s.serve(tenant) {
		return s.client, nil
	}
	cred, err := NewMSALCredential(c.src)
	if err != nil {
		return nil, err
	}
	opts := []confidential.Option{confidential.WithHTTPClient(c.http), confidential.WithInstanceDiscovery(false), confidential.WithCache(noTokenCache{})}
	if cae {
		opts = append(opts, confidential.WithClientCapabilities([]string{"cp1"}))
	}
	cl, err := confidential.New(c.host+c.home, c.clientID, cred, opts...)
	if err != nil {
		return nil, fmt.Errorf("kvassert: %w", err)
	}
	s = &msalSlot{client: &cl, tenants: map[string]struct{}{}}
	s.serve(tenant)
	c.clients[k] = s
	return s.client, nil
}
