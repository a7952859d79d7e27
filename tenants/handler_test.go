package tenants_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kvassert/kvassert/kvasserttest/scenario"
	"github.com/kvassert/kvassert/tenants"
)

const redirect = "https://app.example.com/consent"

// stateOf returns the state of a consent link.
func stateOf(t testing.TB, link string) string {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	s := u.Query().Get("state")
	if s == "" {
		t.Fatalf("no state in %s", link)
	}
	return s
}

func get(h http.Handler, method, rawQuery string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, "https://app.example.com/consent", nil)
	r.URL.RawQuery = rawQuery
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// TestHandlerRefusesHostileRedirects: whatever the query, a redirect that
// is not a fresh consent with the Handler's own state gets a clear 4xx page
// that quotes none of it, and never reaches the callback.
func TestHandlerRefusesHostileRedirects(t *testing.T) {
	var called atomic.Int32
	h, err := tenants.NewHandler(offlineCred(t), redirect, key, func(context.Context, tenants.Consent) error {
		called.Add(1)
		return nil
	}, &tenants.HandlerOptions{ProveTimeout: -1})
	if err != nil {
		t.Fatal(err)
	}
	link, _ := h.ConsentURL("")
	good := stateOf(t, link)
	other, err := tenants.NewHandler(offlineCred(t), redirect, []byte(strings.Repeat("kv", 16)), nopConsent, nil)
	if err != nil {
		t.Fatal(err)
	}
	otherLink, _ := other.ConsentURL("")
	forged := stateOf(t, otherLink)
	flipped := []byte(good)
	flipped[10] ^= 1
	expiring, _ := tenants.NewHandler(offlineCred(t), redirect, key, nopConsent, &tenants.HandlerOptions{StateTTL: time.Second})
	expLink, _ := expiring.ConsentURL("")
	expired := stateOf(t, expLink)
	time.Sleep(1100 * time.Millisecond) // states have second resolution
	const tenant = "2b6e9d10-7c4a-4f0e-8d21-5a3b4c6d7e82"
	ok := "admin_consent=True&tenant=" + tenant + "&state="
	big := strings.Repeat("A", 10<<10)
	for _, tc := range []struct {
		name, method, query string
		status              int
		says                string
	}{
		{"POST", http.MethodPost, ok + good, 405, "Method not allowed"},
		{"PUT", http.MethodPut, ok + good, 405, "Method not allowed"},
		{"HEAD", http.MethodHead, ok + good, 405, ""},
		{"no query", "GET", "", 400, "no state"},
		{"no state", "GET", "admin_consent=True&tenant=" + tenant, 400, "no state"},
		{"empty state", "GET", ok, 400, "no state"},
		{"forged state (other key)", "GET", ok + forged, 400, "does not come from a link this app made"},
		{"tampered state", "GET", ok + string(flipped), 400, "does not come from a link this app made"},
		{"garbage state", "GET", ok + secret, 400, "does not come from a link this app made"},
		{"expired state", "GET", ok + expired, 400, "expired"},
		{"duplicate state", "GET", ok + good + "&state=" + good, 400, "repeats a parameter"},
		{"duplicate tenant", "GET", ok + good + "&tenant=" + tenant, 400, "repeats a parameter"},
		{"duplicate error", "GET", "error=access_denied&error=x&state=" + good, 400, "repeats a parameter"},
		{"10 kB state", "GET", ok + big, 400, "too long"},
		{"10 kB tenant", "GET", "admin_consent=True&state=" + good + "&tenant=" + big, 400, "too long"},
		{"10 kB description", "GET", "error=access_denied&state=" + good + "&error_description=" + big, 400, "too long"},
		{"bad escape", "GET", ok + good + "&x=%zz", 400, "not a valid query"},
		{"many parameters", "GET", ok + good + strings.Repeat("&a", 0) + manyParams(20), 400, "too many"},
		{"no admin_consent", "GET", "tenant=" + tenant + "&state=" + good, 400, "admin_consent=True is missing"},
		{"admin_consent false", "GET", "admin_consent=False&tenant=" + tenant + "&state=" + good, 400, "admin_consent=True is missing"},
		{"no tenant", "GET", "admin_consent=True&state=" + good, 400, "no valid tenant"},
		{"domain tenant", "GET", "admin_consent=True&tenant=contoso.onmicrosoft.com&state=" + good, 400, "no valid tenant"},
		{"script tenant", "GET", "admin_consent=True&tenant=%3Cscript%3E" + secret + "&state=" + good, 400, "no valid tenant"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := get(h, tc.method, tc.query)
			body := w.Body.String()
			if w.Code != tc.status || !strings.Contains(body, tc.says) {
				t.Fatalf("status %d, want %d with %q:\n%s", w.Code, tc.status, tc.says, body)
			}
			if strings.Contains(body, secret) || strings.Contains(body, good) || strings.Contains(body, "<script") {
				t.Fatalf("the page echoes its input:\n%s", body)
			}
			if w.Header().Get("Cache-Control") != "no-store" || w.Header().Get("Referrer-Policy") != "no-referrer" || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") {
				t.Fatalf("headers %v", w.Header())
			}
		})
	}
	if n := called.Load(); n != 0 {
		t.Fatalf("onConsent called %d times", n)
	}
	// The good state still works once: none of the above used it.
	w := get(h, "GET", ok+good)
	if w.Code != 200 || called.Load() != 1 {
		t.Fatalf("a good redirect: %d, called %d\n%s", w.Code, called.Load(), w.Body)
	}
	if w = get(h, "GET", ok+good); w.Code != 400 || !strings.Contains(w.Body.String(), "already received") || called.Load() != 1 {
		t.Fatalf("a replayed redirect: %d, called %d\n%s", w.Code, called.Load(), w.Body)
	}
}

