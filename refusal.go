package kvassert

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kvassert/kvassert/internal/entraid"
	"github.com/kvassert/kvassert/internal/rootaccess"
)

// This file holds the credential's negative cache: the tenants (or, for
// per-resource codes, the tenant's resources) that Entra refused with a
// code that a retry cannot fix at once (internal/entraid.TenantRefusal).
// Until a refusal's back-off ends, GetToken fails fast with the remembered
// *AuthError: no assertion, no Key Vault sign, no token request. Then one
// request tries again; a success clears the refusal. A tenant that worked
// and is then refused because the customer removed or disabled the app is
// offboarded: its tokens are evicted and the transition is reported once.

// refusalKey names a remembered refusal: a tenant (scope empty) or, for a
// PerResource code, one scope of it.
type refusalKey struct{ tenant, scope string }

// refusal is one remembered refusal. Its fields other than the atomic
// ones never change after it is stored: a new refusal replaces it.
type refusal struct {
	ae       AuthError // Entra's classified answer (rebuilt from the code when another replica saw it)
	until    time.Time // no request before
	failures int       // refusals in a row: the back-off
	seq      uint64    // negativeCache.seq when it was remembered
	// trying is set for the one request that tries again once until has
	// passed; the others keep failing fast until it returns.
	trying atomic.Bool
	// shared is set when the SharedCache holds the refusal (this replica's
	// Refuse succeeded, or it was read from there): ForgetTenant on another
	// replica deletes it there, so a request that fails fast asks the
	// SharedCache again, at most once per sharedRefusalRecheck (checked:
	// the c.now() UnixNano of the last question, or of remembering).
	shared  atomic.Bool
	checked atomic.Int64
}

// remembered is the error of a request refused from memory.
func (r *refusal) remembered() *AuthError {
	ae := r.ae
	ae.RefusedUntil = r.until.UTC()
	return &ae
}

// negativeCache holds a credential's remembered refusals and the tenants
// that worked (got a token since they were last offboarded).
type negativeCache struct {
	n      atomic.Int32 // len(m): a miss checks it before locking
	mu     sync.Mutex
	m      map[refusalKey]*refusal
	worked map[string]struct{}
	// seq orders refusals and ForgetTenant calls against acquisitions: an
	// acquisition reads it when it starts, so that an answer to a request
	// sent before a refusal (or before ForgetTenant) does not undo it.
	seq    atomic.Uint64
	forgot map[string]uint64 // tenant: seq of its last ForgetTenant
	// alias and domains are the names learned to be one tenant
	// (refusal_alias.go): domain -> GUID, and GUID -> its domains.
	alias   map[string]string
	domains map[string]map[string]struct{}
}

// The negative cache is bounded: with AdditionallyAllowedTenants "*" the
// tenants are the callers' choice. At maxRefusals, a new refusal first
// drops the refusals whose back-off has ended, then the one ending first;
// at maxWorked tenants that worked, any one is forgotten (it is then not
// reported if it is offboarded; its refusal is still remembered).
const (
	maxRefusals = 4096
	maxWorked   = 1 << 16
)

// put stores r for k within maxRefusals. n.mu is held.
func (n *negativeCache) put(k refusalKey, r *refusal, now time.Time) {
	if _, ok := n.m[k]; !ok && len(n.m) >= maxRefusals {
		var first refusalKey
		var firstUntil time.Time
		for key, old := range n.m {
			if !now.Before(old.until) {
				delete(n.m, key)
				continue
			}
			if firstUntil.IsZero() || old.until.Before(firstUntil) {
				first, firstUntil = key, old.until
			}
		}
		if len(n.m) >= maxRefusals {
			delete(n.m, first)
		}
	}
	n.m[k] = r
	n.n.Store(int32(len(n.m)))
}

