package tenants_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/kvassert/kvassert/internal/browsertest"
	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/tenants"
)

// TestConsentInChromium is the onboarding end to end in headless Chromium:
// the consent link opens the emulated Entra consent page, the
// administrator clicks Accept, Entra redirects to the Handler (an httptest
// server on loopback), which calls the callback and proves the onboarding
// with a token carrying the granted roles, after waiting out Entra's
// replication. Cancel never reaches the callback; nor does a tampered
// state (a 400 page) or a reload of the redirect. With "organizations" the
// administrator picks the tenant on Entra's page.
func TestConsentInChromium(t *testing.T) {
	w := world(t, nil)
	// Entra answers 700016 for 3 s after a consent, as it does while the
	// new service principal replicates.
	if err := w.Emu.SetConsentDelay(3 * time.Second); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var consents []string
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux) // 127.0.0.1: matches the registered http://127.0.0.1/consent/callback on any port
	t.Cleanup(srv.Close)
	h, err := tenants.NewHandler(w.Cred, srv.URL+"/consent/callback", key, func(_ context.Context, c tenants.Consent) error {
		mu.Lock()
		defer mu.Unlock()
		consents = append(consents, c.Tenant)
		return nil
	}, &tenants.HandlerOptions{Want: &tenants.Want{Roles: map[string][]string{graph: {"Sites.Read.All"}}}})
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/consent/callback", h)
	emuAddr := strings.TrimPrefix(w.Emu.URL(), "https://")
	page := browsertest.Start(t, &browsertest.Options{Args: []string{
		"--host-resolver-rules=MAP login.microsoftonline.com " + emuAddr, "--ignore-certificate-errors"}})
	called := func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), consents...) }
	handlerPage := "location.origin === '" + srv.URL + "' && document.getElementById('title') !== null"

	// Cancel: a clear page, the callback never called.
	link, err := h.ConsentURL(emuhook.DemoTailspinTenant)
	if err != nil {
		t.Fatal(err)
	}
	page.Navigate(link)
	page.WaitFor("document.getElementById('cancel') !== null")
	page.Click("#cancel")
	page.WaitFor(handlerPage)
	if got := page.Text("title"); got != "Consent was not granted" || !strings.Contains(page.Text("message"), "cancelled") || len(called()) != 0 {
		t.Fatalf("after Cancel: %q %q, callback %v", got, page.Text("message"), called())
	}

	// Tampered state: Entra redirects with it, the Handler refuses it.
	link, _ = h.ConsentURL(wingtip(t))
	i := strings.Index(link, "state=") + len("state=") + 20
	tampered := link[:i] + map[bool]string{true: "B", false: "A"}[link[i] == 'A'] + link[i+1:]
	page.Navigate(tampered)
	page.WaitFor("document.getElementById('accept') !== null")
	page.Click("#accept")
	page.WaitFor(handlerPage)
	var status int
	page.Eval("performance.getEntriesByType('navigation')[0].responseStatus", &status)
	if got := page.Text("title"); got != "Invalid or expired consent link" || status != 400 || len(called()) != 0 {
		t.Fatalf("tampered state: %q (HTTP %d), callback %v", got, status, called())
	}

	// Accept: onboarded, with a token that has the granted roles.
	link, _ = h.ConsentURL(emuhook.DemoTailspinTenant)
	page.Navigate(link)
	page.WaitFor("document.getElementById('accept') !== null")
	start := time.Now()
	page.Click("#accept")
	page.WaitFor(handlerPage)
	if got := page.Text("title"); got != "Onboarding complete" || page.Text("tenant") != emuhook.DemoTailspinTenant {
		t.Fatalf("after Accept: %q %q %q", got, page.Text("message"), page.Text("tenant"))
	}
	var granted string
	page.Eval("document.querySelector('#roles .granted').textContent", &granted)
	if granted != "Organization.Read.All, Sites.Read.All" {
		t.Fatalf("granted roles on the page: %q", granted)
	}
	if got := called(); len(got) != 1 || got[0] != emuhook.DemoTailspinTenant {
		t.Fatalf("callback %v", got)
	}
	if waited := time.Since(start); waited < 2*time.Second {
		t.Fatalf("the proof took %v: it did not wait for the replication", waited)
	}
	tok, err := w.Cred.GetToken(t.Context(), policy.TokenRequestOptions{TenantID: emuhook.DemoTailspinTenant, Scopes: []string{graph + "/.default"}})
	if err != nil {
		t.Fatal(err)
	}
	r, err := tenants.Check(t.Context(), w.Cred, emuhook.DemoTailspinTenant, &tenants.Want{Roles: map[string][]string{graph: {"Sites.Read.All"}}})
	if err != nil || r.State != tenants.StateOK || !r.FromCache || tok.Token == "" {
		t.Fatalf("%+v %v", r, err)
	}
	// The same redirect again (back button, reload): refused, no callback.
	page.Eval("location.reload(); true", nil)
	page.WaitFor(handlerPage + " && document.getElementById('title').textContent === 'Consent link already used'")
	if len(called()) != 1 {
		t.Fatalf("callback %v after a reload", called())
	}
	// "organizations": the administrator picks the tenant on Entra's page;
	// the redirect names it.
	link, _ = h.ConsentURL("")
	page.Navigate(link)
	page.WaitFor("document.getElementById('tenant') !== null && document.getElementById('tenant').tagName === 'SELECT'")
	page.Eval("(() => { const s = document.getElementById('tenant'); s.value = '"+wingtip(t)+"'; return s.value; })()", nil)
	page.Click("#accept")
	page.WaitFor(handlerPage)
	if got := page.Text("title"); got != "Onboarding complete" || page.Text("tenant") != wingtip(t) {
		t.Fatalf("organizations: %q %q %q", got, page.Text("message"), page.Text("tenant"))
	}
	if got := called(); len(got) != 2 || got[1] != wingtip(t) {
		t.Fatalf("callback %v", got)
	}
	if errs := page.Errors(); len(errs) != 0 {
		t.Fatalf("browser errors: %v", errs)
	}
}