func manyParams(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString("&p")
		b.WriteByte(byte('a' + i))
		b.WriteString("=1")
	}
	return b.String()
}

// TestHandlerRefusal: Entra's refusal (the administrator cancelled) gets a
// page saying so; the callback is never called; the state is used.
func TestHandlerRefusal(t *testing.T) {
	var called atomic.Int32
	h, err := tenants.NewHandler(offlineCred(t), redirect, key, func(context.Context, tenants.Consent) error {
		called.Add(1)
		return nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ q, says string }{
		{"error=access_denied&error_subcode=cancel&error_description=AADSTS65004%3A+" + secret, "cancelled the consent"},
		{"error=access_denied&error_description=" + secret, "Consent was denied"},
		{"error=%3Cb%3E" + secret, "did not grant consent"},
	} {
		link, _ := h.ConsentURL("contoso.onmicrosoft.com")
		state := stateOf(t, link)
		w := get(h, "GET", tc.q+"&state="+state)
		if w.Code != 200 || !strings.Contains(w.Body.String(), tc.says) || !strings.Contains(w.Body.String(), "Consent was not granted") {
			t.Fatalf("%s: %d\n%s", tc.q, w.Code, w.Body)
		}
		if strings.Contains(w.Body.String(), secret) || strings.Contains(w.Body.String(), "<b>") {
			t.Fatalf("echo:\n%s", w.Body)
		}
		if w := get(h, "GET", tc.q+"&state="+state); w.Code != 400 {
			t.Fatalf("a replayed refusal: %d", w.Code)
		}
	}
	if called.Load() != 0 {
		t.Fatal("onConsent called on a refusal")
	}
}

// TestHandlerOnboards: a consent reaches the callback with the tenant,
// then the proof gets a token there and shows the roles it granted.
func TestHandlerOnboards(t *testing.T) {
	w := world(t, nil)
	var got []tenants.Consent
	var proved tenants.Report
	h, err := tenants.NewHandler(w.Cred, redirect, key, func(_ context.Context, c tenants.Consent) error {
		got = append(got, c)
		return nil
	}, &tenants.HandlerOptions{
		Want:   &tenants.Want{Roles: map[string][]string{"https://graph.microsoft.com": {"Sites.Read.All"}}},
		Proved: func(_ context.Context, r tenants.Report) { proved = r },
	})
	if err != nil {
		t.Fatal(err)
	}
	link, err := h.ConsentURL("")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(link, "https://login.microsoftonline.com/organizations/v2.0/adminconsent?") || !strings.Contains(link, "redirect_uri="+url.QueryEscape(redirect)) {
		t.Fatal(link)
	}
	rec := get(h, "GET", "admin_consent=True&tenant="+strings.ToUpper(scenario.DemoContosoTenant)+"&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default&state="+stateOf(t, link))
	body := rec.Body.String()
	if rec.Code != 200 || !strings.Contains(body, "Onboarding complete") || !strings.Contains(body, "Sites.Read.All") || !strings.Contains(body, "Organization.Read.All") {
		t.Fatalf("%d\n%s", rec.Code, body)
	}
	if len(got) != 1 || got[0].Tenant != scenario.DemoContosoTenant || got[0].Scope != "https://graph.microsoft.com/.default" {
		t.Fatalf("callback got %+v", got)
	}
	if proved.State != tenants.StateOK || len(proved.Resources) != 1 || len(proved.Resources[0].Missing) != 0 {
		t.Fatalf("proof %+v", proved)
	}
}

// TestHandlerWaitsForReplication: right after a consent Entra may answer
// AADSTS700016 for a while; the proof retries until the token comes.
func TestHandlerWaitsForReplication(t *testing.T) {
	w := world(t, nil)
	var slept atomic.Int32
	h, err := tenants.NewHandler(w.Cred, redirect, key, nopConsent, nil)
	if err != nil {
		t.Fatal(err)
	}
	tenants.SetSleep(h, func(context.Context, time.Duration) bool {
		if slept.Add(1) == 2 { // replicated after two failed tries
			if err := w.Emu.SetConsent(scenario.DemoAppClientID, wingtip(t), true); err != nil {
				t.Error(err)
			}
		}
		return true
	})
	link, _ := h.ConsentURL(wingtip(t))
	rec := get(h, "GET", "admin_consent=True&tenant="+wingtip(t)+"&state="+stateOf(t, link))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "Onboarding complete") || slept.Load() != 2 {
		t.Fatalf("%d after %d sleeps\n%s", rec.Code, slept.Load(), rec.Body)
	}
}

