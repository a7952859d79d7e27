package kvassert_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/internal/credclock"
	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/internal/rootaccess"
	"github.com/kvassert/kvassert/internal/testfixture"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// memRefusals is a SharedCache that shares refusals in memory (tokens are
// acquired by each replica) and records its calls; fail and panics make
// its refusal methods fail.
type memRefusals struct {
	mu       sync.Mutex
	refusals map[kvassert.SharedKey]kvassert.TenantRefusal
	forgot   []kvassert.SharedKey
	lookups  int
	fail     error
	panics   bool
}

func newMemRefusals() *memRefusals {
	return &memRefusals{refusals: map[kvassert.SharedKey]kvassert.TenantRefusal{}}
}

func (m *memRefusals) Token(ctx context.Context, _ kvassert.SharedKey, _ azcore.AccessToken, acquire func(context.Context) (azcore.AccessToken, error)) (azcore.AccessToken, error) {
	return acquire(ctx)
}

func (m *memRefusals) Refuse(_ context.Context, key kvassert.SharedKey, r kvassert.TenantRefusal) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.panics {
		panic("shared cache bug")
	}
	if m.fail != nil {
		return m.fail
	}
	m.refusals[key] = r
	return nil
}

func (m *memRefusals) Refusal(_ context.Context, key kvassert.SharedKey) (kvassert.TenantRefusal, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lookups++
	if m.panics {
		panic("shared cache bug")
	}
	if m.fail != nil {
		return kvassert.TenantRefusal{}, false, m.fail
	}
	r, ok := m.refusals[key]
	return r, ok, nil
}

func (m *memRefusals) Forget(_ context.Context, key kvassert.SharedKey) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	m.forgot = append(m.forgot, key)
	delete(m.refusals, key)
	return nil
}

func (m *memRefusals) get(tenant string) (kvassert.TenantRefusal, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.refusals[tenantSharedKey(tenant)]
	return r, ok
}

func tenantSharedKey(tenant string) kvassert.SharedKey {
	return kvassert.SharedKey{ClientID: scenario.DemoAppClientID, Authority: "login.microsoftonline.com", Tenant: tenant}
}

// replica is another credential of the world over the same shared cache,
// on the world's clock.
func (w *refusalWorld) replica(t *testing.T, shc kvassert.SharedCache, mod func(*kvassert.CredentialOptions)) *kvassert.Credential {
	t.Helper()
	c := w.NewCredential(t, w.Src, func(o *kvassert.CredentialOptions) {
		o.SharedCache = shc
		o.Logger = slog.New(slog.DiscardHandler)
		if mod != nil {
			mod(o)
		}
	})
	credclock.Set(c, w.clock.Now)
	return c
}

// With a SharedCache, a refusal one replica saw makes the others fail
// fast too: no sign, the same classified error, until the shared Until.
func TestRefusalIsSharedWithTheOtherReplicas(t *testing.T) {
	shc := newMemRefusals()
	w := newRefusalWorld(t, nil, func(o *kvassert.CredentialOptions) { o.SharedCache = shc })
	b := w.replica(t, shc, nil)
	ctx := context.Background()
	wingtip := emuhook.DemoWingtipTenant
	_, err := w.Cred.GetToken(ctx, testfixture.Opts(wingtip))
	authErr(t, err, 700016)
	r, ok := shc.get(wingtip)
	if !ok || r.Code != 700016 || r.Failures != 1 {
		t.Fatalf("shared refusal %+v %v", r, ok)
	}
	if d := r.Until.Sub(w.clock.Now()); d < 5*time.Second || d > 7500*time.Millisecond {
		t.Fatalf("shared Until in %v, want 5 s to 7.5 s", d)
	}
	signs := w.signs()
	for range 3 {
		_, err = b.GetToken(ctx, testfixture.Opts(wingtip))
		ae := authErr(t, err, 700016)
		if !ae.RefusedUntil.Equal(r.Until) || !strings.Contains(ae.Hint, "/"+wingtip+"/adminconsent?client_id="+scenario.DemoAppClientID) {
			t.Fatalf("replica B: %v (until %v), want the shared refusal until %v with the consent hint", ae, ae.RefusedUntil, r.Until)
		}
	}
	if w.signs() != signs || rootaccess.CredentialStats(b).TokenRequests != 0 {
		t.Fatalf("replica B signed (%d signs, %d requests)", w.signs()-signs, rootaccess.CredentialStats(b).TokenRequests)
	}
	if shc.lookups != 2 { // A's miss, then B's first miss; B remembers it then
		t.Fatalf("%d shared lookups, want 2", shc.lookups)
	}

	// ForgetTenant forgets it in the shared cache too.
	if err := b.ForgetTenant(ctx, wingtip); err != nil {
		t.Fatal(err)
	}
	if _, ok := shc.get(wingtip); ok || len(shc.forgot) != 1 || shc.forgot[0] != tenantSharedKey(wingtip) {
		t.Fatalf("shared Forget calls %v", shc.forgot)
	}
}

