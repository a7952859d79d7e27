package kvassert_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/internal/credclock"
	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/internal/obs"
	"github.com/kvassert/kvassert/internal/obs/obsrec"
	"github.com/kvassert/kvassert/internal/rootaccess"
	"github.com/kvassert/kvassert/internal/testfixture"
	"github.com/kvassert/kvassert/internal/testlog"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// refusalWorld is the demo world whose credential runs on a clock the test
// moves (the back-off of a refused tenant), with counters of what it sent.
type refusalWorld struct {
	*testfixture.World
	clock *testfixture.Clock
	logs  *testlog.Buffer
	rec   *obsrec.Recorder
}

func newRefusalWorld(t *testing.T, s *scenario.Scenario, mod func(*kvassert.CredentialOptions)) *refusalWorld {
	t.Helper()
	w := &refusalWorld{clock: testfixture.NewClock(time.Now()), logs: &testlog.Buffer{}, rec: obsrec.New(t)}
	w.World = testfixture.NewWorld(t, &testfixture.WorldOptions{Scenario: s, Credential: func(o *kvassert.CredentialOptions) {
		o.Logger = slog.New(slog.NewTextHandler(w.logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
		o.Telemetry = w.rec.Options
		if mod != nil {
			mod(o)
		}
	}})
	credclock.Set(w.Cred, w.clock.Now)
	return w
}

func (w *refusalWorld) signs() int64 { return w.Emu.Count(kvasserttest.OpKeySign) }
func (w *refusalWorld) requests() int64 {
	return rootaccess.CredentialStats(w.Cred).TokenRequests
}

func scopeOpts(tenant, scope string) policy.TokenRequestOptions {
	return policy.TokenRequestOptions{TenantID: tenant, Scopes: []string{scope}}
}

// authErr asserts that err is an *AuthError with code and returns it.
func authErr(t *testing.T, err error, code int) *kvassert.AuthError {
	t.Helper()
	var ae *kvassert.AuthError
	if !errors.As(err, &ae) || ae.Code != code {
		t.Fatalf("got %T %v, want an AuthError with AADSTS%d", err, err, code)
	}
	return ae
}

// Issue 21, "Refused tenants cost nothing": 1,000 tenants of which 100
// refuse the app, 10 rounds of tokens: one sign and one token request per
// tenant (900 + 100), not 900 + 100 per round. With RefusedTenantRetry
// negative (the behaviour before), every call for a refusing tenant costs
// a sign: 900 + 1,000.
func TestRefusedTenantsCostNothing(t *testing.T) {
	for _, tc := range []struct {
		name                string
		retry               time.Duration
		wantSigns, wantReqs int64
	}{
		{"remembered", 0, 1000, 1000},
		{"not remembered", -1, 1900, 1900},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, ids := testfixture.ManyTenants(1000)
			// The last 100 never consented.
			s.Apps[0].ConsentedTenants = s.Apps[0].ConsentedTenants[:len(s.Apps[0].ConsentedTenants)-100]
			refusing := map[string]bool{}
			for _, id := range ids[900:] {
				refusing[id] = true
			}
			w := newRefusalWorld(t, s, func(o *kvassert.CredentialOptions) { o.RefusedTenantRetry = tc.retry })
			ctx := context.Background()
			signs0 := w.signs()
			for round := range 10 {
				var failed, remembered atomic.Int64
				var bad atomic.Value
				testfixture.Spread(len(ids), 8, func(i int) bool {
					_, err := w.Cred.GetToken(ctx, testfixture.Opts(ids[i]))
					if refusing[ids[i]] != (err != nil) {
						bad.Store(ids[i] + ": " + errString(err))
						return false
					}
					if err != nil {
						var ae *kvassert.AuthError
						if !errors.As(err, &ae) || ae.Code != 700016 || !strings.Contains(ae.Hint, "adminconsent?client_id=") {
							bad.Store(ids[i] + ": not the classified refusal: " + err.Error())
							return false
						}
						failed.Add(1)
						if !ae.RefusedUntil.IsZero() {
							remembered.Add(1)
						}
					}
					return true
				})
				if b := bad.Load(); b != nil {
					t.Fatalf("round %d: %v", round, b)
				}
				if failed.Load() != 100 {
					t.Fatalf("round %d: %d failures, want 100", round, failed.Load())
				}
				wantRemembered := int64(100)
				if round == 0 || tc.retry < 0 {
					wantRemembered = 0
				}
				if remembered.Load() != wantRemembered {
					t.Fatalf("round %d: %d failures remembered, want %d", round, remembered.Load(), wantRemembered)
				}
			}
			if got := w.signs() - signs0; got != tc.wantSigns {
				t.Errorf("Key Vault signs = %d, want %d", got, tc.wantSigns)
			}
			if got := w.requests(); got != tc.wantReqs {
				t.Errorf("token requests = %d, want %d", got, tc.wantReqs)
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return "no error"
	}
	return err.Error()
}

// A refused tenant fails fast (no sign, no request, the classified error
// saying it is remembered and until when) until its back-off ends; then one
// request, however many callers, tries again, and the back-off doubles; a
// token clears it.
func TestRefusedTenantFailsFastThenRetriesOnce(t *testing.T) {
	w := newRefusalWorld(t, nil, nil)
	ctx := context.Background()
	wingtip := emuhook.DemoWingtipTenant // never consented
	_, err := w.Cred.GetToken(ctx, testfixture.Opts(wingtip))
	first := authErr(t, err, 700016)
	if !first.RefusedUntil.IsZero() {
		t.Fatalf("Entra's own answer has RefusedUntil %v", first.RefusedUntil)
	}
	signs, reqs := w.signs(), w.requests()
	if reqs != 1 {
		t.Fatalf("%d token requests, want 1", reqs)
	}
	call := func(n int) (entra, remembered int, until time.Time) {
		var mu sync.Mutex
		testfixture.Spread(n, 8, func(int) bool {
			_, err := w.Cred.GetToken(ctx, testfixture.Opts(wingtip))
			ae := authErr(t, err, 700016)
			mu.Lock()
			defer mu.Unlock()
			if ae.RefusedUntil.IsZero() {
				entra++
			} else {
				remembered++
				if ae.RefusedUntil.After(until) {
					until = ae.RefusedUntil
				}
				if ae.Hint != first.Hint || !strings.Contains(ae.Error(), "remembered refusal") || !strings.Contains(ae.Error(), ae.RefusedUntil.Format(time.RFC3339)) {
					t.Errorf("remembered error %q (hint %q), want Entra's hint %q and the time", ae.Error(), ae.Hint, first.Hint)
				}
			}
			return true
		})
		return
	}
	entra, remembered, until := call(50)
	if entra != 0 || remembered != 50 || w.signs() != signs || w.requests() != reqs {
		t.Fatalf("during the back-off: %d answers from Entra, %d remembered, %d signs, %d requests; want 0, 50, %d, %d",
			entra, remembered, w.signs(), w.requests(), signs, reqs)
	}
	if d := until.Sub(w.clock.Now()); d < 5*time.Second || d > 7500*time.Millisecond {
		t.Fatalf("first back-off %v, want 5 s to 7.5 s", d)
	}
	if _, ok := rootaccess.TenantRefused(w.Cred, strings.ToUpper(wingtip)); !ok {
		t.Fatal("rootaccess.TenantRefused does not report it")
	}

	// The back-off ends: one request for all the callers.
	w.clock.Add(8 * time.Second)
	entra, remembered, _ = call(50)
	if entra != 1 || remembered != 49 || w.signs() != signs+1 || w.requests() != reqs+1 {
		t.Fatalf("after the back-off: %d answers from Entra, %d remembered, %d signs, %d requests; want 1, 49, %d, %d",
			entra, remembered, w.signs(), w.requests(), signs+1, reqs+1)
	}
	if r, ok := rootaccess.TenantRefused(w.Cred, wingtip); !ok || r.Failures != 2 {
		t.Fatalf("refusal %+v %v, want the second in a row", r, ok)
	} else if d := r.Until.Sub(w.clock.Now()); d < 10*time.Second || d > 15*time.Second {
		t.Fatalf("second back-off %v, want 10 s to 15 s", d)
	}

	// Consent; once the back-off ends, a token clears the refusal.
	if err := w.Emu.SetConsent(scenario.DemoAppClientID, wingtip, true); err != nil {
		t.Fatal(err)
	}
	w.clock.Add(16 * time.Second)
	if _, err := w.Cred.GetToken(ctx, testfixture.Opts(wingtip)); err != nil {
		t.Fatal(err)
	}
	if _, ok := rootaccess.TenantRefused(w.Cred, wingtip); ok {
		t.Fatal("the refusal outlived a token")
	}
	if _, err := w.Cred.GetToken(ctx, scopeOpts(wingtip, "https://vault.azure.net/.default")); err != nil {
		t.Fatal(err)
	}
}

// The longest back-off is RefusedTenantRetry.
func TestRefusedTenantRetryBoundsTheBackoff(t *testing.T) {
	w := newRefusalWorld(t, nil, func(o *kvassert.CredentialOptions) { o.RefusedTenantRetry = 12 * time.Second })
	ctx := context.Background()
	for i := range 5 {
		w.clock.Add(13 * time.Second)
		_, err := w.Cred.GetToken(ctx, testfixture.Opts(emuhook.DemoWingtipTenant))
		authErr(t, err, 700016)
		r, ok := rootaccess.TenantRefused(w.Cred, emuhook.DemoWingtipTenant)
		if !ok || r.Failures != i+1 || r.Until.Sub(w.clock.Now()) > 12*time.Second {
			t.Fatalf("refusal %d: %+v %v, want at most 12 s", i+1, r, ok)
		}
	}
	if w.requests() != 5 {
		t.Fatalf("%d requests, want 5", w.requests())
	}
}

// ForgetTenant clears a refusal at once: the next GetToken goes to Entra.
func TestForgetTenantClearsTheRefusalAtOnce(t *testing.T) {
	w := newRefusalWorld(t, nil, nil)
	ctx := context.Background()
	wingtip := emuhook.DemoWingtipTenant
	_, err := w.Cred.GetToken(ctx, testfixture.Opts(wingtip))
	authErr(t, err, 700016)
	if err := w.Emu.SetConsent(scenario.DemoAppClientID, wingtip, true); err != nil {
		t.Fatal(err)
	}
	_, err = w.Cred.GetToken(ctx, testfixture.Opts(wingtip))
	if ae := authErr(t, err, 700016); ae.RefusedUntil.IsZero() {
		t.Fatal("not remembered")
	}
	if err := w.Cred.ForgetTenant(ctx, strings.ToUpper(wingtip)); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Cred.GetToken(ctx, testfixture.Opts(wingtip)); err != nil {
		t.Fatalf("after ForgetTenant: %v", err)
	}
	// It also drops the tenant's tokens: the next call acquires again.
	reqs := w.requests()
	if err := w.Cred.ForgetTenant(ctx, wingtip); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Cred.GetToken(ctx, testfixture.Opts(wingtip)); err != nil || w.requests() != reqs+1 {
		t.Fatalf("after ForgetTenant: %v, %d requests, want %d", err, w.requests(), reqs+1)
	}
	// Bad input.
	for _, bad := range []string{"", "organizations", "not a tenant/x", "00000000-0000-0000-0000-00000000dead"} {
		cred := w.Cred
		if bad == "00000000-0000-0000-0000-00000000dead" {
			cred = w.NewCredential(t, w.Src, func(o *kvassert.CredentialOptions) { o.AdditionallyAllowedTenants = nil })
		}
		var ie *kvassert.InputError
		if err := cred.ForgetTenant(ctx, bad); !errors.As(err, &ie) || ie.Input != "tenant" {
			t.Errorf("ForgetTenant(%q) = %v, want an InputError naming the tenant", bad, err)
		}
	}
}

// offboardScopes are the tokens an offboarded tenant had.
var offboardScopes = []policy.TokenRequestOptions{
	scopeOpts(scenario.DemoContosoTenant, testfixture.Graph),
	{TenantID: scenario.DemoContosoTenant, Scopes: []string{testfixture.Graph}, EnableCAE: true},
	scopeOpts(scenario.DemoContosoTenant, "https://vault.azure.net/.default"),
}

// offboarded records the TenantOffboarded calls.
type offboarded struct {
	mu    sync.Mutex
	calls []string
	errs  []*kvassert.AuthError
	done  chan struct{}
}

func (o *offboarded) callback(tenant string, err *kvassert.AuthError) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.calls = append(o.calls, tenant)
	o.errs = append(o.errs, err)
	select {
	case o.done <- struct{}{}:
	default:
	}
}

func (o *offboarded) count() int { o.mu.Lock(); defer o.mu.Unlock(); return len(o.calls) }

// Issue 21, "Offboarding": a tenant that worked and is refused with
// AADSTS700016 (the customer removed the app) has every token evicted
// (each scope, CAE), and is reported once: a warning, the
// kvassert.tenant.state metric, the TenantOffboarded callback. Seen on
// the miss path, the claims path and the background refresh.
func TestOffboardedTenantEvictedAndReportedOnce(t *testing.T) {
	for _, path := range []string{"miss", "claims", "refresh"} {
		t.Run(path, func(t *testing.T) {
			cb := &offboarded{done: make(chan struct{}, 1)}
			w := newRefusalWorld(t, nil, func(o *kvassert.CredentialOptions) { o.TenantOffboarded = cb.callback })
			ctx := context.Background()
			for _, o := range offboardScopes {
				if _, err := w.Cred.GetToken(ctx, o); err != nil {
					t.Fatal(err)
				}
			}
			if n := rootaccess.CredentialStats(w.Cred).CachedTokens; n != 3 {
				t.Fatalf("%d cached tokens, want 3", n)
			}
			// The customer removes the app.
			if err := w.Emu.SetConsent(scenario.DemoAppClientID, scenario.DemoContosoTenant, false); err != nil {
				t.Fatal(err)
			}
			reqs := w.requests()
			switch path {
			case "miss":
				_, err := w.Cred.GetToken(ctx, scopeOpts(scenario.DemoContosoTenant, "https://storage.azure.com/.default"))
				authErr(t, err, 700016)
			case "claims":
				o := offboardScopes[0]
				o.Claims = `{"access_token":{"nbf":{"essential":true,"value":"1700000000"}}}`
				_, err := w.Cred.GetToken(ctx, o)
				authErr(t, err, 700016)
			case "refresh":
				w.clock.Add(56 * time.Minute) // past the refresh time, before the expiry
				if _, err := w.Cred.GetToken(ctx, offboardScopes[0]); err != nil {
					t.Fatalf("the cached token was not served while it refreshes: %v", err)
				}
			}
			select {
			case <-cb.done:
			case <-time.After(30 * time.Second):
				t.Fatal("TenantOffboarded was not called")
			}
			if got := w.requests(); got != reqs+1 {
				t.Fatalf("%d token requests, want %d", got, reqs+1)
			}
			// Every token of the tenant is gone; calls fail fast.
			if n := rootaccess.CredentialStats(w.Cred).CachedTokens; n != 0 {
				t.Fatalf("%d cached tokens after offboarding, want 0", n)
			}
			signs := w.signs()
			for _, o := range offboardScopes {
				_, err := w.Cred.GetToken(ctx, o)
				if ae := authErr(t, err, 700016); ae.RefusedUntil.IsZero() {
					t.Fatalf("%v: not remembered", o.Scopes)
				}
			}
			// Refused again after the back-off: not a new transition.
			w.clock.Add(8 * time.Second)
			_, err := w.Cred.GetToken(ctx, offboardScopes[0])
			authErr(t, err, 700016)
			if w.signs() != signs+1 {
				t.Fatalf("%d signs, want %d", w.signs(), signs+1)
			}
			time.Sleep(50 * time.Millisecond) // a second callback would have run by now
			if cb.count() != 1 || cb.calls[0] != scenario.DemoContosoTenant || cb.errs[0].Code != 700016 || cb.errs[0].Hint == "" {
				t.Fatalf("TenantOffboarded calls %v %v, want one for contoso", cb.calls, cb.errs)
			}
			if n := strings.Count(w.logs.String(), "level=WARN"); n != 1 || !strings.Contains(w.logs.String(), "reason=app_not_found") {
				t.Fatalf("want one warning naming the reason, got:\n%s", w.logs)
			}
			points := obsrec.Points(w.rec.Collect(t), obs.MetricTenantState)
			if len(points) != 1 || points[0].Value != 1 || obsrec.Attrs(points[0].Attrs) != obs.AttrTenantReason+"=app_not_found" {
				t.Fatalf("%s points %+v, want one transition, reason only", obs.MetricTenantState, points)
			}
			if strings.Contains(w.logs.String(), "eyJ") {
				t.Fatal("a log line holds a JWT")
			}

			// The customer consents again: ForgetTenant, tokens flow, and
			// a later removal is a new transition.
			if err := w.Emu.SetConsent(scenario.DemoAppClientID, scenario.DemoContosoTenant, true); err != nil {
				t.Fatal(err)
			}
			if err := w.Cred.ForgetTenant(ctx, scenario.DemoContosoTenant); err != nil {
				t.Fatal(err)
			}
			if _, err := w.Cred.GetToken(ctx, offboardScopes[0]); err != nil {
				t.Fatal(err)
			}
			if err := w.Emu.SetConsent(scenario.DemoAppClientID, scenario.DemoContosoTenant, false); err != nil {
				t.Fatal(err)
			}
			_, err = w.Cred.GetToken(ctx, offboardScopes[2])
			authErr(t, err, 700016)
			select {
			case <-cb.done:
			case <-time.After(30 * time.Second):
				t.Fatal("the second removal was not reported")
			}
		})
	}
}

// A tenant that never worked is not reported as offboarded; the metric
// names the tenant only with TenantAttribute.
func TestNeverConsentedTenantIsNotOffboarded(t *testing.T) {
	cb := &offboarded{done: make(chan struct{}, 1)}
	w := newRefusalWorld(t, nil, func(o *kvassert.CredentialOptions) { o.TenantOffboarded = cb.callback })
	_, err := w.Cred.GetToken(context.Background(), testfixture.Opts(emuhook.DemoWingtipTenant))
	authErr(t, err, 700016)
	time.Sleep(50 * time.Millisecond)
	if cb.count() != 0 || strings.Contains(w.logs.String(), "WARN") || len(obsrec.Points(w.rec.Collect(t), obs.MetricTenantState)) != 0 {
		t.Fatalf("a tenant that never worked was reported: %v\n%s", cb.calls, w.logs)
	}
}

func TestTenantStateMetricNamesTheTenantOnlyWhenAsked(t *testing.T) {
	w := newRefusalWorld(t, nil, nil)
	tel := w.rec.Options
	tel.TenantAttribute = true
	cred := w.NewCredential(t, w.Src, func(o *kvassert.CredentialOptions) {
		o.Telemetry = tel
		o.Logger = slog.New(slog.DiscardHandler)
	})
	ctx := context.Background()
	if _, err := cred.GetToken(ctx, testfixture.Opts(scenario.DemoContosoTenant)); err != nil {
		t.Fatal(err)
	}
	if err := w.Emu.SetConsent(scenario.DemoAppClientID, scenario.DemoContosoTenant, false); err != nil {
		t.Fatal(err)
	}
	_, err := cred.GetToken(ctx, scopeOpts(scenario.DemoContosoTenant, "https://storage.azure.com/.default"))
	authErr(t, err, 700016)
	points := obsrec.Points(w.rec.Collect(t), obs.MetricTenantState)
	if len(points) != 1 || !strings.Contains(obsrec.Attrs(points[0].Attrs), obs.AttrTenantID+"="+scenario.DemoContosoTenant) {
		t.Fatalf("points %+v, want the tenant attribute", points)
	}
}

// A panicking TenantOffboarded is recovered: the process lives and the
// credential keeps working.
func TestPanickingOffboardedCallbackIsRecovered(t *testing.T) {
	called := make(chan struct{})
	w := newRefusalWorld(t, nil, func(o *kvassert.CredentialOptions) {
		o.TenantOffboarded = func(string, *kvassert.AuthError) { close(called); panic("callback bug") }
	})
	ctx := context.Background()
	if _, err := w.Cred.GetToken(ctx, testfixture.Opts(scenario.DemoContosoTenant)); err != nil {
		t.Fatal(err)
	}
	if err := w.Emu.SetConsent(scenario.DemoAppClientID, scenario.DemoContosoTenant, false); err != nil {
		t.Fatal(err)
	}
	_, err := w.Cred.GetToken(ctx, scopeOpts(scenario.DemoContosoTenant, "https://storage.azure.com/.default"))
	authErr(t, err, 700016)
	<-called
	time.Sleep(50 * time.Millisecond)
	if _, err := w.Cred.GetToken(ctx, testfixture.Opts(emuhook.DemoFabrikamTenant)); err != nil {
		t.Fatal(err)
	}
}

// Concurrent calls, refusals, offboarding and ForgetTenant (run with -race).
func TestRefusalsConcurrently(t *testing.T) {
	w := newRefusalWorld(t, nil, func(o *kvassert.CredentialOptions) { o.TenantOffboarded = func(string, *kvassert.AuthError) {} })
	ctx := context.Background()
	tenants := []string{scenario.DemoContosoTenant, emuhook.DemoFabrikamTenant, emuhook.DemoNorthwindTenant, emuhook.DemoWingtipTenant}
	scopes := []string{testfixture.Graph, "https://vault.azure.net/.default"}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			consented := i%2 == 1
			_ = w.Emu.SetConsent(scenario.DemoAppClientID, scenario.DemoContosoTenant, consented)
			if consented {
				_ = w.Cred.ForgetTenant(ctx, scenario.DemoContosoTenant)
			}
			w.clock.Add(3 * time.Second)
			time.Sleep(5 * time.Millisecond)
		}
	}()
	testfixture.Spread(2000, 8, func(i int) bool {
		tenant := tenants[i%len(tenants)]
		_, err := w.Cred.GetToken(ctx, scopeOpts(tenant, scopes[i/len(tenants)%2]))
		var ae *kvassert.AuthError
		if err != nil && (!errors.As(err, &ae) || ae.Code != 700016 || tenant == emuhook.DemoFabrikamTenant || tenant == emuhook.DemoNorthwindTenant) {
			t.Errorf("%s: %v", tenant, err)
			return false
		}
		return true
	})
	close(stop)
	wg.Wait()
}

