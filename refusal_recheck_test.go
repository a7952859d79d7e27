package kvassert_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/internal/testfixture"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// A replica's remembered refusal that the SharedCache holds is asked about
// again there (at most once per 10 s, by one caller) while requests fail
// fast on it: ForgetTenant on another replica then clears it here too.

// recheck is the interval of those questions (kvassert's sharedRefusalRecheck).
const recheck = 10 * time.Second

// refuseLong has w's credential refused for tenant three times in a row
// (moving the clock past each back-off), so that its remembered refusal,
// shared through shc, lasts 20 s to 30 s: longer than the recheck
// interval. It returns the refusal's end.
func refuseLong(t *testing.T, w *refusalWorld, tenant string) time.Time {
	t.Helper()
	ctx := context.Background()
	var until time.Time
	for i := range 3 {
		if i > 0 {
			w.clock.Add(until.Sub(w.clock.Now()) + time.Millisecond)
		}
		_, err := w.Cred.GetToken(ctx, testfixture.Opts(tenant))
		authErr(t, err, 700016)
		_, err = w.Cred.GetToken(ctx, testfixture.Opts(tenant))
		if until = authErr(t, err, 700016).RefusedUntil; until.IsZero() {
			t.Fatalf("refusal %d not remembered", i+1)
		}
	}
	if d := until.Sub(w.clock.Now()); d < 20*time.Second {
		t.Fatalf("back-off %v, want 20 s or more", d)
	}
	return until
}

// failsFast asserts that a GetToken for tenant fails with the remembered
// refusal (no request) and returns its RefusedUntil.
func failsFast(t *testing.T, w *refusalWorld, cred *kvassert.Credential, tenant string) time.Time {
	t.Helper()
	reqs := w.requests()
	_, err := cred.GetToken(context.Background(), testfixture.Opts(tenant))
	ae := authErr(t, err, 700016)
	if ae.RefusedUntil.IsZero() || w.requests() != reqs {
		t.Fatalf("%v: not failed fast on the remembered refusal", err)
	}
	return ae.RefusedUntil
}

func (m *memRefusals) lookupCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lookups
}

func (m *memRefusals) set(tenant string, r kvassert.TenantRefusal) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.refusals[tenantSharedKey(tenant)] = r
}

func (m *memRefusals) del(tenant string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.refusals, tenantSharedKey(tenant))
}

func (m *memRefusals) setFail(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fail = err
}

// A refusal this replica shared (its Refuse succeeded) and another replica
// forgot (ForgetTenant there: the SharedCache has none) keeps failing fast
// here with no SharedCache read until the interval has passed since it was
// remembered; then one read, and the request goes to Entra.
func TestRefusalForgottenOnAnotherReplicaIsDropped(t *testing.T) {
	shc := newMemRefusals()
	w := newRefusalWorld(t, nil, func(o *kvassert.CredentialOptions) { o.SharedCache = shc })
	wingtip := emuhook.DemoWingtipTenant
	until := refuseLong(t, w, wingtip)
	if _, ok := shc.get(wingtip); !ok {
		t.Fatal("the refusal was not shared")
	}
	if err := w.Emu.SetConsent(scenario.DemoAppClientID, wingtip, true); err != nil {
		t.Fatal(err)
	}
	// Another replica's ForgetTenant.
	if err := shc.Forget(context.Background(), tenantSharedKey(wingtip)); err != nil {
		t.Fatal(err)
	}
	lookups := shc.lookupCount()
	failsFast(t, w, w.Cred, wingtip)
	w.clock.Add(recheck - time.Millisecond)
	failsFast(t, w, w.Cred, wingtip)
	if n := shc.lookupCount() - lookups; n != 0 {
		t.Fatalf("%d SharedCache reads within the interval, want none", n)
	}
	w.clock.Add(time.Millisecond)
	if !w.clock.Now().Before(until) {
		t.Fatal("the back-off ended: the test proves nothing")
	}
	reqs := w.requests()
	if _, err := w.Cred.GetToken(context.Background(), testfixture.Opts(wingtip)); err != nil {
		t.Fatalf("after the interval: %v; want a token (the refusal was forgotten in the fleet)", err)
	}
	if w.requests() != reqs+1 {
		t.Fatalf("%d token requests, want 1", w.requests()-reqs)
	}
}

// A refusal learned from the SharedCache is asked about once per interval:
// still there, it keeps failing fast (a later Until is adopted); a
// SharedCache error keeps it; gone, the request goes to Entra. (A later
// Until is adopted up to RefusedTenantRetry away, 3 h here:
// TestFarFutureSharedRefusalIsBounded.)
func TestSharedRefusalIsRecheckedEveryInterval(t *testing.T) {
	shc := newMemRefusals()
	w := newRefusalWorld(t, nil, func(o *kvassert.CredentialOptions) {
		o.SharedCache = shc
		o.RefusedTenantRetry = 3 * time.Hour
	})
	wingtip := emuhook.DemoWingtipTenant
	until := w.clock.Now().Add(time.Hour)
	shc.set(wingtip, kvassert.TenantRefusal{Code: 700016, Until: until, Failures: 9})
	if got := failsFast(t, w, w.Cred, wingtip); !got.Equal(until) {
		t.Fatalf("RefusedUntil %v, want the shared %v", got, until)
	}
	step := func(name string, d time.Duration, wantLookups int, wantUntil time.Time) {
		t.Helper()
		w.clock.Add(d)
		lookups := shc.lookupCount()
		for range 3 {
			if got := failsFast(t, w, w.Cred, wingtip); !got.Equal(wantUntil) {
				t.Fatalf("%s: RefusedUntil %v, want %v", name, got, wantUntil)
			}
		}
		if n := shc.lookupCount() - lookups; n != wantLookups {
			t.Fatalf("%s: %d SharedCache reads for 3 calls, want %d", name, n, wantLookups)
		}
	}
	step("within the interval", recheck/2, 0, until)
	step("still refused", recheck/2, 1, until)
	step("asked already", recheck-time.Second, 0, until)
	later := until.Add(time.Hour)
	shc.set(wingtip, kvassert.TenantRefusal{Code: 700016, Until: later, Failures: 10})
	step("a later refusal", time.Second, 1, later)
	shc.set(wingtip, kvassert.TenantRefusal{Code: 700016, Until: until, Failures: 9})
	step("an earlier one", recheck, 1, later)
	shc.del(wingtip)
	shc.setFail(errors.New("redis down"))
	step("SharedCache error", recheck, 1, later)
	shc.setFail(nil)
	w.clock.Add(recheck)
	reqs := w.requests()
	_, err := w.Cred.GetToken(context.Background(), testfixture.Opts(wingtip))
	if ae := authErr(t, err, 700016); !ae.RefusedUntil.IsZero() || w.requests() != reqs+1 {
		t.Fatalf("gone from the SharedCache: %v after %d requests; want Entra's fresh answer", err, w.requests()-reqs)
	}
}