// Refusals are remembered from refusalBase, doubling with jitter, up to
// CredentialOptions.RefusedTenantRetry (defaultRefusedTenantRetry).
const (
	refusalBase               = 5 * time.Second
	defaultRefusedTenantRetry = time.Hour
	// sharedRefusalTimeout bounds a SharedCache's Refuse and Refusal.
	sharedRefusalTimeout = 5 * time.Second
	// sharedRefusalRecheck is how often a replica asks the SharedCache
	// whether a shared refusal it fails fast with is still in force.
	sharedRefusalRecheck = 10 * time.Second
)

// refusalBackoff is the back-off after failures refusals in a row: base,
// doubling, plus up to 50 % jitter, never above max (however large: no
// step overflows).
func refusalBackoff(failures int, maxWait time.Duration) time.Duration {
	d := min(refusalBase, maxWait)
	for i := 1; i < failures && d < maxWait; i++ {
		if d > maxWait/2 {
			d = maxWait
			break
		}
		d *= 2
	}
	if d <= 0 {
		return d
	}
	if j := rand.N(d/2 + 1); j < maxWait-d {
		return d + j
	}
	return maxWait
}

// checkRefusal returns the remembered refusal a request for (tenant,
// scope) must fail with, or nil. When the back-off has ended, the first
// caller gets trial (the refusal whose one retry it carries; reset its
// trying flag when the request returns) and the others keep failing fast.
// Before the back-off ends, a shared tenant refusal is checked against the
// SharedCache now and then (recheck): gone there, it is dropped here and
// the request proceeds. A domain whose tenant's GUID is refused (the GUID
// learned from an earlier token's tid) fails fast with that refusal while
// it is in force (refusal_alias.go).
func (c *Credential) checkRefusal(ctx context.Context, tenant, scope string) (err *AuthError, trial *refusal) {
	if c.neg.n.Load() == 0 {
		return nil, nil
	}
	c.neg.mu.Lock()
	tr := c.neg.m[refusalKey{tenant: tenant}]
	r := tr
	if rs := c.neg.m[refusalKey{tenant: tenant, scope: scope}]; rs != nil && (r == nil || rs.until.After(r.until)) {
		r = rs
	}
	gr, guid := c.neg.guidRefusal(tenant)
	c.neg.mu.Unlock()
	now := c.now()
	if gr != nil && now.Before(gr.until) && (r == nil || gr.until.After(r.until)) {
		if gr.shared.Load() {
			if gr = c.recheck(ctx, guid, gr, now); gr == nil {
				return c.checkRefusal(ctx, tenant, scope) // forgotten in the fleet: the domain's own
			}
		}
		ae := gr.remembered()
		ae.Tenant = tenant
		return ae, nil
	}
	if r == nil {
		return nil, nil
	}
	if now.Before(r.until) {
		if r == tr && r.shared.Load() {
			if r = c.recheck(ctx, tenant, r, now); r == nil {
				return nil, nil // forgotten in the fleet
			}
		}
		return r.remembered(), nil
	}
	if !r.trying.CompareAndSwap(false, true) {
		return r.remembered(), nil
	}
	return nil, r
}