// Acquisitions for several scopes of a tenant sent together and refused
// together are one refusal: the back-off starts at 5 s, not doubled per
// scope.
func TestConcurrentRefusalsOfOneTenantCountOnce(t *testing.T) {
	w := newRefusalWorld(t, nil, nil)
	ctx := context.Background()
	// Warm the vault token and the certificate, then slow the token service
	// so that the three requests are in flight together.
	if _, err := w.Cred.GetToken(ctx, testfixture.Opts(scenario.DemoContosoTenant)); err != nil {
		t.Fatal(err)
	}
	testfixture.InjectLatency(w.Emu, 0, 300*time.Millisecond)
	scopes := []string{testfixture.Graph, "https://vault.azure.net/.default", "https://storage.azure.com/.default"}
	testfixture.Spread(len(scopes), len(scopes), func(i int) bool {
		_, err := w.Cred.GetToken(ctx, scopeOpts(emuhook.DemoWingtipTenant, scopes[i]))
		authErr(t, err, 700016)
		return true
	})
	r, ok := rootaccess.TenantRefused(w.Cred, emuhook.DemoWingtipTenant)
	if !ok || r.Failures != 1 || r.Until.Sub(w.clock.Now()) > 7500*time.Millisecond {
		t.Fatalf("refusal %+v, want the first, for at most 7.5 s", r)
	}
}

