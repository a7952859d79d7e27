package proxy

import (
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/internal/browsertest"
	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
	"github.com/kvassert/kvassert/tenants"
)

var demoRoles = []string{"Organization.Read.All", "Sites.Read.All"}

// withTenants configures the Tenants view: contoso (healthy), fabrikam
// (granted one of the two required roles), wingtip (never consented).
func withTenants(c *Options, e *kvasserttest.Emulator) {
	withDefault(scenario.DemoVault)(c, e)
	c.Tenants = []string{scenario.DemoContosoTenant, emuhook.DemoFabrikamTenant, emuhook.DemoWingtipTenant}
	c.TenantRoles = map[string][]string{"https://graph.microsoft.com": demoRoles}
	c.TenantRedirectURI = emuhook.DemoRedirectURI
}

func (env *testEnv) tenantsReport(status int) tenantsResponse {
	env.t.Helper()
	return decode[tenantsResponse](env.t, env.do("GET", "/api/tenants", "", nil, "Authorization", "Bearer "+env.s.Secret()), status)
}

func TestTenantsAPI(t *testing.T) {
	t.Parallel()
	env := newEnv(t, withTenants)
	if err := env.e.SetGrantedRoles(scenario.DemoAppClientID, emuhook.DemoFabrikamTenant, "Sites.Read.All"); err != nil {
		t.Fatal(err)
	}
	// The secret is required, as on every API route.
	problemOf(t, env.do("GET", "/api/tenants", "", nil), http.StatusUnauthorized)
	problemOf(t, env.do("GET", "/api/tenants", "", nil, "Authorization", "Bearer wrong-secret-wrong-secret-wrong-secret"), http.StatusUnauthorized)

	signs := env.e.Count(kvasserttest.OpKeySign)
	got := env.tenantsReport(http.StatusOK)
	if n := env.e.Count(kvasserttest.OpKeySign) - signs; n != 3 {
		t.Errorf("first check: %d keys/sign, want 3 (one per tenant)", n)
	}
	if got.ClientID != scenario.DemoAppClientID || len(got.Tenants) != 3 {
		t.Fatalf("report: %+v", got)
	}
	ok, short, refused := got.Tenants[0], got.Tenants[1], got.Tenants[2]
	if ok.Tenant != scenario.DemoContosoTenant || ok.State != tenants.StateOK || ok.ConsentURL != "" || ok.Error != "" ||
		len(ok.Resources) != 1 || !slices.Equal(ok.Resources[0].Granted, demoRoles) || !slices.Equal(ok.Resources[0].Required, demoRoles) {
		t.Errorf("contoso: %+v", ok)
	}
	if short.State != tenants.StateMissingRoles || len(short.Resources) != 1 || !slices.Equal(short.Resources[0].Granted, []string{"Sites.Read.All"}) ||
		!slices.Equal(short.Resources[0].Missing, []string{"Organization.Read.All"}) || !strings.Contains(short.ConsentURL, emuhook.DemoFabrikamTenant+"/v2.0/adminconsent?client_id="+scenario.DemoAppClientID) {
		t.Errorf("fabrikam: %+v", short)
	}
	if refused.State != "app_not_found" || refused.Code != 700016 || refused.Hint == "" ||
		!strings.HasPrefix(refused.ConsentURL, "https://login.microsoftonline.com/"+emuhook.DemoWingtipTenant+"/v2.0/adminconsent?client_id="+scenario.DemoAppClientID) ||
		!strings.Contains(refused.ConsentURL, "redirect_uri="+url.QueryEscape(emuhook.DemoRedirectURI)) {
		t.Errorf("wingtip: %+v", refused)
	}
	// The link opens the emulated consent page (redirect_uri registered).
	if resp, err := env.e.Client().Get(refused.ConsentURL); err != nil {
		t.Error(err)
	} else {
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), `id="accept"`) {
			t.Errorf("wingtip's consent link: HTTP %d\n%s", resp.StatusCode, page)
		}
	}
	// The error is in the proxy's words: codes, never Entra's description.
	if !strings.HasPrefix(refused.Error, "Entra ID refused the token request (HTTP 400, AADSTS700016") || strings.Contains(strings.ToLower(refused.Error), "directory") {
		t.Errorf("wingtip error %q: not the proxy's wording", refused.Error)
	}

	// Again: the tokens are cached and the refusal remembered: no sign.
	signs = env.e.Count(kvasserttest.OpKeySign)
	again := env.tenantsReport(http.StatusOK)
	if n := env.e.Count(kvasserttest.OpKeySign) - signs; n != 0 {
		t.Errorf("second check: %d keys/sign, want 0", n)
	}
	if !again.Tenants[0].FromCache || again.Tenants[2].State != "app_not_found" || again.Tenants[2].RefusedUntil.IsZero() {
		t.Errorf("second check: %+v", again.Tenants)
	}
	// The token API shares the credential: contoso's token is cached there too.
	signs = env.e.Count(kvasserttest.OpKeySign)
	decode[tokenResponse](t, env.api("kv-certificate", map[string]any{"clientId": scenario.DemoAppClientID, "tenantId": scenario.DemoContosoTenant,
		"scopes": []string{graph}, "keyVaultUri": "https://" + scenario.DemoVault + ".vault.azure.net/", "certificateName": scenario.DemoCertificate}), http.StatusOK)
	if n := env.e.Count(kvasserttest.OpKeySign) - signs; n != 0 {
		t.Errorf("token API after the check: %d keys/sign, want 0 (the same credential)", n)
	}
	// The answer holds no token.
	raw, _ := json.Marshal(again)
	if strings.Contains(string(raw), "eyJ") {
		t.Errorf("the report holds something JWT-like: %s", raw)
	}
}

