package kvassert

import "github.com/kvassert/kvassert/internal/rootaccess"

// The accessors package tenants uses (internal/rootaccess/tenants.go).
func init() {
	rootaccess.RegisterTenants(func(cred any) rootaccess.Identity {
		c := cred.(*Credential)
		return rootaccess.Identity{ClientID: c.clientID, Home: c.home, AuthorityHost: c.host}
	}, func(cred any, tenant, scope string) bool {
		c := cred.(*Credential)
		e := c.cache.get(cacheKey{tenant: lowerASCII(tenant), scope: scope})
		return e != nil && c.now().UnixNano() < e.useUntil
	})
}