// holdingTransport holds the response of the next token request once armed:
// the request was answered by Entra, but its caller sees it later.
type holdingTransport struct {
	next    policy.Transporter
	armed   atomic.Bool
	held    chan struct{} // closed when a response is held
	release chan struct{}
}

// newHeldWorld is a refusal world whose token requests go through a
// holdingTransport.
func newHeldWorld(t *testing.T) (*refusalWorld, *holdingTransport) {
	ht := &holdingTransport{held: make(chan struct{}), release: make(chan struct{})}
	w := newRefusalWorld(t, nil, func(o *kvassert.CredentialOptions) {
		ht.next = o.ClientOptions.Transport
		o.ClientOptions.Transport = ht
	})
	return w, ht
}

// holdToken arms h, starts cred.GetToken(ctx, opts) and returns once its
// token answer is held (release it with close(h.release)); the channel
// receives the call's error.
func (h *holdingTransport) holdToken(ctx context.Context, cred *kvassert.Credential, opts policy.TokenRequestOptions) <-chan error {
	h.armed.Store(true)
	late := make(chan error, 1)
	go func() {
		_, err := cred.GetToken(ctx, opts)
		late <- err
	}()
	<-h.held
	return late
}

func (h *holdingTransport) Do(req *http.Request) (*http.Response, error) {
	resp, err := h.next.Do(req)
	if strings.HasSuffix(req.URL.Path, "/oauth2/v2.0/token") && h.armed.CompareAndSwap(true, false) {
		close(h.held)
		<-h.release
	}
	return resp, err
}