// recheck asks the SharedCache whether r, tenant's shared refusal in
// force, still is, when sharedRefusalRecheck has passed since it was last
// asked; one caller asks, the others fail fast meanwhile. It returns the
// refusal to fail with: r, or a later one another replica shared; nil
// when the SharedCache has none (ForgetTenant on another replica, or it
// lapsed there): then r is dropped here. A SharedCache error keeps r.
func (c *Credential) recheck(ctx context.Context, tenant string, r *refusal, now time.Time) *refusal {
	last := r.checked.Load()
	if now.UnixNano()-last < int64(sharedRefusalRecheck) || !r.checked.CompareAndSwap(last, now.UnixNano()) {
		return r
	}
	start := c.neg.seq.Load()
	var sr TenantRefusal
	var found bool
	if c.sharedCall(ctx, "Refusal", func(ctx context.Context) (err error) {
		sr, found, err = c.shc.Refusal(ctx, c.tenantKey(tenant))
		return err
	}) != nil {
		return r
	}
	if rr, _ := entraid.TenantRefusal(sr.Code); found && rr.Local {
		return r // not a refusal this replica follows
	}
	now = c.now()
	gone := !found || !now.Before(sr.Until)
	if !gone && (sr.Code != r.ae.Code || !sr.Until.After(r.until)) {
		return r // the same refusal (or an earlier end: ours stands)
	}
	k := refusalKey{tenant: tenant}
	c.neg.mu.Lock()
	defer c.neg.mu.Unlock()
	if c.neg.m[k] != r || c.neg.forgot[tenant] > start {
		// Replaced or forgotten meanwhile: the next call sees that.
		return r
	}
	if gone {
		delete(c.neg.m, k)
		c.neg.n.Store(int32(len(c.neg.m)))
		return nil
	}
	later := &refusal{ae: r.ae, until: c.sharedUntil(sr.Until, now), failures: max(sr.Failures, r.failures), seq: c.neg.seq.Add(1)}
	later.shared.Store(true)
	later.checked.Store(now.UnixNano())
	c.neg.put(k, later, now)
	return later
}

// refusedHere reports whether key's tenant, or key's resource in it, has
// a refusal here: the acquisition is the one retry after its back-off
// (checkRefusal lets no other through). That retry asks Entra and takes no
// token from the SharedCache: a token the fleet stored for the tenant
// before the refusal is unservable only while the SharedCache's epoch
// moved and stayed moved, which it did not when this replica's Refuse
// failed, or when Redis lost it (a failover to a lagging replica) or
// someone wrote the old epoch back.
func (c *Credential) refusedHere(key cacheKey) bool {
	if c.neg.n.Load() == 0 {
		return false
	}
	c.neg.mu.Lock()
	defer c.neg.mu.Unlock()
	return c.neg.m[refusalKey{tenant: key.tenant}] != nil || c.neg.m[refusalKey{tenant: key.tenant, scope: key.scope}] != nil
}

// endTrial ends the retry a caller of checkRefusal carried.
func endTrial(trial *refusal) {
	if trial != nil {
		trial.trying.Store(false)
	}
}

// noteSuccess clears the refusals a token for key disproves, marks its
// tenant as one that worked and runs store (which caches the token), all
// under neg.mu: a refusal or ForgetTenant evicts the tenant's tokens after
// releasing neg.mu, so a token is either stored before that eviction or
// not at all. It returns false, changing nothing, when the tenant was
// refused or forgotten after the acquisition started (start: neg.seq
// then): the token was issued before the customer removed the app, or
// before its tokens were dropped, and must not be cached.
//
// tid, when not empty, is the GUID the token names for key's tenant (a
// domain): the alias is learned. A tenant refusal of another name of the
// tenant remembered after the acquisition started also keeps the token out
// of the cache (its eviction ran or runs after releasing neg.mu).
func (c *Credential) noteSuccess(key cacheKey, start uint64, tid string, store func()) bool {
	c.neg.mu.Lock()
	defer c.neg.mu.Unlock()
	if c.neg.forgot[key.tenant] > start {
		return false
	}
	if tid != "" {
		// Learned first: a token that teaches the alias is checked
		// against the GUID's refusals too.
		c.neg.learn(key.tenant, tid)
	}
	for _, name := range c.neg.names(key.tenant)[1:] {
		if r := c.neg.m[refusalKey{tenant: name}]; r != nil && r.seq > start {
			return false
		}
	}
	if c.neg.n.Load() != 0 {
		tk, sk := refusalKey{tenant: key.tenant}, refusalKey{tenant: key.tenant, scope: key.scope}
		for _, k := range []refusalKey{tk, sk} {
			if r := c.neg.m[k]; r != nil && r.seq > start {
				return false
			}
		}
		delete(c.neg.m, tk)
		delete(c.neg.m, sk)
		c.neg.n.Store(int32(len(c.neg.m)))
	}
	if _, ok := c.neg.worked[key.tenant]; !ok {
		if len(c.neg.worked) >= maxWorked {
			for t := range c.neg.worked { // any one: map order is random
				delete(c.neg.worked, t)
				break
			}
		}
		c.neg.worked[key.tenant] = struct{}{}
	}
	store()
	return true
}