// A SharedCache that fails or panics in its refusal methods degrades: the
// request goes to Entra, the classified error comes back, ForgetTenant
// clears memory and says the shared cache was not cleared.
func TestRefusalSharedCacheFailuresDegrade(t *testing.T) {
	for _, mode := range []string{"error", "panic"} {
		t.Run(mode, func(t *testing.T) {
			shc := newMemRefusals()
			if mode == "panic" {
				shc.panics = true
			} else {
				shc.fail = errors.New("redis down")
			}
			w := newRefusalWorld(t, nil, func(o *kvassert.CredentialOptions) { o.SharedCache = shc })
			ctx := context.Background()
			_, err := w.Cred.GetToken(ctx, testfixture.Opts(emuhook.DemoWingtipTenant))
			authErr(t, err, 700016)
			_, err = w.Cred.GetToken(ctx, testfixture.Opts(emuhook.DemoWingtipTenant))
			if ae := authErr(t, err, 700016); ae.RefusedUntil.IsZero() {
				t.Fatal("not remembered locally")
			}
			if w.requests() != 1 {
				t.Fatalf("%d requests", w.requests())
			}
			if _, err := w.Cred.GetToken(ctx, testfixture.Opts(scenario.DemoContosoTenant)); err != nil {
				t.Fatal(err)
			}
			err = w.Cred.ForgetTenant(ctx, emuhook.DemoWingtipTenant)
			if mode == "error" && (err == nil || !strings.Contains(err.Error(), "not in the shared cache")) {
				t.Fatalf("ForgetTenant = %v, want the shared cache's failure", err)
			}
			if _, ok := rootaccess.TenantRefused(w.Cred, emuhook.DemoWingtipTenant); ok {
				t.Fatal("memory not cleared")
			}
		})
	}
}