func TestTenantsAPINoTenants(t *testing.T) {
	t.Parallel()
	env := newEnv(t, withDefault(scenario.DemoVault))
	got := env.tenantsReport(http.StatusOK)
	if got.ClientID != "" || got.Tenants == nil || len(got.Tenants) != 0 {
		t.Errorf("no tenants configured: %+v", got)
	}
	if n := env.e.Count(kvasserttest.OpKeySign); n != 0 {
		t.Errorf("%d keys/sign without tenants", n)
	}
}

// TestTenantsAPIVaultRefuses: the proxy's identity cannot sign: a problem,
// not a report of refused tenants.
func TestTenantsAPIVaultRefuses(t *testing.T) {
	t.Parallel()
	env := newEnv(t, withTenants, func(c *Options, _ *kvasserttest.Emulator) { c.KeyVaultCredential = nil })
	p := problemOf(t, env.do("GET", "/api/tenants", "", nil, "Authorization", "Bearer "+env.s.Secret()), http.StatusNotImplemented)
	if p.Type != problemNotConfig {
		t.Errorf("problem %+v", p)
	}
}

func TestTenantOptions(t *testing.T) {
	t.Parallel()
	configured := func(o *Options) {
		o.DefaultClientID, o.DefaultTenantID = scenario.DemoAppClientID, scenario.DemoContosoTenant
		o.DefaultVault, o.DefaultCertificate = scenario.DemoVault, scenario.DemoCertificate
	}
	for name, tc := range map[string]struct {
		set   func(*Options)
		input string
	}{
		"no app":     {func(o *Options) { o.Tenants = []string{scenario.DemoContosoTenant} }, "Tenants"},
		"bad tenant": {func(o *Options) { configured(o); o.Tenants = []string{"not a tenant"} }, "Tenants"},
		"alias":      {func(o *Options) { configured(o); o.Tenants = []string{"organizations"} }, "Tenants"},
		"too many": {func(o *Options) {
			configured(o)
			o.Tenants = slices.Repeat([]string{scenario.DemoContosoTenant}, maxTenants+1)
		}, "Tenants"},
		"roles alone": {func(o *Options) {
			configured(o)
			o.TenantRoles = map[string][]string{"https://graph.microsoft.com": {"A"}}
		}, "TenantRoles"},
		"bad resource": {func(o *Options) {
			configured(o)
			o.Tenants = []string{"contoso.com"}
			o.TenantRoles = map[string][]string{"graph": {"A"}}
		}, "TenantRoles"},
		"redirect http": {func(o *Options) {
			configured(o)
			o.Tenants = []string{"contoso.com"}
			o.TenantRedirectURI = "http://app.example/cb"
		}, "TenantRedirectURI"},
		"redirect alone": {func(o *Options) { configured(o); o.TenantRedirectURI = "https://app.example/cb" }, "TenantRedirectURI"},
		"role with space": {func(o *Options) {
			configured(o)
			o.Tenants = []string{"contoso.com"}
			o.TenantRoles = map[string][]string{"api://x": {"A B"}}
		}, "TenantRoles"},
	} {
		o := &Options{Logger: discardLogger()}
		tc.set(o)
		_, err := New(o)
		var ie *kvassert.InputError
		if !errors.As(err, &ie) || ie.Input != tc.input {
			t.Errorf("%s: %v, want an InputError for %s", name, err, tc.input)
		}
	}
	o := &Options{Logger: discardLogger(), Tenants: []string{"contoso.onmicrosoft.com", scenario.DemoContosoTenant},
		TenantRoles: map[string][]string{"https://graph.microsoft.com": demoRoles}}
	configured(o)
	if _, err := New(o); err != nil {
		t.Errorf("valid tenants: %v", err)
	}
}