// noteRefusal remembers err when it is a refusal of the tenant (or of key's
// resource in it), shares it through the SharedCache, and offboards a
// tenant that worked when the code says the customer removed or disabled
// the app. start is neg.seq when the acquisition started: a refusal of a
// request sent before ForgetTenant is not remembered. It returns nothing:
// the caller returns err as it is.
func (c *Credential) noteRefusal(ctx context.Context, key flightKey, start uint64, err error) {
	var ae *AuthError
	if !errors.As(err, &ae) || !ae.RefusedUntil.IsZero() {
		return // not Entra's answer (or a refusal remembered already)
	}
	rr, ok := entraid.TenantRefusal(ae.Code)
	if !ok || ae.StatusCode >= 500 || ae.StatusCode == 429 {
		// Not a refusal, or not a final one: a code in a 5xx or 429
		// answer (an outage, throttling, a proxy) says nothing lasting.
		return
	}
	k := refusalKey{tenant: key.tenant}
	if rr.PerResource {
		k.scope = key.scope
	}
	now := c.now()
	c.neg.mu.Lock()
	if c.neg.forgot[key.tenant] > start {
		c.neg.mu.Unlock()
		return
	}
	r := &refusal{ae: *ae, failures: 1, until: now}
	r.ae.RefusedUntil = time.Time{}
	r.checked.Store(now.UnixNano())
	prev := c.neg.m[k]
	remember := c.refusalMax > 0
	switch {
	case prev != nil && now.Before(prev.until):
		// Another acquisition for the tenant (another scope), sent before
		// the refusal was remembered, was refused as well: the same
		// refusal, already remembered and shared.
		r, remember = prev, false
	case remember:
		if prev != nil {
			r.failures = prev.failures + 1
		}
		r.until = now.Add(refusalBackoff(r.failures, c.refusalMax))
		r.seq = c.neg.seq.Add(1)
		c.neg.put(k, r, now)
	}
	// The tokens go whether or not the tenant is still in the bounded
	// set of tenants that worked; the report needs it.
	names, offboard := c.neg.offboard(key.tenant, rr)
	c.neg.mu.Unlock()
	evicted := 0
	if rr.Offboarded {
		evicted = c.removeNames(names)
	}
	if c.shc != nil && !rr.PerResource && !rr.Local && (remember || rr.Offboarded) {
		// Other replicas fail fast too, and no replica is served a token
		// the fleet stored for the tenant before.
		if c.sharedCall(ctx, "Refuse", func(ctx context.Context) error {
			return c.shc.Refuse(ctx, c.tenantKey(key.tenant), TenantRefusal{Code: ae.Code, Until: r.until, Failures: r.failures})
		}) == nil {
			r.shared.Store(true)
		}
	}
	if c.shc != nil && rr.Offboarded && len(names) > 1 {
		c.shareOffboarding(ctx, names, TenantRefusal{Code: ae.Code, Until: r.until, Failures: r.failures})
	}
	if offboard {
		c.reportOffboarded(key.tenant, rr, r, evicted)
	}
}

