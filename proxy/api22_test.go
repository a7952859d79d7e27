package proxy

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
	"github.com/kvassert/kvassert/tenants"
)

// The token API answers tenant_id as the tenant's GUID, whatever form of
// the tenant the request gave (as kvassert token does): the tid of the
// token Entra issued.
func TestAPITenantIDIsTheGUID(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	for given, want := range map[string]string{
		"contoso.onmicrosoft.com":                    scenario.DemoContosoTenant,
		"Fabrikam.onmicrosoft.com":                   emuhook.DemoFabrikamTenant,
		strings.ToUpper(emuhook.DemoNorthwindTenant): emuhook.DemoNorthwindTenant,
	} {
		tr := env.token(env.api("kv-certificate", kvCertBody(given)))
		checkTokenClaims(t, tr, want, scenario.DemoAppClientID)
	}
}

// GET /healthz answers 200 "ok" without a secret, and nothing more: no
// CORS, no caching, no version or configuration.
func TestHealthz(t *testing.T) {
	t.Parallel()
	env := newEnv(t, withDefault(scenario.DemoVault))
	for _, method := range []string{"GET", "HEAD"} {
		resp := env.do(method, "/healthz", "", nil)
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s /healthz: %d %s", method, resp.StatusCode, body)
		}
		want := "ok\n"
		if method == "HEAD" {
			want = ""
		}
		if string(body) != want {
			t.Errorf("%s /healthz body %q, want %q", method, body, want)
		}
		h := resp.Header
		if ct := h.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
			t.Errorf("Content-Type %q", ct)
		}
		if cc := h.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("Cache-Control %q, want no-store", cc)
		}
		for k := range h {
			if strings.HasPrefix(strings.ToLower(k), "access-control-") {
				t.Errorf("CORS header %s on /healthz", k)
			}
		}
		for _, k := range []string{"Server", "X-Powered-By", "Set-Cookie"} {
			if h.Get(k) != "" {
				t.Errorf("/healthz sends %s", k)
			}
		}
	}
	// Nothing else on it: other methods, and the same guards as every route
	// (the Host check against DNS rebinding).
	if resp := env.do("POST", "/healthz", "text/plain", strings.NewReader("x")); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /healthz: %d", resp.StatusCode)
	}
	if resp := env.do("GET", "/healthz", "", nil, "Host", "evil.example:80"); resp.StatusCode == http.StatusOK {
		t.Errorf("/healthz with a foreign Host: %d", resp.StatusCode)
	}
	if resp := env.do("GET", "/healthz/", "", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("/healthz/: %d", resp.StatusCode)
	}
}

// An Entra answer that consent fixes carries the admin-consent link, built
// by the proxy for the request's tenant and app; other refusals do not.
func TestAPIConsentURL(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	p := problemOf(t, env.api("kv-certificate", kvCertBody("Wingtip.onmicrosoft.com")), http.StatusBadRequest)
	want := "https://login.microsoftonline.com/wingtip.onmicrosoft.com/adminconsent?client_id=" + scenario.DemoAppClientID
	if p.Code != 700016 || p.ConsentURL != want {
		t.Errorf("700016: code %d consentUrl %q, want %q", p.Code, p.ConsentURL, want)
	}
	p = problemOf(t, env.api("kv-certificate", kvCertBody("nosuch.onmicrosoft.com")), http.StatusBadRequest)
	if p.Type != problemEntra || p.ConsentURL != "" {
		t.Errorf("unknown tenant: %+v", p)
	}
}

// With a redirect URI configured (kvassert proxy --redirect-uri), the
// problem's link is the v2 one the Tenants view gives for the same tenant,
// so that the administrator lands on the SaaS's consent handler.
func TestAPIConsentURLWithRedirectURI(t *testing.T) {
	t.Parallel()
	env := newEnv(t, withTenants)
	p := problemOf(t, env.api("kv-certificate", kvCertBody("Wingtip.onmicrosoft.com")), http.StatusBadRequest)
	want, err := tenants.ConsentURL(scenario.DemoAppClientID, emuhook.DemoRedirectURI, "", &tenants.ConsentURLOptions{Tenant: "wingtip.onmicrosoft.com"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Code != 700016 || p.ConsentURL != want || !strings.Contains(p.ConsentURL, "/v2.0/adminconsent?") {
		t.Errorf("700016: code %d consentUrl %q, want %q", p.Code, p.ConsentURL, want)
	}
}

// GET /api/config carries this proxy's real base URL and the lines
// kvassert proxy prints, for the configured app; never /msi/forward's
// secret.
func TestAPIConfigLines(t *testing.T) {
	t.Parallel()
	env := newEnv(t, withDefault(scenario.DemoVault), func(c *Options, _ *kvasserttest.Emulator) { c.AllowForward = true })
	got := decode[pageConfig](t, env.do("GET", "/api/config", "", nil, "Authorization", "Bearer "+env.s.Secret()), http.StatusOK)
	if got.Base != env.url {
		t.Errorf("base %q, want %q", got.Base, env.url)
	}
	var all []string
	for _, g := range got.Lines {
		all = append(all, g.Lines...)
	}
	text := strings.Join(all, "\n")
	mi, err := env.s.AppServiceEnv(env.url, Target{Tenant: scenario.DemoContosoTenant, ClientID: scenario.DemoAppClientID, Vault: scenario.DemoVault, Certificate: scenario.DemoCertificate})
	if err != nil {
		t.Fatal(err)
	}
	cs, _ := env.s.CloudShellEnv(env.url, Target{Tenant: scenario.DemoContosoTenant, ClientID: scenario.DemoAppClientID, Vault: scenario.DemoVault, Certificate: scenario.DemoCertificate})
	for _, want := range []string{"export " + mi[0], "export " + mi[1], "export " + cs[0], "curl -sS " + env.url + "/api/token/kv-certificate"} {
		if !strings.Contains(text, want) {
			t.Errorf("lines lack %q:\n%s", want, text)
		}
	}
	fwd, err := env.s.AppServiceEnv(env.url, Target{Forward: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, secret, _ := strings.Cut(fwd[1], "="); strings.Contains(text, secret) || strings.Contains(text, "/msi/forward") {
		t.Errorf("the lines hold the forward route's secret:\n%s", text)
	}
}