// A refusal that was never shared (the SharedCache's Refuse failed) is
// not asked about: it lasts its back-off.
func TestUnsharedRefusalIsNotRechecked(t *testing.T) {
	shc := newMemRefusals()
	shc.fail = errors.New("redis down")
	w := newRefusalWorld(t, nil, func(o *kvassert.CredentialOptions) { o.SharedCache = shc })
	wingtip := emuhook.DemoWingtipTenant
	until := refuseLong(t, w, wingtip)
	shc.setFail(nil)
	lookups := shc.lookupCount()
	for range 2 {
		w.clock.Add(recheck)
		if got := failsFast(t, w, w.Cred, wingtip); !got.Equal(until) {
			t.Fatalf("RefusedUntil %v, want %v", got, until)
		}
	}
	if n := shc.lookupCount() - lookups; n != 0 {
		t.Fatalf("%d SharedCache reads for a refusal it never held", n)
	}
}

// gatedRefusals blocks Refusal until gate is closed or the caller's ctx
// ends, once armed.
type gatedRefusals struct {
	*memRefusals
	armed   chan struct{} // closed: block
	entered chan struct{}
	gate    chan struct{}
}

func (g *gatedRefusals) Refusal(ctx context.Context, key kvassert.SharedKey) (kvassert.TenantRefusal, bool, error) {
	select {
	case <-g.armed:
		g.entered <- struct{}{}
		select {
		case <-g.gate:
		case <-ctx.Done():
			return kvassert.TenantRefusal{}, false, ctx.Err()
		}
	default:
	}
	return g.memRefusals.Refusal(ctx, key)
}

func (g *gatedRefusals) waitEntered(t *testing.T) {
	t.Helper()
	select {
	case <-g.entered:
	case <-time.After(30 * time.Second):
		t.Fatal("no caller read the SharedCache")
	}
}

// One caller asks the SharedCache, bounded by its ctx; the others keep
// failing fast meanwhile, without a read of their own.
func TestRefusalRecheckHasOneCaller(t *testing.T) {
	g := &gatedRefusals{memRefusals: newMemRefusals(), armed: make(chan struct{}), entered: make(chan struct{}, 100), gate: make(chan struct{})}
	w := newRefusalWorld(t, nil, func(o *kvassert.CredentialOptions) { o.SharedCache = g })
	wingtip := emuhook.DemoWingtipTenant
	until := w.clock.Now().Add(time.Hour)
	g.set(wingtip, kvassert.TenantRefusal{Code: 700016, Until: until, Failures: 9})
	failsFast(t, w, w.Cred, wingtip)
	close(g.armed)

	// A caller whose ctx ends while it asks keeps the refusal.
	w.clock.Add(recheck)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := w.Cred.GetToken(ctx, testfixture.Opts(wingtip))
	if ae := authErr(t, err, 700016); !ae.RefusedUntil.Equal(until) {
		t.Fatalf("ctx ended during the read: %v, want the remembered refusal", err)
	}
	g.waitEntered(t)

	// The next interval: one caller blocks in the read, 20 others fail fast.
	if err := w.Emu.SetConsent(scenario.DemoAppClientID, wingtip, true); err != nil {
		t.Fatal(err)
	}
	w.clock.Add(recheck)
	lookups := g.lookupCount()
	reqs := w.requests()
	first := make(chan error, 1)
	go func() {
		_, err := w.Cred.GetToken(context.Background(), testfixture.Opts(wingtip))
		first <- err
	}()
	g.waitEntered(t)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := w.Cred.GetToken(context.Background(), testfixture.Opts(wingtip))
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if ae := authErr(t, err, 700016); !ae.RefusedUntil.Equal(until) {
			t.Fatalf("a caller during the read: %v", err)
		}
	}
	if len(g.entered) != 0 || g.lookupCount() != lookups || w.requests() != reqs {
		t.Fatalf("other callers read the SharedCache (%d) or sent requests (%d)", len(g.entered), w.requests()-reqs)
	}
	// Another replica forgets the tenant; the read answers "none".
	if err := g.Forget(context.Background(), tenantSharedKey(wingtip)); err != nil {
		t.Fatal(err)
	}
	close(g.gate)
	select {
	case err := <-first:
		if err != nil {
			t.Fatalf("the caller that read the SharedCache: %v; want a token", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the caller that read the SharedCache did not return")
	}
}