// sharedRefusal consults the SharedCache for a refusal of key's tenant
// that another replica saw; it returns the error to fail with, or nil (no
// refusal, or the shared cache failed: then the request proceeds). start
// is neg.seq when the acquisition started.
func (c *Credential) sharedRefusal(ctx context.Context, key flightKey, start uint64) *AuthError {
	var sr TenantRefusal
	var found bool
	_ = c.sharedCall(ctx, "Refusal", func(ctx context.Context) (err error) {
		sr, found, err = c.shc.Refusal(ctx, c.tenantKey(key.tenant))
		return err
	})
	rr, known := entraid.TenantRefusal(sr.Code)
	now := c.now()
	if !found || !known || rr.PerResource || rr.Local || !now.Before(sr.Until) {
		// A Local refusal (53003) is never shared; one in the cache comes
		// from an older kvassert: this replica asks Entra for itself.
		return nil
	}
	r := &refusal{until: c.sharedUntil(sr.Until, now), failures: max(sr.Failures, 1), ae: AuthError{
		Tenant: key.tenant, Code: sr.Code, Description: describeCode(sr.Code),
		Hint: hintText(sr.Code, key.tenant, c.clientID, c.host),
	}}
	if c.refusalMax <= 0 {
		// Not remembered here: the request goes to Entra.
		return nil
	}
	k := refusalKey{tenant: key.tenant}
	c.neg.mu.Lock()
	if c.neg.forgot[key.tenant] > start {
		// Read before ForgetTenant reached the shared cache.
		c.neg.mu.Unlock()
		return nil
	}
	r.seq = c.neg.seq.Add(1)
	r.shared.Store(true)
	r.checked.Store(now.UnixNano())
	c.neg.put(k, r, now)
	names, offboard := c.neg.offboard(key.tenant, rr)
	c.neg.mu.Unlock()
	if rr.Offboarded {
		if evicted := c.removeNames(names); offboard {
			c.reportOffboarded(key.tenant, rr, r, evicted)
		}
	}
	return r.remembered()
}

// sharedUntil is the end of a refusal read from the SharedCache at now:
// its Until, but at most RefusedTenantRetry away, so that a far-future
// Until (a SharedCache's bug, a replica with a longer RefusedTenantRetry
// or a skewed clock) is followed only while rechecks confirm it.
func (c *Credential) sharedUntil(until, now time.Time) time.Time {
	if c.refusalMax > 0 && until.After(now.Add(c.refusalMax)) {
		return now.Add(c.refusalMax)
	}
	return until
}

// sharedCall runs one call of the SharedCache's refusal methods, bounded by
// ctx and sharedRefusalTimeout, recovering its panic; a failure is logged at
// debug level and returned (callers other than ForgetTenant ignore it: the
// shared cache degrades).
func (c *Credential) sharedCall(ctx context.Context, what string, call func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, sharedRefusalTimeout)
	defer cancel()
	err := func() (err error) {
		defer func() {
			if v := recover(); v != nil {
				pe := &PanicError{What: "SharedCache " + what, Value: v, Stack: debug.Stack()}
				c.logPanic(pe)
				err = pe
			}
		}()
		return call(ctx)
	}()
	if err != nil {
		c.logger.Debug("kvassert: the shared cache's "+what+" failed; continuing without it", "error", err)
	}
	return err
}

// tenantKey names tenant in the SharedCache's refusal methods.
func (c *Credential) tenantKey(tenant string) SharedKey {
	return SharedKey{ClientID: c.clientID, Authority: c.authority(), Tenant: tenant}
}

// reportOffboarded reports once that a tenant that worked is refused now:
// a warning, the kvassert.tenant.state metric and the TenantOffboarded
// callback (in its own goroutine, its panic recovered).
func (c *Credential) reportOffboarded(tenant string, rr entraid.Refusal, r *refusal, evicted int) {
	next := "not remembered"
	if c.refusalMax > 0 {
		next = r.until.UTC().Format(time.RFC3339)
	}
	c.logger.Warn("kvassert: Entra refuses the app in a tenant where it had tokens: the customer removed or disabled it; its cached tokens were evicted",
		"tenant", tenant, "aadsts", rr.Code, "reason", rr.Reason, "evicted_tokens", evicted, "next_try", next)
	c.tel.TenantState(tenant, rr.Reason)
	if c.onOffboarded == nil {
		return
	}
	ae := r.remembered()
	if c.refusalMax <= 0 {
		ae.RefusedUntil = time.Time{}
	}
	go func() {
		defer func() {
			if v := recover(); v != nil {
				c.logPanic(&PanicError{What: "TenantOffboarded callback", Value: v, Stack: debug.Stack()})
			}
		}()
		c.onOffboarded(tenant, ae)
	}()
}