// TestOpenAPITenants: the document's report schemas list exactly the JSON
// members of the Go types the route answers with.
func TestOpenAPITenants(t *testing.T) {
	t.Parallel()
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]any `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatal(err)
	}
	for name, typ := range map[string]reflect.Type{
		"TenantsResponse": reflect.TypeFor[tenantsResponse](),
		"TenantReport":    reflect.TypeFor[tenants.Report](),
		"ResourceReport":  reflect.TypeFor[tenants.ResourceReport](),
	} {
		props, fields := slices.Sorted(maps.Keys(doc.Components.Schemas[name].Properties)), slices.Sorted(maps.Keys(jsonFields(typ)))
		if !slices.Equal(props, fields) {
			t.Errorf("schema %s has %v, the Go type %v", name, props, fields)
		}
	}
}

// TestTenantsViewInChromium: the page's Tenants view lists a healthy, a
// short and an unconsented tenant with their states and roles; the
// unconsented one's consent link is an <a> that a click opens.
func TestTenantsViewInChromium(t *testing.T) {
	t.Parallel()
	env := newEnv(t, withTenants)
	if err := env.e.SetGrantedRoles(scenario.DemoAppClientID, emuhook.DemoFabrikamTenant, "Sites.Read.All"); err != nil {
		t.Fatal(err)
	}
	emu := strings.TrimPrefix(env.e.URL(), "https://")
	c := &cdp{t: t, Page: browsertest.Start(t, &browsertest.Options{Args: []string{
		"--host-resolver-rules=MAP login.microsoftonline.com " + emu, "--ignore-certificate-errors",
	}})}
	c.Navigate(env.url + "/#secret=" + env.s.Secret())
	// With the secret in hand, the view checks the tenants on load.
	c.WaitFor("document.body.dataset.ready === 'true' && document.body.dataset.tenants === 'done'")
	if s := c.Text("tenants-status"); s != "3 tenants of app "+scenario.DemoAppClientID+": 2 fall short" {
		t.Errorf("status %q", s)
	}
	type row struct {
		Tenant, State, Shown, Granted, Required, Todo string
		Links                                         []struct{ Tag, Href, Rel, Target string }
	}
	var rows []row
	c.Eval(`Array.from(document.querySelectorAll('#tenants-body tr')).map((tr) => ({
		Tenant: tr.dataset.tenant, State: tr.dataset.state,
		Shown: tr.querySelector('.tenant-state').textContent,
		Granted: tr.children[2].textContent, Required: tr.children[3].textContent, Todo: tr.children[4].textContent,
		Links: Array.from(tr.querySelectorAll('a')).map((a) => ({Tag: a.tagName, Href: a.href, Rel: a.rel, Target: a.target})),
	}))`, &rows)
	if len(rows) != 3 {
		t.Fatalf("rows: %+v", rows)
	}
	if r := rows[0]; r.Tenant != scenario.DemoContosoTenant || r.State != "ok" || r.Shown != "ok" || len(r.Links) != 0 ||
		r.Granted != "graph.microsoft.com: Organization.Read.All Sites.Read.All" || r.Required != r.Granted {
		t.Errorf("healthy tenant: %+v", r)
	}
	if r := rows[1]; r.Tenant != emuhook.DemoFabrikamTenant || r.State != "missing_roles" || r.Granted != "graph.microsoft.com: Sites.Read.All" ||
		r.Required != "graph.microsoft.com: Organization.Read.All Sites.Read.All" || len(r.Links) != 1 {
		t.Errorf("tenant missing a role: %+v", r)
	}
	wantURL := "https://login.microsoftonline.com/" + emuhook.DemoWingtipTenant + "/v2.0/adminconsent?client_id=" + scenario.DemoAppClientID
	r := rows[2]
	if r.Tenant != emuhook.DemoWingtipTenant || r.State != "app_not_found" || r.Shown != "app_not_found (AADSTS700016)" ||
		r.Granted != "graph.microsoft.com: none" || !strings.Contains(r.Todo, "admin consent") || strings.Contains(r.Todo, "https://") || len(r.Links) != 1 ||
		r.Links[0].Tag != "A" || !strings.HasPrefix(r.Links[0].Href, wantURL+"&") || !strings.Contains(r.Links[0].Rel, "noopener") || r.Links[0].Target != "_blank" {
		t.Fatalf("unconsented tenant: %+v", r)
	}

	// At phone width no identifier breaks mid-word, and the link is
	// clickable where it is: it opens the emulated consent page.
	c.SetSize(390, 900)
	var broken []string
	c.Eval(brokenIdentifiers, &broken)
	if len(broken) > 0 {
		t.Errorf("at 390 px, identifiers split over two lines: %q", broken)
	}
	c.Call("Target.setDiscoverTargets", map[string]any{"discover": true})
	c.Click(`#tenants-body tr[data-tenant="` + emuhook.DemoWingtipTenant + `"] a.consent`)
	deadline := time.Now().Add(browsertest.Timeout)
	for {
		var targets struct {
			TargetInfos []struct{ Type, URL string } `json:"targetInfos"`
		}
		if err := json.Unmarshal(c.Call("Target.getTargets", nil), &targets); err != nil {
			t.Fatal(err)
		}
		if slices.ContainsFunc(targets.TargetInfos, func(ti struct{ Type, URL string }) bool {
			return ti.Type == "page" && ti.URL == r.Links[0].Href
		}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("clicking the consent link opened no page at %s: %+v", r.Links[0].Href, targets.TargetInfos)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// The customer consents: "Check tenants" shows it once the remembered
	// refusal's back-off (5 s to 7.5 s) has ended; until then the row says
	// the refusal is remembered.
	if err := env.e.SetConsent(scenario.DemoAppClientID, emuhook.DemoWingtipTenant, true); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(20 * time.Second)
	for {
		c.Eval(`document.body.dataset.tenants = ''; true`, nil)
		c.Click("#tenants-check")
		c.WaitFor("document.body.dataset.tenants === 'done'")
		var st string
		c.Eval(`(() => { const tr = document.querySelector('#tenants-body tr[data-tenant="`+emuhook.DemoWingtipTenant+`"]'); return tr.dataset.state + ' ' + tr.children[1].textContent; })()`, &st)
		if strings.HasPrefix(st, "ok ") {
			break
		}
		if !strings.HasPrefix(st, "app_not_found") || !strings.Contains(st, "remembered, asked again after") {
			t.Fatalf("wingtip after the consent: %q, want a remembered refusal, then ok", st)
		}
		if time.Now().After(deadline) {
			t.Fatalf("wingtip still %q 20 s after the consent", st)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if s := c.Text("tenants-status"); s != "3 tenants of app "+scenario.DemoAppClientID+": 1 falls short" {
		t.Errorf("status after the consent %q", s)
	}
	// A wrong secret: the view says so and shows no stale rows.
	c.Eval(`document.body.dataset.tenants = ''; true`, nil)
	c.TypeInto("#secret", "wrong-secret-wrong-secret-wrong-secret")
	c.Click("#tenants-check")
	c.WaitFor("document.body.dataset.tenants === 'done'")
	var stale int
	c.Eval(`document.getElementById('tenants-result').hidden ? document.querySelectorAll('#tenants-body tr').length : -1`, &stale)
	if s := c.Text("tenants-status"); !strings.HasPrefix(s, "Failed (HTTP 401)") || stale != 0 {
		t.Errorf("wrong secret: status %q, stale rows %d (-1: table shown)", s, stale)
	}
	if errs := c.Errors(); len(errs) > 0 {
		t.Errorf("page errors (script exceptions, CSP violations): %v", errs)
	}
}
