package tenants_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
	"github.com/kvassert/kvassert/tenants"
)

// TestStateBoundToHandler: a state is bound to the app and the redirect URI
// of the Handler that made it: another Handler sharing the state key (a
// second app, or a second redirect URI) refuses it.
func TestStateBoundToHandler(t *testing.T) {
	var called atomic.Int32
	count := func(context.Context, tenants.Consent) error { called.Add(1); return nil }
	a, err := tenants.NewHandler(offlineCred(t), redirect, key, count, &tenants.HandlerOptions{ProveTimeout: -1})
	if err != nil {
		t.Fatal(err)
	}
	b, err := tenants.NewHandler(offlineCred(t), "https://other.example.com/consent", key, count, &tenants.HandlerOptions{ProveTimeout: -1})
	if err != nil {
		t.Fatal(err)
	}
	otherApp, err := kvassert.NewCredential(scenario.DemoHomeTenant, "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0", nopSource{}, &kvassert.CredentialOptions{AdditionallyAllowedTenants: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := tenants.NewHandler(otherApp, redirect, key, count, &tenants.HandlerOptions{ProveTimeout: -1})
	if err != nil {
		t.Fatal(err)
	}
	const tenant = "2b6e9d10-7c4a-4f0e-8d21-5a3b4c6d7e82"
	link, _ := a.ConsentURL("")
	q := "admin_consent=True&tenant=" + tenant + "&state=" + stateOf(t, link)
	for name, h := range map[string]*tenants.Handler{"another redirect URI": b, "another app": c} {
		if w := get(h, "GET", q); w.Code != 400 || !strings.Contains(w.Body.String(), "does not come from a link this app made") {
			t.Fatalf("%s: %d\n%s", name, w.Code, w.Body)
		}
	}
	if called.Load() != 0 {
		t.Fatalf("onConsent called %d times", called.Load())
	}
	if w := get(a, "GET", q); w.Code != 200 || called.Load() != 1 {
		t.Fatalf("its own Handler: %d, called %d\n%s", w.Code, called.Load(), w.Body)
	}
}

// TestStateBoundToTenant: a link made for one tenant (by its ID) is
// accepted only for a consent in that tenant: a redirect naming another
// tenant, whoever forged it, gets a 400 and never reaches the callback.
// Links for "organizations" or a domain name accept any tenant.
func TestStateBoundToTenant(t *testing.T) {
	var got []string
	h, err := tenants.NewHandler(offlineCred(t), redirect, key, func(_ context.Context, c tenants.Consent) error {
		got = append(got, c.Tenant)
		return nil
	}, &tenants.HandlerOptions{ProveTimeout: -1})
	if err != nil {
		t.Fatal(err)
	}
	const mine, other = "2b6e9d10-7c4a-4f0e-8d21-5a3b4c6d7e82", "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a"
	link, err := h.ConsentURL(strings.ToUpper(mine))
	if err != nil {
		t.Fatal(err)
	}
	s := stateOf(t, link)
	w := get(h, "GET", "admin_consent=True&tenant="+other+"&state="+s)
	if w.Code != 400 || !strings.Contains(w.Body.String(), "another tenant") || strings.Contains(w.Body.String(), other) || len(got) != 0 {
		t.Fatalf("another tenant: %d, callback %v\n%s", w.Code, got, w.Body)
	}
	// Refusals need no tenant; the right tenant (any case) is accepted.
	if w := get(h, "GET", "admin_consent=True&tenant="+strings.ToUpper(mine)+"&state="+s); w.Code != 200 || fmt.Sprint(got) != "["+mine+"]" {
		t.Fatalf("its tenant: %d, callback %v\n%s", w.Code, got, w.Body)
	}
	link, _ = h.ConsentURL(mine)
	if w := get(h, "GET", "error=access_denied&error_subcode=cancel&state="+stateOf(t, link)); w.Code != 200 || !strings.Contains(w.Body.String(), "cancelled") {
		t.Fatalf("a refusal: %d\n%s", w.Code, w.Body)
	}
	for _, any := range []string{"", "organizations", "contoso.onmicrosoft.com"} {
		link, _ := h.ConsentURL(any)
		if w := get(h, "GET", "admin_consent=True&tenant="+other+"&state="+stateOf(t, link)); w.Code != 200 {
			t.Fatalf("%q: %d\n%s", any, w.Code, w.Body)
		}
	}
}

// TestHandlerSameStateConcurrently: the same redirect arriving many times
// at once (a double click, a replay racing the real one) runs the callback
// exactly once; every other answer is "already used".
func TestHandlerSameStateConcurrently(t *testing.T) {
	var called atomic.Int32
	release := make(chan struct{})
	h, err := tenants.NewHandler(offlineCred(t), redirect, key, func(context.Context, tenants.Consent) error {
		called.Add(1)
		<-release // a slow callback: the others arrive while it runs
		return nil
	}, &tenants.HandlerOptions{ProveTimeout: -1})
	if err != nil {
		t.Fatal(err)
	}
	link, _ := h.ConsentURL("")
	q := "admin_consent=True&tenant=2b6e9d10-7c4a-4f0e-8d21-5a3b4c6d7e82&state=" + stateOf(t, link)
	const n = 32
	codes := make(chan int, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes <- get(h, "GET", q).Code
		}()
	}
	for len(codes) < n-1 {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	close(codes)
	count := map[int]int{}
	for c := range codes {
		count[c]++
	}
	if called.Load() != 1 || count[200] != 1 || count[400] != n-1 {
		t.Fatalf("callback %d times, answers %v", called.Load(), count)
	}
}

// blockingSource never answers before its context ends.
type blockingSource struct{ calls atomic.Int32 }

func (s *blockingSource) Assertion(ctx context.Context, _, _ string) (string, error) {
	s.calls.Add(1)
	<-ctx.Done()
	return "", ctx.Err()
}

// TestHandlerProofBoundedInTime: the proof gives up at ProveTimeout even
// when a token request hangs (a vault or Entra that never answers), and
// the page says access is not confirmed yet.
func TestHandlerProofBoundedInTime(t *testing.T) {
	src := &blockingSource{}
	cred, err := kvassert.NewCredential(scenario.DemoHomeTenant, scenario.DemoAppClientID, src, &kvassert.CredentialOptions{AdditionallyAllowedTenants: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	h, err := tenants.NewHandler(cred, redirect, key, nopConsent, &tenants.HandlerOptions{ProveTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	link, _ := h.ConsentURL("")
	done := make(chan int, 1)
	go func() {
		done <- get(h, "GET", "admin_consent=True&tenant=2b6e9d10-7c4a-4f0e-8d21-5a3b4c6d7e82&state="+stateOf(t, link)).Code
	}()
	select {
	case code := <-done:
		if code != 200 || src.calls.Load() == 0 {
			t.Fatalf("status %d, %d assertions", code, src.calls.Load())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the redirect's answer still waits 10 s after ProveTimeout (300 ms)")
	}
}

// TestConsentURLRefusesCommon: Entra's admin-consent endpoint documents a
// tenant or "organizations", and tells not to use "common".
func TestConsentURLRefusesCommon(t *testing.T) {
	for _, tenant := range []string{"common", "Common"} {
		_, err := tenants.ConsentURL(scenario.DemoAppClientID, redirect, "", &tenants.ConsentURLOptions{Tenant: tenant})
		var ie *kvassertInputError
		if !asInput(err, &ie) || ie.Input != "Tenant" || !strings.Contains(err.Error(), "organizations") {
			t.Fatalf("%s: %v", tenant, err)
		}
	}
}

// TestCheckAllStopsWhenCancelled: once ctx ends, no further tenant is
// asked (no signature started), every report is back, unreachable.
func TestCheckAllStopsWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	src := &cancellingSource{cancel: cancel}
	cred, err := kvassert.NewCredential(scenario.DemoHomeTenant, scenario.DemoAppClientID, src, &kvassert.CredentialOptions{AdditionallyAllowedTenants: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	list := make([]string, 200)
	for i := range list {
		list[i] = fmt.Sprintf("tenant%d.onmicrosoft.com", i)
	}
	reports, err := tenants.CheckAll(ctx, cred, list, nil, &tenants.CheckOptions{Concurrency: 4})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range reports {
		if r.Tenant != list[i] || r.State != tenants.StateUnreachable {
			t.Fatalf("%d: %+v", i, r)
		}
	}
	if n := src.calls.Load(); n > 4 {
		t.Fatalf("%d assertions asked after the context was cancelled at the first one (concurrency 4)", n)
	}
}

// cancellingSource cancels the check at its first call.
type cancellingSource struct {
	calls  atomic.Int32
	cancel context.CancelFunc
}

func (s *cancellingSource) Assertion(ctx context.Context, _, _ string) (string, error) {
	s.calls.Add(1)
	s.cancel()
	return "", ctx.Err()
}

// graphAnswer is a Graph transport answering every request with one body.
type graphAnswer struct {
	status int
	body   string
}

func (g graphAnswer) Do(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: g.status, Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(strings.NewReader(g.body)), Request: r}, nil
}

// TestAuditAppHostileGraph: whatever Graph answers (wrong types, HTML,
// huge, hostile text), AuditApp reports the lock unchecked without
// quoting the answer, and never says it is locked.
func TestAuditAppHostileGraph(t *testing.T) {
	w := world(t, nil)
	huge := `{"servicePrincipalLockConfiguration":{"isEnabled":true,"allProperties":true,"x":"` + strings.Repeat(secret, 100_000) + `"}}`
	for name, a := range map[string]graphAnswer{
		"wrong type":       {200, `{"servicePrincipalLockConfiguration":"` + secret + `"}`},
		"wrong type bool":  {200, `{"servicePrincipalLockConfiguration":{"isEnabled":"` + secret + `"}}`},
		"html":             {200, secret + `<html>`},
		"oversized":        {200, huge},
		"error with text":  {403, `{"error":{"code":"` + secret + `","message":"` + secret + `"}}`},
		"error code text":  {400, `{"error":{"code":"Request_BadRequest","message":"` + secret + "\nline two" + `"}}`},
		"500 html":         {500, `<html>` + secret + `</html>`},
		"array":            {200, `[` + secret + `]`},
		"null lock":        {200, `{"servicePrincipalLockConfiguration":null}`},
		"number lock flag": {200, `{"servicePrincipalLockConfiguration":{"isEnabled":1,"allProperties":1}}`},
	} {
		t.Run(name, func(t *testing.T) {
			opts := &tenants.AuditOptions{ClientOptions: policy.ClientOptions{Transport: a, Retry: policy.RetryOptions{MaxRetries: -1}}}
			got, err := tenants.AuditApp(t.Context(), w.Cred, scenario.DemoAppObjectID, nil, nil, opts)
			if err != nil {
				t.Fatal(err)
			}
			if got.Locked || strings.Contains(fmt.Sprintf("%+v", got), secret[:12]) || strings.Contains(got.LockError, "\n") {
				t.Fatalf("%+v", got)
			}
			// Words of its own: not the key roll's, no Go type or JSON
			// parser text (which quotes the answer's bytes).
			for _, bad := range []string{"rotation", "roll", "invalid character", "Go struct", "graphapi", "'S'"} {
				if strings.Contains(got.LockError, bad) {
					t.Fatalf("LockError %q says %q", got.LockError, bad)
				}
			}
			if a.status/100 == 2 && name != "null lock" && got.LockError != "Microsoft Graph's answer (HTTP 200) is not the expected JSON" {
				t.Fatalf("LockError %q", got.LockError)
			}
			if a.status == 500 && !strings.Contains(got.LockError, "run the audit again later") {
				t.Fatalf("LockError %q", got.LockError)
			}
			if name == "null lock" != (got.LockChecked && len(got.Findings) == 1) {
				t.Fatalf("%+v", got)
			}
		})
	}
}

// skewedStore is a shared StateStore (Redis SET NX PXAT) whose clock runs
// ahead of the replica's: it forgets a used state at until by its own
// clock.
type skewedStore struct {
	mu    sync.Mutex
	now   func() time.Time
	until map[string]time.Time
}

func (s *skewedStore) Use(_ context.Context, nonce string, until time.Time) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u, ok := s.until[nonce]; ok && s.now().Before(u) {
		return false, nil
	}
	s.until[nonce] = until
	return true, nil
}

// TestStateReplayUnderClockSkew: the store remembers a used state past its
// expiry by a margin, so that a store (or another replica) whose clock is a
// few minutes off does not forget it while a replica still takes it as
// unexpired: the replay is refused and the callback runs once.
func TestStateReplayUnderClockSkew(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	store := &skewedStore{now: func() time.Time { return clock().Add(2 * time.Minute) }, until: map[string]time.Time{}}
	var called atomic.Int32
	h, err := tenants.NewHandler(offlineCred(t), redirect, key, func(context.Context, tenants.Consent) error { called.Add(1); return nil },
		&tenants.HandlerOptions{ProveTimeout: -1, States: store})
	if err != nil {
		t.Fatal(err)
	}
	tenants.SetNow(h, clock)
	link, _ := h.ConsentURL("")
	q := "admin_consent=True&tenant=2b6e9d10-7c4a-4f0e-8d21-5a3b4c6d7e82&state=" + stateOf(t, link)
	mu.Lock()
	now = now.Add(14 * time.Minute) // used near the end of its 15 minutes
	mu.Unlock()
	if w := get(h, "GET", q); w.Code != 200 {
		t.Fatalf("%d\n%s", w.Code, w.Body)
	}
	mu.Lock()
	now = now.Add(30 * time.Second) // replayed: the state is not expired here, but is by the store's clock
	mu.Unlock()
	if w := get(h, "GET", q); w.Code != 400 || called.Load() != 1 {
		t.Fatalf("replay under a 2 min clock skew: %d, callback %d times\n%s", w.Code, called.Load(), w.Body)
	}
}

// TestReportHoldsNoToken: a report (its fields, its JSON, its Err) holds
// no part of a token it read the roles from, nor of an assertion.
func TestReportHoldsNoToken(t *testing.T) {
	w := world(t, nil)
	tok, err := w.Cred.GetToken(t.Context(), policy.TokenRequestOptions{TenantID: scenario.DemoContosoTenant, Scopes: []string{graph + "/.default"}})
	if err != nil {
		t.Fatal(err)
	}
	reports, err := tenants.CheckAll(t.Context(), w.Cred, []string{scenario.DemoContosoTenant, wingtip(t)}, &tenants.Want{Roles: map[string][]string{graph: {"No.Such.Role"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if reports[0].State != tenants.StateMissingRoles || !reports[0].FromCache || reports[1].State != "app_not_found" {
		t.Fatalf("%+v", reports)
	}
	js, err := json.Marshal(reports)
	if err != nil {
		t.Fatal(err)
	}
	all := fmt.Sprintf("%#v %+v %v %s", reports, reports, reports[1].Err, js)
	for i, part := range strings.Split(tok.Token, ".") {
		if len(part) >= 16 && strings.Contains(all, part[len(part)-16:]) {
			t.Fatalf("the report holds part %d of the token", i)
		}
	}
}

// TestCheckAllSurvivesPanics: a Want.ConsentURL that panics costs the
// report its link only: the tenant is still classified, the other tenants
// are unaffected, and the panic's value is nowhere.
func TestCheckAllSurvivesPanics(t *testing.T) {
	w := world(t, nil)
	want := &tenants.Want{ConsentURL: func(string) (string, error) { panic(secret) }}
	reports, err := tenants.CheckAll(t.Context(), w.Cred, []string{wingtip(t), scenario.DemoContosoTenant, wingtip(t)}, want, &tenants.CheckOptions{Concurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range reports {
		wantState := map[bool]string{true: tenants.StateOK, false: "app_not_found"}[i == 1]
		if r.State != wantState || r.ConsentURL != "" || strings.Contains(fmt.Sprintf("%+v", r), secret) {
			t.Fatalf("%d: %+v", i, r)
		}
	}
}

// panicStore is a StateStore that panics, or fails with a secret.
type panicStore struct{ fail bool }

func (s panicStore) Use(context.Context, string, time.Time) (bool, error) {
	if s.fail {
		return false, fmt.Errorf("redis at %s down", secret)
	}
	panic(secret)
}

// TestHandlerStoreAndProvedFailures: a StateStore that panics or fails
// gets a 503 page (start again) and never reaches the callback; a Proved
// that panics still lets the page show the proof. Neither the page nor the
// log quotes the panic.
func TestHandlerStoreAndProvedFailures(t *testing.T) {
	for _, store := range []panicStore{{false}, {true}} {
		var logs strings.Builder
		var called atomic.Int32
		h, err := tenants.NewHandler(offlineCred(t), redirect, key, func(context.Context, tenants.Consent) error { called.Add(1); return nil },
			&tenants.HandlerOptions{ProveTimeout: -1, States: store, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		link, _ := h.ConsentURL("")
		rec := get(h, "GET", "admin_consent=True&tenant="+scenario.DemoContosoTenant+"&state="+stateOf(t, link))
		if rec.Code != 503 || called.Load() != 0 || strings.Contains(rec.Body.String(), secret) || !store.fail && strings.Contains(logs.String(), secret) {
			t.Fatalf("%+v: %d, callback %d\n%s\n%s", store, rec.Code, called.Load(), rec.Body, logs.String())
		}
	}
	var logs strings.Builder
	w := world(t, nil)
	h, err := tenants.NewHandler(w.Cred, redirect, key, nopConsent, &tenants.HandlerOptions{Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		Proved: func(context.Context, tenants.Report) { panic(secret) }})
	if err != nil {
		t.Fatal(err)
	}
	link, _ := h.ConsentURL(scenario.DemoContosoTenant)
	rec := get(h, "GET", "admin_consent=True&tenant="+scenario.DemoContosoTenant+"&state="+stateOf(t, link))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "Onboarding complete") || strings.Contains(rec.Body.String()+logs.String(), secret) {
		t.Fatalf("%d\n%s\n%s", rec.Code, rec.Body, logs.String())
	}
}

// TestHandlerProofEndsWithTheRequest: the browser going away (the
// request's context ending) ends the proof at once, token request
// included.
func TestHandlerProofEndsWithTheRequest(t *testing.T) {
	src := &blockingSource{}
	cred, err := kvassert.NewCredential(scenario.DemoHomeTenant, scenario.DemoAppClientID, src, &kvassert.CredentialOptions{AdditionallyAllowedTenants: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	h, err := tenants.NewHandler(cred, redirect, key, nopConsent, &tenants.HandlerOptions{ProveTimeout: time.Hour, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	link, _ := h.ConsentURL("")
	ctx, cancel := context.WithCancel(t.Context())
	r := httptest.NewRequestWithContext(ctx, "GET", redirect+"?admin_consent=True&tenant=2b6e9d10-7c4a-4f0e-8d21-5a3b4c6d7e82&state="+stateOf(t, link), nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.ServeHTTP(httptest.NewRecorder(), r)
	}()
	for src.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	cancel()
	select {
	case <-done:
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("ended %v after the request", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the proof outlives its request by 10 s")
	}
}

// TestHandlerPageHeaders: every page of the redirect URI (refused,
// cancelled, onboarded, failed) is HTML that is not cached, sends no
// Referer (its URL held the state), runs no script and is not framed.
func TestHandlerPageHeaders(t *testing.T) {
	quiet := slog.New(slog.DiscardHandler)
	fails := func(context.Context, tenants.Consent) error { return errorString(secret) }
	h, err := tenants.NewHandler(offlineCred(t), redirect, key, nopConsent, &tenants.HandlerOptions{ProveTimeout: -1, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	hf, err := tenants.NewHandler(offlineCred(t), redirect, key, fails, &tenants.HandlerOptions{ProveTimeout: -1, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	hs, err := tenants.NewHandler(offlineCred(t), redirect, key, nopConsent, &tenants.HandlerOptions{ProveTimeout: -1, Logger: quiet, States: panicStore{true}})
	if err != nil {
		t.Fatal(err)
	}
	const ok = "admin_consent=True&tenant=2b6e9d10-7c4a-4f0e-8d21-5a3b4c6d7e82&state="
	st := func(h *tenants.Handler) string { l, _ := h.ConsentURL(""); return stateOf(t, l) }
	for _, c := range []struct {
		h      *tenants.Handler
		method string
		query  string
		status int
	}{
		{h, "POST", "", 405},
		{h, "GET", "state=x", 400},
		{h, "GET", "error=access_denied&error_subcode=cancel&state=" + st(h), 200},
		{h, "GET", ok + st(h), 200},
		{hf, "GET", ok + st(hf), 500},
		{hs, "GET", ok + st(hs), 503},
	} {
		w := get(c.h, c.method, c.query)
		hd := w.Header()
		if w.Code != c.status || hd.Get("Content-Type") != "text/html; charset=utf-8" || hd.Get("Cache-Control") != "no-store" ||
			hd.Get("Referrer-Policy") != "no-referrer" || hd.Get("X-Content-Type-Options") != "nosniff" || hd.Get("X-Frame-Options") != "DENY" ||
			!strings.Contains(hd.Get("Content-Security-Policy"), "default-src 'none'") || !strings.Contains(hd.Get("Content-Security-Policy"), "frame-ancestors 'none'") ||
			strings.Contains(w.Body.String(), "<script") || strings.Contains(w.Body.String(), secret) {
			t.Fatalf("%s %q: %d %v\n%s", c.method, c.query, w.Code, hd, w.Body)
		}
	}
}

// TestConsentURLRedirectCharacters: Entra's redirect URI restrictions
// list characters it does not support (! $ ' ( ) , ;): such a URI is
// refused here rather than by Entra's page in front of the customer.
func TestConsentURLRedirectCharacters(t *testing.T) {
	for _, c := range []string{"!", "$", "'", "(", ")", ",", ";"} {
		_, err := tenants.ConsentURL(scenario.DemoAppClientID, "https://app.example.com/consent"+c+"x", "", nil)
		var ie *kvassertInputError
		if !asInput(err, &ie) || ie.Input != "redirectURI" || !strings.Contains(err.Error(), "! $ ' ( ) , ;") {
			t.Fatalf("%q: %v", c, err)
		}
	}
	for _, ok := range []string{"https://app.example.com/consent?x=1&y=a-b_c.d~e", "https://app.example.com:8443/a/b%20c", "http://localhost:5000/cb"} {
		if _, err := tenants.ConsentURL(scenario.DemoAppClientID, ok, "", nil); err != nil {
			t.Fatalf("%s: %v", ok, err)
		}
	}
}

// TestHandlerManyPermissions: Entra's success redirect lists every granted
// permission in scope; an app with a hundred application permissions (a
// backup or compliance SaaS) is onboarded, and the callback gets them all.
// A 10 kB value is still refused.
func TestHandlerManyPermissions(t *testing.T) {
	var got tenants.Consent
	h, err := tenants.NewHandler(offlineCred(t), redirect, key, func(_ context.Context, c tenants.Consent) error { got = c; return nil },
		&tenants.HandlerOptions{ProveTimeout: -1})
	if err != nil {
		t.Fatal(err)
	}
	perms := make([]string, 100)
	for i := range perms {
		perms[i] = fmt.Sprintf("https://graph.microsoft.com/Permission%03d.ReadWrite.All", i)
	}
	link, _ := h.ConsentURL("")
	q := "admin_consent=True&tenant=2b6e9d10-7c4a-4f0e-8d21-5a3b4c6d7e82&scope=" + url.QueryEscape(strings.Join(perms, " ")) + "&state=" + stateOf(t, link)
	if w := get(h, "GET", q); w.Code != 200 || len(strings.Fields(got.Scope)) != 100 {
		t.Fatalf("%d bytes of query: %d, scope %d bytes\n%s", len(q), w.Code, len(got.Scope), w.Body)
	}
	link, _ = h.ConsentURL("")
	q = "admin_consent=True&tenant=2b6e9d10-7c4a-4f0e-8d21-5a3b4c6d7e82&scope=" + strings.Repeat("x", 10<<10) + "&state=" + stateOf(t, link)
	if w := get(h, "GET", q); w.Code != 400 || !strings.Contains(w.Body.String(), "too long") {
		t.Fatalf("10 kB scope: %d\n%s", w.Code, w.Body)
	}
}