// ForgetTenant removes every token of tenant from the credential's cache
// and from its SharedCache, and forgets Entra's refusals of the tenant, so
// that the next GetToken for it goes to Entra at once: call it after an
// administrator of the tenant consented to the app (or enabled it again),
// or to drop a customer's tokens. tenant is a tenant ID or domain the
// credential allows; the other names the credential knows for the tenant
// (its GUID and the domains whose tokens named it) are forgotten too. The memory cache is cleared even when the SharedCache
// fails; the error then says so. A token whose request was sent before
// ForgetTenant and answered after it goes to its callers but is not cached.
//
// With a SharedCache, one call on any replica is enough: it deletes the
// tenant's shared refusal and tokens, and every other replica that fails
// fast on the refusal it remembered from the SharedCache finds it gone
// there within 10 seconds (it asks again at most that often) and sends
// its next request to Entra. A replica whose refusal never reached the
// SharedCache (its Refuse failed) keeps it until its back-off ends or
// ForgetTenant is called on it.
func (c *Credential) ForgetTenant(ctx context.Context, tenant string) error {
	if ctx == nil {
		return inputErr("ctx", "ctx is a nil context")
	}
	if tenant == "" {
		return inputErr("tenant", "empty tenant: name the tenant whose tokens to forget")
	}
	t, err := c.resolveTenant(tenant)
	if err != nil {
		return err
	}
	// Every known name of the tenant (its GUID, its domains: learned from
	// the tid of the tokens acquired for a domain).
	c.neg.mu.Lock()
	names := c.neg.names(t)
	c.neg.mu.Unlock()
	// The shared cache first: a replica's acquisition that starts after
	// the memory is cleared must not find the refusal there (one that
	// read it before is told by forgot).
	var shared error
	if c.shc != nil {
		for _, name := range names {
			if err := c.sharedCall(ctx, "Forget", func(ctx context.Context) error {
				return c.shc.Forget(ctx, c.tenantKey(name))
			}); err != nil && shared == nil {
				shared = err
			}
		}
	}
	c.neg.mu.Lock()
	for k := range c.neg.m {
		if slices.Contains(names, k.tenant) {
			delete(c.neg.m, k)
		}
	}
	if len(c.neg.forgot)+len(names) > maxRefusals {
		// Only acquisitions in flight (AcquireTimeout) need it.
		clear(c.neg.forgot)
	}
	seq := c.neg.seq.Add(1)
	for _, name := range names {
		c.neg.forgot[name] = seq
	}
	c.neg.n.Store(int32(len(c.neg.m)))
	c.neg.mu.Unlock()
	c.removeNames(names)
	if shared != nil {
		return fmt.Errorf("kvassert: tenant %s forgotten in memory, but not in the shared cache: %w", t, shared)
	}
	return nil
}

// authority is the authority host without scheme and slash.
func (c *Credential) authority() string {
	return strings.TrimSuffix(strings.TrimPrefix(c.host, "https://"), "/")
}

// This module's tenants package reads a credential's remembered refusals
// through internal/rootaccess.
func init() {
	rootaccess.RegisterRefusals(func(cred any, tenant string) (rootaccess.Refusal, bool) {
		c := cred.(*Credential)
		c.neg.mu.Lock()
		r := c.neg.m[refusalKey{tenant: lowerASCII(tenant)}]
		c.neg.mu.Unlock()
		if r == nil || !c.now().Before(r.until) {
			return rootaccess.Refusal{}, false
		}
		return rootaccess.Refusal{Code: r.ae.Code, Until: r.until, Failures: r.failures}, true
	})
}