// Issue 21: a tenant removed while another replica holds its tokens: the
// replica that sees Entra's refusal offboards it everywhere through the
// SharedCache (Refuse), and the other, on its next acquisition for the
// tenant, learns it from the shared cache without a request, evicts its
// own tokens and fails fast.
func TestOffboardingReachesTheOtherReplica(t *testing.T) {
	shc := newMemRefusals()
	w := newRefusalWorld(t, nil, func(o *kvassert.CredentialOptions) { o.SharedCache = shc })
	offB := &offboarded{done: make(chan struct{}, 1)}
	b := w.replica(t, shc, func(o *kvassert.CredentialOptions) { o.TenantOffboarded = offB.callback })
	ctx := context.Background()
	for _, c := range []*kvassert.Credential{w.Cred, b} {
		for _, o := range offboardScopes {
			if _, err := c.GetToken(ctx, o); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Emu.SetConsent(scenario.DemoAppClientID, scenario.DemoContosoTenant, false); err != nil {
		t.Fatal(err)
	}
	_, err := w.Cred.GetToken(ctx, scopeOpts(scenario.DemoContosoTenant, "https://storage.azure.com/.default"))
	authErr(t, err, 700016)
	if _, ok := shc.get(scenario.DemoContosoTenant); !ok {
		t.Fatal("the offboarding was not shared")
	}
	// B's next acquisition for the tenant consults the shared cache first.
	reqsB := rootaccess.CredentialStats(b).TokenRequests
	_, err = b.GetToken(ctx, scopeOpts(scenario.DemoContosoTenant, "https://storage.azure.com/.default"))
	if ae := authErr(t, err, 700016); ae.RefusedUntil.IsZero() {
		t.Fatal("B asked Entra")
	}
	select {
	case <-offB.done:
	case <-time.After(30 * time.Second):
		t.Fatal("B did not notice the offboarding")
	}
	if n := rootaccess.CredentialStats(b).CachedTokens; n != 0 {
		t.Fatalf("B still caches %d tokens", n)
	}
	if got := rootaccess.CredentialStats(b).TokenRequests; got != reqsB {
		t.Fatalf("B sent %d token requests, want none", got-reqsB)
	}
	for _, o := range offboardScopes {
		if _, err := b.GetToken(ctx, o); err == nil {
			t.Fatalf("B served a token for the removed tenant (%v)", o.Scopes)
		}
	}
}

// servingCache serves every token from the "fleet" without calling acquire.
type servingCache struct{ *memRefusals }

func (s servingCache) Token(context.Context, kvassert.SharedKey, azcore.AccessToken, func(context.Context) (azcore.AccessToken, error)) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: "shared", ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// A miss served by the shared cache costs one shared-cache call: the
// refusal is asked for only before a request to Entra.
func TestSharedTokenNeedsNoRefusalLookup(t *testing.T) {
	shc := servingCache{newMemRefusals()}
	w := newRefusalWorld(t, nil, func(o *kvassert.CredentialOptions) { o.SharedCache = shc })
	if tok, err := w.Cred.GetToken(context.Background(), testfixture.Opts(scenario.DemoContosoTenant)); err != nil || tok.Token != "shared" {
		t.Fatalf("%v %v", tok.Token, err)
	}
	if shc.lookups != 0 {
		t.Fatalf("%d refusal lookups, want none", shc.lookups)
	}
}

// A SharedCache's refusal ending far in the future (a custom SharedCache's
// bug, a replica with a longer RefusedTenantRetry or a skewed clock) is
// followed for at most RefusedTenantRetry from when it was read, here too
// after a recheck: a shared cache that then fails cannot keep the tenant
// refused for longer (before the fix it was refused until the year the
// shared cache said, with no retry, whatever RefusedTenantRetry was).
func TestFarFutureSharedRefusalIsBounded(t *testing.T) {
	shc := newMemRefusals()
	w := newRefusalWorld(t, nil, func(o *kvassert.CredentialOptions) {
		o.SharedCache = shc
		o.RefusedTenantRetry = time.Minute
	})
	ctx := context.Background()
	wingtip := emuhook.DemoWingtipTenant
	shc.refusals[tenantSharedKey(wingtip)] = kvassert.TenantRefusal{Code: 700016, Until: w.clock.Now().Add(100 * 365 * 24 * time.Hour), Failures: 3}
	for _, step := range []time.Duration{0, 11 * time.Second} { // the read, then a recheck
		w.clock.Add(step)
		_, err := w.Cred.GetToken(ctx, testfixture.Opts(wingtip))
		if ae := authErr(t, err, 700016); ae.RefusedUntil.IsZero() || ae.RefusedUntil.After(w.clock.Now().Add(time.Minute)) {
			t.Fatalf("after %v: refused until %v, want at most RefusedTenantRetry (1 min) away", step, ae.RefusedUntil)
		}
	}
	shc.mu.Lock()
	shc.fail = errors.New("redis down")
	shc.mu.Unlock()
	w.clock.Add(2 * time.Minute)
	reqs := w.requests()
	_, err := w.Cred.GetToken(ctx, testfixture.Opts(wingtip))
	if ae := authErr(t, err, 700016); !ae.RefusedUntil.IsZero() || w.requests() != reqs+1 {
		t.Fatalf("RefusedTenantRetry after the read, with the shared cache down: %v, %d requests; want Entra asked", ae, w.requests()-reqs)
	}
}

// AADSTS53003 (blocked by Conditional Access for workload identities) is
// remembered by the replica Entra refused, and not shared: Conditional
// Access commonly blocks by network location, so a replica elsewhere asks
// Entra for itself. A 53003 another (older) replica put in the shared
// cache is not followed either.
func TestConditionalAccessRefusalIsNotShared(t *testing.T) {
	shc := newMemRefusals()
	w, rt := newRefusingWorld(t, func(o *kvassert.CredentialOptions) { o.SharedCache = shc })
	b := w.replica(t, shc, nil)
	ctx := context.Background()
	contoso := scenario.DemoContosoTenant
	rt.set(contoso, "", 53003)
	_, err := w.Cred.GetToken(ctx, testfixture.Opts(contoso))
	authErr(t, err, 53003)
	if r, ok := shc.get(contoso); ok {
		t.Fatalf("53003 shared: %+v", r)
	}
	// Remembered here: the second call fails fast.
	reqs := w.requests()
	_, err = w.Cred.GetToken(ctx, testfixture.Opts(contoso))
	if ae := authErr(t, err, 53003); ae.RefusedUntil.IsZero() || w.requests() != reqs {
		t.Fatalf("A's second call: %v, %d requests", ae, w.requests()-reqs)
	}
	// Replica B, elsewhere, is not blocked: it gets its token.
	rt.set(contoso, "", 0)
	if _, err := b.GetToken(ctx, testfixture.Opts(contoso)); err != nil {
		t.Fatalf("replica B: %v", err)
	}
	// A 53003 in the shared cache (an older replica's) is not followed.
	fabrikam := emuhook.DemoFabrikamTenant
	if err := shc.Refuse(ctx, tenantSharedKey(fabrikam), kvassert.TenantRefusal{Code: 53003, Until: w.clock.Now().Add(time.Hour), Failures: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.GetToken(ctx, testfixture.Opts(fabrikam)); err != nil {
		t.Fatalf("replica B followed a shared 53003: %v", err)
	}
}