// TestHandlerProofGivesUp: a tenant that never gets the app is reported as
// not confirmed after ProveTimeout, and the page says so.
func TestHandlerProofGivesUp(t *testing.T) {
	w := world(t, nil)
	var proved tenants.Report
	h, err := tenants.NewHandler(w.Cred, redirect, key, nopConsent, &tenants.HandlerOptions{ProveTimeout: time.Minute,
		Logger: slog.New(slog.DiscardHandler), Proved: func(_ context.Context, r tenants.Report) { proved = r }})
	if err != nil {
		t.Fatal(err)
	}
	// The Handler's clock moves by the back-off only: the minute of
	// retries passes at once.
	var mu sync.Mutex
	now, tries := time.Now(), 0
	tenants.SetNow(h, func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
	tenants.SetSleep(h, func(_ context.Context, d time.Duration) bool {
		mu.Lock()
		defer mu.Unlock()
		now, tries = now.Add(d), tries+1
		return true
	})
	link, _ := h.ConsentURL("")
	rec := get(h, "GET", "admin_consent=True&tenant="+wingtip(t)+"&state="+stateOf(t, link))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "access not confirmed yet") || proved.State != "app_not_found" || proved.Code != 700016 {
		t.Fatalf("%d %+v\n%s", rec.Code, proved, rec.Body)
	}
	if !strings.Contains(proved.ConsentURL, "/"+wingtip(t)+"/v2.0/adminconsent?") {
		t.Fatalf("consent URL %q", proved.ConsentURL)
	}
	if tries != 6 { // back-off 1+2+4+8+15+15 s; the next 15 s would end after the minute
		t.Fatalf("%d tries", tries)
	}
}

// TestHandlerCallbackFails: the callback's error or panic makes a 500 page
// that does not quote it.
func TestHandlerCallbackFails(t *testing.T) {
	for name, cb := range map[string]func(context.Context, tenants.Consent) error{
		"error": func(context.Context, tenants.Consent) error { return errorString(secret) },
		"panic": func(context.Context, tenants.Consent) error { panic(secret) },
	} {
		h, err := tenants.NewHandler(offlineCred(t), redirect, key, cb, &tenants.HandlerOptions{ProveTimeout: -1, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		link, _ := h.ConsentURL("")
		rec := get(h, "GET", "admin_consent=True&tenant="+scenario.DemoContosoTenant+"&state="+stateOf(t, link))
		if rec.Code != 500 || !strings.Contains(rec.Body.String(), "could not complete the onboarding") || strings.Contains(rec.Body.String(), secret) {
			t.Fatalf("%s: %d\n%s", name, rec.Code, rec.Body)
		}
	}
}

type errorString string

func (e errorString) Error() string { return string(e) }

// wingtip is the demo's customer tenant that has not consented.
func wingtip(t testing.TB) string {
	for _, tn := range scenario.Demo().Tenants {
		if tn.Name == "wingtip" {
			return tn.ID
		}
	}
	t.Fatal("no wingtip tenant in the demo")
	return ""
}
