package kvassert

import (
	"context"
	"encoding/json"

	"github.com/kvassert/kvassert/internal/entraid"
	"github.com/kvassert/kvassert/internal/jwtassert"
)

// A tenant has several names: its GUID and its domains (the initial
// {name}.onmicrosoft.com and verified custom domains). The credential keys
// its token cache, its negative cache and its SharedCache keys by the name
// the caller used, and learns which names are one tenant from Entra's
// answers: the tid claim of a token acquired for a domain is the tenant's
// GUID. Those aliases make an offboarding, a refusal's eviction and
// ForgetTenant reach every known name of the tenant.
//
// The claims of a token are not verified here, so an alias is trusted only
// as far as a wrong one does no harm: a token is only ever served for the
// name it was acquired for; a refusal of the GUID makes calls by its
// domains fail fast (a domain whose answer named the GUID is that tenant,
// or its answers lie), but a refusal of a domain only evicts the GUID's
// tokens (a lying answer for a domain costs the GUID at most an extra
// token request, never a refusal it did not get); ForgetTenant of any name
// forgets the tokens and refusals of every name (an extra request at most).

// maxAliases bounds the learned domain -> GUID aliases (like maxWorked):
// with AdditionallyAllowedTenants "*" the domains are the callers' choice.
// maxDomains bounds the domains of one GUID (Entra allows a tenant
// thousands of verified domains; an app rarely names more than a few), so
// that one tenant's offboarding or ForgetTenant stays a few evictions and
// SharedCache calls.
const (
	maxAliases = 1 << 16
	maxDomains = 64
)

// tokenTenant returns the GUID a token acquired for tenant names as its
// tid, when tenant is a domain and the token is a JWT with a GUID tid;
// else "".
func tokenTenant(tenant, token string) string {
	if isGUID(tenant) {
		return ""
	}
	t, err := jwtassert.Parse(token)
	if err != nil {
		return "" // an opaque token: nothing to learn
	}
	var c struct {
		Tid string `json:"tid"`
	}
	if json.Unmarshal(t.RawClaims, &c) != nil || !isGUID(c.Tid) {
		return ""
	}
	return lowerASCII(c.Tid)
}

// isGUID reports whether s has the shape of a GUID
// (8-4-4-4-12 hexadecimal digits).
func isGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// learn remembers that domain names the tenant guid (the tid of a token
// Entra issued for domain), within maxAliases. n.mu is held.
func (n *negativeCache) learn(domain, guid string) {
	old, ok := n.alias[domain]
	if ok && old == guid {
		return
	}
	if n.alias == nil {
		n.alias, n.domains = map[string]string{}, map[string]map[string]struct{}{}
	}
	if ok {
		// The domain moved to another tenant (or an answer lied).
		n.unlink(domain, old)
	} else if len(n.alias) >= maxAliases {
		for d, g := range n.alias { // any one: map order is random
			n.unlink(d, g)
			break
		}
	}
	ds := n.domains[guid]
	if ds == nil {
		ds = map[string]struct{}{}
		n.domains[guid] = ds
	}
	if len(ds) >= maxDomains {
		for d := range ds { // any one
			delete(n.alias, d)
			delete(ds, d)
			break
		}
	}
	n.alias[domain] = guid
	ds[domain] = struct{}{}
}

// unlink forgets the alias domain -> guid. n.mu is held.
func (n *negativeCache) unlink(domain, guid string) {
	delete(n.alias, domain)
	if ds := n.domains[guid]; ds != nil {
		delete(ds, domain)
		if len(ds) == 0 {
			delete(n.domains, guid)
		}
	}
}

// names returns tenant and the other names known for its tenant: its GUID
// and the GUID's domains when tenant is a domain, the domains when it is a
// GUID. n.mu is held.
func (n *negativeCache) names(tenant string) []string {
	out := []string{tenant}
	if len(n.alias) == 0 {
		return out
	}
	guid := tenant
	if g, ok := n.alias[tenant]; ok {
		guid = g
		out = append(out, g)
	}
	for d := range n.domains[guid] {
		if d != tenant {
			out = append(out, d)
		}
	}
	return out
}

// guidRefusal returns the tenant refusal of the GUID that tenant (a
// domain) is known to name, with that GUID, or nil. n.mu is held.
func (n *negativeCache) guidRefusal(tenant string) (*refusal, string) {
	g, ok := n.alias[tenant]
	if !ok {
		return nil, ""
	}
	return n.m[refusalKey{tenant: g}], g
}

// offboard returns the names of tenant's tenant and whether a refusal rr
// of tenant offboards it: rr says the customer removed or disabled the app
// and one of the names got a token since it was last offboarded. Every
// name then leaves the set of tenants that worked, so that the transition
// is reported once per tenant, not once per name. n.mu is held.
func (n *negativeCache) offboard(tenant string, rr entraid.Refusal) ([]string, bool) {
	if !rr.Offboarded {
		return nil, false
	}
	names := n.names(tenant)
	worked := false
	for _, name := range names {
		if _, ok := n.worked[name]; ok {
			worked = true
			delete(n.worked, name)
		}
	}
	return names, worked
}

// removeNames evicts the tokens of every name in names and returns how
// many it evicted.
func (c *Credential) removeNames(names []string) int {
	return c.cache.removeTenant(names...)
}

// shareOffboarding makes the offboarding of names[0] reach the tokens the
// SharedCache holds under the tenant's other names, so that no replica is
// served one: a refused GUID's refusal is shared under each of its domains
// too (they fail fast fleet-wide, as here); a refused domain's other names
// are forgotten there (Forget: their shared tokens are no longer served;
// a refusal of theirs is dropped, which costs at most a request, since the
// domain's tid could lie). Failures degrade, as for the refusal itself.
func (c *Credential) shareOffboarding(ctx context.Context, names []string, tr TenantRefusal) {
	byGUID := isGUID(names[0])
	for _, name := range names[1:] {
		if byGUID {
			_ = c.sharedCall(ctx, "Refuse", func(ctx context.Context) error {
				return c.shc.Refuse(ctx, c.tenantKey(name), tr)
			})
			continue
		}
		_ = c.sharedCall(ctx, "Forget", func(ctx context.Context) error {
			return c.shc.Forget(ctx, c.tenantKey(name))
		})
	}
}