// A token issued just before the customer removed the app, whose answer
// arrives after the refusal was remembered, goes to its caller but is not
// cached and does not clear the refusal (before the fix it did both: the
// removed tenant was served from the cache for the token's lifetime).
func TestTokenIssuedBeforeOffboardingIsNotCached(t *testing.T) {
	w, ht := newHeldWorld(t)
	ctx := context.Background()
	if _, err := w.Cred.GetToken(ctx, offboardScopes[0]); err != nil {
		t.Fatal(err)
	}
	late := ht.holdToken(ctx, w.Cred, offboardScopes[2]) // issued; the customer removes the app now
	if err := w.Emu.SetConsent(scenario.DemoAppClientID, scenario.DemoContosoTenant, false); err != nil {
		t.Fatal(err)
	}
	_, err := w.Cred.GetToken(ctx, scopeOpts(scenario.DemoContosoTenant, "https://storage.azure.com/.default"))
	authErr(t, err, 700016)
	close(ht.release)
	if err := <-late; err != nil {
		t.Fatalf("the caller of the token issued before: %v", err)
	}
	if n := rootaccess.CredentialStats(w.Cred).CachedTokens; n != 0 {
		t.Fatalf("%d tokens cached for the removed tenant", n)
	}
	if _, ok := rootaccess.TenantRefused(w.Cred, scenario.DemoContosoTenant); !ok {
		t.Fatal("the late token cleared the refusal")
	}
	_, err = w.Cred.GetToken(ctx, offboardScopes[2])
	if ae := authErr(t, err, 700016); ae.RefusedUntil.IsZero() {
		t.Fatal("not failing fast")
	}
}

// A refusal answering a request sent before ForgetTenant (the administrator
// consented meanwhile) is not remembered: the next call goes to Entra.
func TestRefusalSentBeforeForgetTenantIsNotRemembered(t *testing.T) {
	w, ht := newHeldWorld(t)
	ctx := context.Background()
	wingtip := emuhook.DemoWingtipTenant
	late := ht.holdToken(ctx, w.Cred, testfixture.Opts(wingtip))
	if err := w.Emu.SetConsent(scenario.DemoAppClientID, wingtip, true); err != nil {
		t.Fatal(err)
	}
	if err := w.Cred.ForgetTenant(ctx, wingtip); err != nil {
		t.Fatal(err)
	}
	close(ht.release)
	authErr(t, <-late, 700016)
	if _, err := w.Cred.GetToken(ctx, testfixture.Opts(wingtip)); err != nil {
		t.Fatalf("after consent and ForgetTenant: %v", err)
	}
}
