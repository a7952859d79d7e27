package kvasserttest_test

// Customer tenants: the admin-consent page followed through plain net/http
// (GET the page, post its form), the roles each tenant granted as the real
// MSAL client sees them, the tenant controls, and Entra's JSON error shape
// of every refusal code.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"

	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

const (
	graphScope = "https://graph.microsoft.com/.default"
	vaultScope = "https://vault.azure.net/.default"
	tailspin   = emuhook.DemoTailspinTenant
)

var demoRoles = []string{"Sites.Read.All", "Organization.Read.All"}

// consentURL is the v2 admin-consent link for the demo app.
func consentURL(tenant, redirectURI, state string) string {
	q := url.Values{"client_id": {scenario.DemoAppClientID}, "scope": {graphScope}, "redirect_uri": {redirectURI}, "state": {state}}
	return emuhook.AuthorityHost + tenant + "/v2.0/adminconsent?" + q.Encode()
}

// noRedirect is the emulator's client that hands back redirects.
func noRedirect(e *kvasserttest.Emulator) *http.Client {
	c := *e.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

var (
	formAction  = regexp.MustCompile(`<form method="POST" action="([^"]*)"`)
	hiddenInput = regexp.MustCompile(`<input type="hidden" name="([a-z_]+)" value="([^"]*)">`)
	selected    = regexp.MustCompile(`<option value="([^"]*)" selected>`)
)

// consentForm GETs the page and returns the form's action URL, its hidden
// fields and the page.
func consentForm(t *testing.T, e *kvasserttest.Emulator, pageURL string) (string, url.Values, string) {
	t.Helper()
	resp, err := noRedirect(e).Get(pageURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `id="accept"`) || !strings.Contains(string(body), `id="cancel"`) {
		t.Fatalf("consent page: status %d: %s", resp.StatusCode, body)
	}
	m := formAction.FindStringSubmatch(string(body))
	if m == nil {
		t.Fatalf("no form in %s", body)
	}
	u, _ := url.Parse(pageURL)
	action := u.Scheme + "://" + u.Host + html.UnescapeString(m[1])
	fields := url.Values{}
	for _, h := range hiddenInput.FindAllStringSubmatch(string(body), -1) {
		fields.Set(h[1], html.UnescapeString(h[2]))
	}
	return action, fields, string(body)
}

// submit posts the form with a button's action and returns the response.
func submit(t *testing.T, e *kvasserttest.Emulator, action string, fields url.Values, button string) *http.Response {
	t.Helper()
	f := url.Values{}
	for k, v := range fields {
		f[k] = v
	}
	f.Set("action", button)
	resp, err := noRedirect(e).PostForm(action, f)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// demoToken gets an app-only token for the demo app in tenant with a fresh
// MSAL client (no MSAL cache in the way), signing with the vault key.
func demoToken(t *testing.T, e *kvasserttest.Emulator, va *vaultAssertion, tenant, scope string) (entraClaims, error) {
	t.Helper()
	c := entraMSAL(t, e, scenario.DemoAppClientID, confidential.NewCredFromAssertionCallback(va.callback))
	r, err := c.AcquireTokenByCredential(context.Background(), []string{scope}, confidential.WithTenantID(tenant))
	if err != nil {
		return entraClaims{}, err
	}
	return entraDecode(t, r.AccessToken), nil
}

func wantAADSTS(t *testing.T, err error, code int) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("AADSTS%d:", code)) {
		t.Fatalf("err = %v, want AADSTS%d", err, code)
	}
}

func TestAdminConsentAccept(t *testing.T) {
	e := kvasserttest.NewTB(t, nil, nil)
	va := newVaultAssertion(t, e)
	_, err := demoToken(t, e, va, tailspin, graphScope)
	wantAADSTS(t, err, 700016)

	// A loopback redirect URI matches with any port, as in Entra.
	redirectURI := "http://localhost:8400/consent/callback"
	action, fields, page := consentForm(t, e, consentURL(tailspin, redirectURI, "st<ate>&1"))
	for _, want := range []string{"kvassert demo SaaS", "tailspin", "Sites.Read.All", "Organization.Read.All", "Microsoft Graph",
		`<input id="tenant" value="` + tailspin + `" readonly`} {
		if !strings.Contains(page, want) {
			t.Errorf("the page does not show %q", want)
		}
	}
	if fields.Get("state") != "st<ate>&1" || fields.Get("redirect_uri") != redirectURI || fields.Get("csrf") == "" {
		t.Fatalf("form fields %v", fields)
	}
	resp := submit(t, e, action, fields, "accept")
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("accept: status %d, want 302", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Scheme+"://"+loc.Host+loc.Path != redirectURI {
		t.Fatalf("Location %q", resp.Header.Get("Location"))
	}
	q := loc.Query()
	if q.Get("admin_consent") != "True" || q.Get("tenant") != tailspin || q.Get("state") != "st<ate>&1" ||
		q.Get("scope") != "https://graph.microsoft.com/Sites.Read.All https://graph.microsoft.com/Organization.Read.All" || q.Get("error") != "" {
		t.Errorf("redirect query %v", q)
	}
	c, err := demoToken(t, e, va, tailspin, graphScope)
	if err != nil {
		t.Fatalf("token after consent: %v", err)
	}
	if c.Tid != tailspin || !slices.Equal(c.Roles, demoRoles) {
		t.Errorf("graph token claims %+v, want roles %v", c, demoRoles)
	}
	if c, err := demoToken(t, e, va, tailspin, vaultScope); err != nil || c.Roles != nil {
		t.Errorf("vault token: %+v, %v; want no roles claim (the roles are Graph's)", c, err)
	}
	if n := e.Count(kvasserttest.OpAdminConsent); n != 2 {
		t.Errorf("Count(OpAdminConsent) = %d, want 2 (page and form)", n)
	}
}

func TestAdminConsentCancel(t *testing.T) {
	e := kvasserttest.NewTB(t, nil, nil)
	va := newVaultAssertion(t, e)
	action, fields, _ := consentForm(t, e, consentURL(tailspin, emuhook.DemoRedirectURIIP, "s1"))
	resp := submit(t, e, action, fields, "cancel")
	loc, _ := url.Parse(resp.Header.Get("Location"))
	q := loc.Query()
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc.String(), emuhook.DemoRedirectURIIP+"?") ||
		q.Get("error") != "access_denied" || q.Get("error_subcode") != "cancel" || !strings.HasPrefix(q.Get("error_description"), "AADSTS65004:") ||
		q.Get("state") != "s1" || q.Get("admin_consent") != "" {
		t.Fatalf("cancel: %d %s", resp.StatusCode, loc)
	}
	_, err := demoToken(t, e, va, tailspin, graphScope)
	wantAADSTS(t, err, 700016)
}

// TestAdminConsentOrganizations: on /organizations the administrator picks
// the tenant; the first tenant other than the app's home is preselected.
func TestAdminConsentOrganizations(t *testing.T) {
	e := kvasserttest.NewTB(t, nil, nil)
	va := newVaultAssertion(t, e)
	action, fields, page := consentForm(t, e, consentURL("organizations", emuhook.DemoRedirectURI, ""))
	if m := selected.FindStringSubmatch(page); m == nil || m[1] != scenario.DemoContosoTenant {
		t.Errorf("preselected tenant %v, want contoso", m)
	}
	if !strings.Contains(page, `<select id="tenant" name="tenant">`) {
		t.Fatal("no tenant select")
	}
	fields.Set("tenant", tailspin)
	resp := submit(t, e, action, fields, "accept")
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || loc.Query().Get("tenant") != tailspin || loc.Query().Has("state") {
		t.Fatalf("accept: %d %s", resp.StatusCode, loc)
	}
	if _, err := demoToken(t, e, va, tailspin, graphScope); err != nil {
		t.Fatal(err)
	}
}

// TestAdminConsentDelay: right after a consent, Entra may not find the new
// service principal yet (MSAL.NET issue 2966); SetConsentDelay emulates it
// on the emulator's clock.
func TestAdminConsentDelay(t *testing.T) {
	e := kvasserttest.NewTB(t, nil, nil)
	va := newVaultAssertion(t, e)
	var offset atomic.Int64
	e.SetClock(func() time.Time { return time.Now().Add(time.Duration(offset.Load())) })
	if err := e.SetConsentDelay(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	action, fields, _ := consentForm(t, e, consentURL(tailspin, emuhook.DemoRedirectURI, "x"))
	if resp := submit(t, e, action, fields, "accept"); resp.StatusCode != http.StatusFound {
		t.Fatalf("accept: %d", resp.StatusCode)
	}
	_, err := demoToken(t, e, va, tailspin, graphScope)
	wantAADSTS(t, err, 700016)
	offset.Store(int64(29 * time.Second))
	_, err = demoToken(t, e, va, tailspin, graphScope)
	wantAADSTS(t, err, 700016)
	offset.Store(int64(31 * time.Second))
	va.now = func() time.Time { return time.Now().Add(31 * time.Second) }
	if _, err := demoToken(t, e, va, tailspin, graphScope); err != nil {
		t.Fatalf("after the delay: %v", err)
	}
}

// TestAdminConsentHostile: requests Entra would not redirect get an error
// page (400, or 405 for a method) with the AADSTS code, escaped, and never
// a redirect; none of them consents.
func TestAdminConsentHostile(t *testing.T) {
	e := kvasserttest.NewTB(t, nil, nil)
	good := url.Values{"client_id": {scenario.DemoAppClientID}, "scope": {graphScope}, "redirect_uri": {emuhook.DemoRedirectURI}, "state": {"s"}}
	with := func(k, v string) string {
		q := url.Values{}
		for kk, vv := range good {
			q[kk] = vv
		}
		if v == "" {
			q.Del(k)
		} else {
			q.Set(k, v)
		}
		return q.Encode()
	}
	page := func(tenant, query string) string {
		return emuhook.AuthorityHost + tenant + "/v2.0/adminconsent?" + query
	}
	script := "<script>alert(1)</script>"
	action, fields, _ := consentForm(t, e, page(tailspin, good.Encode()))
	post := func(mut func(url.Values), origin string) func() (*http.Response, error) {
		return func() (*http.Response, error) {
			f := url.Values{"action": {"accept"}}
			for k, v := range fields {
				f[k] = v
			}
			mut(f)
			req, _ := http.NewRequest(http.MethodPost, action, strings.NewReader(f.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if origin != "" {
				req.Header.Set("Origin", origin)
			}
			return noRedirect(e).Do(req)
		}
	}
	get := func(u string) func() (*http.Response, error) {
		return func() (*http.Response, error) { return noRedirect(e).Get(u) }
	}
	orgs, orgFields, _ := consentForm(t, e, page("organizations", good.Encode()))
	cases := []struct {
		name   string
		do     func() (*http.Response, error)
		status int
		code   string
	}{
		{"unknown client_id", get(page(tailspin, with("client_id", "00000000-0000-4000-8000-000000000000"))), 400, "AADSTS700016"},
		{"client_id with markup", get(page(tailspin, with("client_id", script))), 400, "AADSTS700016"},
		{"client_id missing", get(page(tailspin, with("client_id", ""))), 400, "AADSTS900144"},
		{"redirect_uri missing", get(page(tailspin, with("redirect_uri", ""))), 400, "AADSTS900144"},
		{"scope missing", get(page(tailspin, with("scope", ""))), 400, "AADSTS900144"},
		{"redirect_uri not registered", get(page(tailspin, with("redirect_uri", "https://evil.example/consent/callback"))), 400, "AADSTS50011"},
		{"redirect_uri javascript", get(page(tailspin, with("redirect_uri", "javascript:alert(1)//"))), 400, "AADSTS50011"},
		{"redirect_uri other path", get(page(tailspin, with("redirect_uri", "http://localhost:1/other"))), 400, "AADSTS50011"},
		{"redirect_uri other host on http", get(page(tailspin, with("redirect_uri", "http://localhost.evil.example/consent/callback"))), 400, "AADSTS50011"},
		{"redirect_uri 10 kB", get(page(tailspin, with("redirect_uri", "http://localhost/"+strings.Repeat("a", 5000)))), 400, "AADSTS50011"},
		{"state 10 kB", get(page(tailspin, with("state", strings.Repeat("s", 10_000)))), 400, "AADSTS90015"},
		{"duplicate client_id", get(page(tailspin, good.Encode()+"&client_id="+scenario.DemoAppClientID)), 400, "AADSTS90100"},
		{"duplicate state", get(page(tailspin, good.Encode()+"&state=t")), 400, "AADSTS90100"},
		{"bad percent-encoding", get(page(tailspin, good.Encode()+"&x=%zz")), 400, "AADSTS90004"},
		{"scope without /.default", get(page(tailspin, with("scope", "https://graph.microsoft.com/User.Read"))), 400, "AADSTS70011"},
		{"tenant not a DNS name", get(page("no%20such%3Ctenant%3E", good.Encode())), 400, "AADSTS900023"},
		{"unknown tenant GUID", get(page("00000000-0000-4000-8000-00000000abcd", good.Encode())), 400, "AADSTS90002"},
		{"unknown tenant domain", get(page("nowhere.onmicrosoft.com", good.Encode())), 400, "AADSTS90002"},
		{"single-tenant app in another tenant", get(page(tailspin, with("client_id", emuhook.DemoWorkloadClientID))), 400, "AADSTS700016"},
		{"single-tenant app on organizations", get(page("organizations", with("client_id", emuhook.DemoWorkloadClientID))), 400, "AADSTS50194"},
		{"PUT", func() (*http.Response, error) {
			req, _ := http.NewRequest(http.MethodPut, page(tailspin, good.Encode()), nil)
			return noRedirect(e).Do(req)
		}, 405, "AADSTS900561"},
		{"form without csrf", post(func(f url.Values) { f.Del("csrf") }, ""), 400, "AADSTS90100"},
		{"form with a forged csrf", post(func(f url.Values) { f.Set("csrf", strings.Repeat("A", 43)) }, ""), 400, "AADSTS90100"},
		{"form with another state", post(func(f url.Values) { f.Set("state", "other") }, ""), 400, "AADSTS90100"},
		{"form with another redirect_uri", post(func(f url.Values) { f.Set("redirect_uri", emuhook.DemoRedirectURIIP) }, ""), 400, "AADSTS90100"},
		{"form without action", post(func(f url.Values) { f.Del("action") }, ""), 400, "AADSTS90100"},
		{"form with another action", post(func(f url.Values) { f.Set("action", "approve") }, ""), 400, "AADSTS90100"},
		{"form from another origin", post(func(url.Values) {}, "https://evil.example"), 400, "AADSTS90100"},
		{"form with a query string", func() (*http.Response, error) {
			f := url.Values{"action": {"accept"}}
			for k, v := range fields {
				f[k] = v
			}
			return noRedirect(e).PostForm(action+"?x=1", f)
		}, 400, "AADSTS90100"},
		{"form 10 kB", post(func(f url.Values) { f.Set("pad", strings.Repeat("p", 10_000)) }, ""), 400, "AADSTS90015"},
		{"organizations form, unknown tenant", func() (*http.Response, error) {
			f := url.Values{"action": {"accept"}, "tenant": {script}}
			for k, v := range orgFields {
				f[k] = v
			}
			return noRedirect(e).PostForm(orgs, f)
		}, 400, "AADSTS90002"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, err := c.do()
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != c.status || resp.Header.Get("Location") != "" {
				t.Errorf("status %d (Location %q), want %d and no redirect", resp.StatusCode, resp.Header.Get("Location"), c.status)
			}
			if !strings.Contains(string(body), `<span id="error-code">`+c.code+`</span>`) {
				t.Errorf("body does not show %s: %.400s", c.code, body)
			}
			if strings.Contains(string(body), "<script") || len(body) > 8<<10 {
				t.Errorf("body unescaped or too long (%d bytes): %.400s", len(body), body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" || resp.Header.Get("X-Frame-Options") != "DENY" {
				t.Errorf("headers %v", resp.Header)
			}
		})
	}
	if n := e.Count(kvasserttest.OpToken); n != 0 {
		t.Errorf("token requests %d", n)
	}
	va := newVaultAssertion(t, e)
	_, err := demoToken(t, e, va, tailspin, graphScope)
	wantAADSTS(t, err, 700016) // nothing above consented
}

// rawToken posts a client-credentials request for the demo app in tenant
// with a vault-signed assertion and returns the status and the JSON body.
func rawToken(t *testing.T, e *kvasserttest.Emulator, va *vaultAssertion, tenant, scope string) (int, map[string]any) {
	t.Helper()
	endpoint := emuhook.TokenEndpoint(tenant)
	a, err := va.callback(context.Background(), confidential.AssertionRequestOptions{ClientID: scenario.DemoAppClientID, TokenEndpoint: endpoint})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := e.Client().PostForm(endpoint, url.Values{"grant_type": {"client_credentials"}, "client_id": {scenario.DemoAppClientID}, "scope": {scope},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {a}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

// checkEntraError checks Entra's error JSON: error, error_description
// "AADSTSnnn: ..." with the trace lines, error_codes [nnn], timestamp,
// trace_id, correlation_id.
func checkEntraError(t *testing.T, status int, body map[string]any, wantStatus int, wantErr string, code int) {
	t.Helper()
	desc, _ := body["error_description"].(string)
	codes, _ := body["error_codes"].([]any)
	if status != wantStatus || body["error"] != wantErr || !strings.HasPrefix(desc, fmt.Sprintf("AADSTS%d: ", code)) ||
		!strings.Contains(desc, "\r\nTrace ID: ") || len(codes) != 1 || codes[0] != float64(code) ||
		body["timestamp"] == "" || body["trace_id"] == nil || body["correlation_id"] == nil {
		t.Errorf("status %d body %v; want %d %s AADSTS%d", status, body, wantStatus, wantErr, code)
	}
}

func TestTenantControls(t *testing.T) {
	e := kvasserttest.NewTB(t, nil, nil)
	va := newVaultAssertion(t, e)
	contoso := scenario.DemoContosoTenant

	t.Run("disable and enable", func(t *testing.T) {
		if err := e.SetServicePrincipalEnabled(scenario.DemoAppClientID, "contoso", false); err != nil {
			t.Fatal(err)
		}
		_, err := demoToken(t, e, va, contoso, graphScope)
		wantAADSTS(t, err, 7000112)
		status, body := rawToken(t, e, va, contoso, graphScope)
		checkEntraError(t, status, body, 400, "unauthorized_client", 7000112)
		if err := e.SetServicePrincipalEnabled(scenario.DemoAppClientID, contoso, true); err != nil {
			t.Fatal(err)
		}
		if _, err := demoToken(t, e, va, contoso, graphScope); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("delete", func(t *testing.T) {
		if err := e.SetConsent(scenario.DemoAppClientID, contoso, false); err != nil {
			t.Fatal(err)
		}
		_, err := demoToken(t, e, va, contoso, graphScope)
		wantAADSTS(t, err, 700016)
		status, body := rawToken(t, e, va, contoso, graphScope)
		checkEntraError(t, status, body, 400, "unauthorized_client", 700016)
		if err := e.SetConsent(scenario.DemoAppClientID, contoso, true); err != nil {
			t.Fatal(err)
		}
		if c, err := demoToken(t, e, va, contoso, graphScope); err != nil || !slices.Equal(c.Roles, demoRoles) {
			t.Fatalf("after consent again: %+v %v", c, err)
		}
	})
	t.Run("home tenant without service principal", func(t *testing.T) {
		if err := e.SetConsent(scenario.DemoAppClientID, scenario.DemoHomeTenant, false); err != nil {
			t.Fatal(err)
		}
		defer e.SetConsent(scenario.DemoAppClientID, scenario.DemoHomeTenant, true)
		_, err := demoToken(t, e, va, scenario.DemoHomeTenant, graphScope)
		wantAADSTS(t, err, 7000229)
	})
	t.Run("granted roles", func(t *testing.T) {
		if err := e.SetGrantedRoles(scenario.DemoAppClientID, contoso, "User.Read.All"); err != nil {
			t.Fatal(err)
		}
		if c, err := demoToken(t, e, va, contoso, graphScope); err != nil || !slices.Equal(c.Roles, []string{"User.Read.All"}) {
			t.Errorf("contoso: %+v %v", c, err)
		}
		if err := e.SetGrantedRoles(scenario.DemoAppClientID, contoso); err != nil {
			t.Fatal(err)
		}
		if c, err := demoToken(t, e, va, contoso, graphScope); err != nil || c.Roles != nil {
			t.Errorf("contoso with no role granted: %+v %v; want a token without a roles claim", c, err)
		}
		// Another tenant keeps the app's roles; a new tenant gets a
		// service principal with exactly the roles given.
		if c, err := demoToken(t, e, va, emuhook.DemoFabrikamTenant, graphScope); err != nil || !slices.Equal(c.Roles, demoRoles) {
			t.Errorf("fabrikam: %+v %v", c, err)
		}
		if err := e.SetGrantedRoles(scenario.DemoAppClientID, "wingtip", "Sites.Read.All"); err != nil {
			t.Fatal(err)
		}
		if c, err := demoToken(t, e, va, emuhook.DemoWingtipTenant, "https://graph.microsoft.com//.default"); err != nil || !slices.Equal(c.Roles, []string{"Sites.Read.All"}) {
			t.Errorf("wingtip: %+v %v", c, err)
		}
		// GrantAppRoles adds to the app's roles: tenants that granted all
		// of them see it; contoso, with its own grant, does not.
		if err := e.GrantAppRoles(scenario.DemoAppClientID, "Application.Read.All"); err != nil {
			t.Fatal(err)
		}
		if c, _ := demoToken(t, e, va, emuhook.DemoFabrikamTenant, graphScope); !slices.Contains(c.Roles, "Application.Read.All") {
			t.Errorf("fabrikam after GrantAppRoles: %v", c.Roles)
		}
		if c, _ := demoToken(t, e, va, contoso, graphScope); c.Roles != nil {
			t.Errorf("contoso after GrantAppRoles: %v", c.Roles)
		}
	})
	t.Run("refusals", func(t *testing.T) {
		for _, c := range []struct {
			code   int
			status int
			err    string
		}{
			{90002, 400, "invalid_tenant"},
			{900023, 400, "invalid_request"},
			{53003, 400, "interaction_required"},
			{7000229, 401, "invalid_client"},
			{500011, 400, "invalid_resource"},
		} {
			if err := e.SetTenantRefusal(scenario.DemoAppClientID, "northwind", c.code); err != nil {
				t.Fatal(err)
			}
			_, err := demoToken(t, e, va, emuhook.DemoNorthwindTenant, graphScope)
			wantAADSTS(t, err, c.code)
			status, body := rawToken(t, e, va, emuhook.DemoNorthwindTenant, graphScope)
			checkEntraError(t, status, body, c.status, c.err, c.code)
			if c.code == 53003 { // Conditional Access applies to an authenticated client only
				resp, err := e.Client().PostForm(emuhook.TokenEndpoint(emuhook.DemoNorthwindTenant), url.Values{"grant_type": {"client_credentials"},
					"client_id": {scenario.DemoAppClientID}, "scope": {graphScope},
					"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {"not.a.jwt"}})
				if err != nil {
					t.Fatal(err)
				}
				raw, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if strings.Contains(string(raw), "53003") || !strings.Contains(string(raw), "AADSTS50027") {
					t.Errorf("53003 with a bad assertion: %s", raw)
				}
			}
			if c.code == 500011 && !strings.Contains(body["error_description"].(string), "https://graph.microsoft.com") {
				t.Errorf("500011 does not name the resource: %v", body["error_description"])
			}
		}
		if err := e.SetTenantRefusal(scenario.DemoAppClientID, emuhook.DemoNorthwindTenant, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := demoToken(t, e, va, emuhook.DemoNorthwindTenant, graphScope); err != nil {
			t.Fatalf("after clearing: %v", err)
		}
	})
}

// TestAzidentitySeesRefusals: the azidentity client (what most programs
// use) gets the classified code too.
func TestAzidentitySeesRefusals(t *testing.T) {
	e := kvasserttest.NewTB(t, nil, nil)
	cred, err := e.ClientSecretCredential(emuhook.DemoWorkloadClientID)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.SetTenantRefusal(emuhook.DemoWorkloadClientID, scenario.DemoHomeTenant, 53003); err != nil {
		t.Fatal(err)
	}
	_, err = cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{vaultScope}})
	var ae *azidentity.AuthenticationFailedError
	if !errors.As(err, &ae) || !strings.Contains(err.Error(), "AADSTS53003") || ae.RawResponse.StatusCode != 400 {
		t.Fatalf("err = %v, want an AuthenticationFailedError with AADSTS53003", err)
	}
	if err := e.SetTenantRefusal(emuhook.DemoWorkloadClientID, scenario.DemoHomeTenant, 0); err != nil {
		t.Fatal(err)
	}
	if _, err = cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{vaultScope}}); err != nil {
		t.Fatalf("after clearing: %v", err)
	}
}

// manyTenants is the demo scenario with n more customer tenants of the demo
// app: a third consented with all roles, a third consented with one role,
// a third not consented.
func manyTenants(n int) (*scenario.Scenario, []string) {
	s := scenario.Demo()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%08x-3333-4333-8333-%012x", i+1, i+1)
		s.Tenants = append(s.Tenants, scenario.Tenant{ID: ids[i], Name: fmt.Sprintf("customer-%d", i)})
		switch i % 3 {
		case 0:
			s.Apps[0].ConsentedTenants = append(s.Apps[0].ConsentedTenants, ids[i])
		case 1:
			s.Apps[0].Consents = append(s.Apps[0].Consents, scenario.Consent{Tenant: ids[i], Roles: []string{"Sites.Read.All"}})
		}
	}
	return s, ids
}

// TestThousandsOfTenants: a scenario with 3,000 customer tenants parses,
// validates and starts fast (map lookups, no scans per tenant), and every
// kind of tenant answers as it should.
func TestThousandsOfTenants(t *testing.T) {
	s, ids := manyTenants(3000)
	data, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	parsed, err := scenario.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	e := kvasserttest.NewTB(t, parsed, nil)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Parse and New of 3,000 tenants took %v", d)
	}
	t.Logf("Parse + New of %d tenants: %v", len(parsed.Tenants), time.Since(start))
	start = time.Now()
	for i := len(ids) - 300; i < len(ids); i++ { // the last ones: a scan would be slowest for them
		if err := e.SetServicePrincipalEnabled(scenario.DemoAppClientID, ids[i], true); (err == nil) != (i%3 != 2) {
			t.Fatalf("tenant %d: %v", i, err)
		}
		if err := e.SetTenantRefusal(scenario.DemoAppClientID, fmt.Sprintf("customer-%d", i), 0); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("600 controls took %v", d)
	}
	va := newVaultAssertion(t, e)
	n := len(ids)
	for _, c := range []struct {
		i     int
		roles []string
		code  int
	}{{n - 3, demoRoles, 0}, {n - 2, []string{"Sites.Read.All"}, 0}, {n - 1, nil, 700016}} {
		cl, err := demoToken(t, e, va, ids[c.i], graphScope)
		switch {
		case c.code != 0:
			wantAADSTS(t, err, c.code)
		case err != nil || !slices.Equal(cl.Roles, c.roles):
			t.Errorf("tenant %d: %+v %v, want roles %v", c.i, cl, err, c.roles)
		}
	}
	start = time.Now()
	_, _, page := consentForm(t, e, consentURL("organizations", emuhook.DemoRedirectURI, ""))
	if got := strings.Count(page, "<option "); got != len(parsed.Tenants) {
		t.Errorf("%d tenant options, want %d", got, len(parsed.Tenants))
	}
	t.Logf("organizations consent page with %d tenants: %v, %d bytes", len(parsed.Tenants), time.Since(start), len(page))
}

// TestGraphServicePrincipalLock: GET /v1.0/applications/{objectId} reports
// the app instance property lock (servicePrincipalLockConfiguration) of the
// scenario, null when it is not set.
func TestGraphServicePrincipalLock(t *testing.T) {
	e := kvasserttest.NewTB(t, nil, nil)
	va := newVaultAssertion(t, e)
	if err := e.GrantAppRoles(scenario.DemoAppClientID, "Application.Read.All"); err != nil {
		t.Fatal(err)
	}
	c := entraMSAL(t, e, scenario.DemoAppClientID, confidential.NewCredFromAssertionCallback(va.callback))
	tok, err := c.AcquireTokenByCredential(context.Background(), []string{graphScope})
	if err != nil {
		t.Fatal(err)
	}
	get := func(query string) map[string]json.RawMessage {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, emuhook.GraphURL+"applications/"+scenario.DemoAppObjectID+query, nil)
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		resp, err := e.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]json.RawMessage
		if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&out) != nil {
			t.Fatalf("GET application%s: %d", query, resp.StatusCode)
		}
		return out
	}
	const all = `{"isEnabled":true,"allProperties":true,"credentialsWithUsageVerify":true,"credentialsWithUsageSign":true,"identifierUris":true,"tokenEncryptionKeyId":true}`
	if got := string(get("")["servicePrincipalLockConfiguration"]); got != all {
		t.Errorf("demo lock = %s, want %s", got, all)
	}
	if err := emuhook.Of(e).SetServicePrincipalLock(scenario.DemoAppClientID, true, false, false); err != nil {
		t.Fatal(err)
	}
	sel := get("?$select=id,servicePrincipalLockConfiguration")
	if got := string(sel["servicePrincipalLockConfiguration"]); !strings.HasPrefix(got, `{"isEnabled":true,"allProperties":false,`) || len(sel) != 3 {
		t.Errorf("after SetServicePrincipalLock: %s (%d fields)", got, len(sel))
	}
	if err := emuhook.Of(e).SetServicePrincipalLock(scenario.DemoAppClientID, false, false, true); err != nil {
		t.Fatal(err)
	}
	if got := string(get("")["servicePrincipalLockConfiguration"]); got != "null" {
		t.Errorf("unlocked: %s, want null", got)
	}
}

// TestAdminConsentFormFromABrowser: a browser posts the page's form with
// the Origin the Fetch spec gives it, which depends on the page's
// Referrer-Policy: under "no-referrer" a form POST carries "Origin: null",
// which the form refuses (real Chromium answered Accept with AADSTS90100).
// The page must let its own origin through.
func TestAdminConsentFormFromABrowser(t *testing.T) {
	e := kvasserttest.NewTB(t, nil, nil)
	page := consentURL(tailspin, emuhook.DemoRedirectURI, "b")
	resp, err := noRedirect(e).Get(page)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	origin := "https://login.microsoftonline.com" // what Chromium sends for a same-origin POST...
	if resp.Header.Get("Referrer-Policy") == "no-referrer" {
		origin = "null" // ...unless the page's policy is no-referrer (Fetch: "serializing a request origin")
	}
	action, fields, _ := consentForm(t, e, page)
	fields.Set("action", "accept")
	req, _ := http.NewRequest(http.MethodPost, action, strings.NewReader(fields.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", origin)
	resp, err = noRedirect(e).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("accept from the page's origin (Origin: %s): status %d, want 302", origin, resp.StatusCode)
	}
	// The redirect to the SaaS carries no Referer with the page's query.
	if p := resp.Header.Get("Referrer-Policy"); p != "same-origin" && p != "no-referrer" {
		t.Errorf("Referrer-Policy of the redirect = %q", p)
	}
}

// TestSubmitConsent: emuhook.SubmitConsent follows the page like an
// administrator (what the demo and handler tests use without a browser).
func TestSubmitConsent(t *testing.T) {
	s := scenario.Demo()
	s.Apps[0].Consents = []scenario.Consent{{Tenant: emuhook.DemoWingtipTenant, Roles: []string{"Sites.Read.All"}, Disabled: true}}
	e := kvasserttest.NewTB(t, s, nil)
	va := newVaultAssertion(t, e)
	ctx := context.Background()
	_, err := demoToken(t, e, va, emuhook.DemoWingtipTenant, graphScope)
	wantAADSTS(t, err, 7000112) // the scenario's disabled consent

	loc, err := emuhook.SubmitConsent(ctx, e.Client(), consentURL("organizations", emuhook.DemoRedirectURI, "s"), "cancel", tailspin)
	if err != nil || loc.Query().Get("error_subcode") != "cancel" {
		t.Fatalf("cancel: %v %v", loc, err)
	}
	loc, err = emuhook.SubmitConsent(ctx, e.Client(), consentURL("organizations", emuhook.DemoRedirectURI, "s"), "accept", tailspin)
	if err != nil || loc.Query().Get("tenant") != tailspin || loc.Query().Get("admin_consent") != "True" {
		t.Fatalf("accept: %v %v", loc, err)
	}
	if c, err := demoToken(t, e, va, tailspin, graphScope); err != nil || !slices.Equal(c.Roles, demoRoles) {
		t.Errorf("tailspin after consent: %+v %v", c, err)
	}
	_, err = emuhook.SubmitConsent(ctx, e.Client(), consentURL(tailspin, "https://evil.example/cb", "s"), "accept", "")
	var ce *emuhook.ConsentError
	if !errors.As(err, &ce) || ce.Code != "AADSTS50011" || ce.Status != 400 {
		t.Fatalf("unregistered redirect URI: %v", err)
	}
}

// TestAdminConsentV1: the link an administrator is given without a
// redirect URI, /{tenant}/adminconsent?client_id= ("Grant tenant-wide admin
// consent to an application"), serves the same page; Accept grants every
// permission the app lists and redirects to the app's first registered
// redirect URI (or the one given), without a scope. An app with no redirect
// URI gets AADSTS500113.
func TestAdminConsentV1(t *testing.T) {
	e := kvasserttest.NewTB(t, nil, nil)
	va := newVaultAssertion(t, e)
	link := emuhook.AuthorityHost + tailspin + "/adminconsent?client_id=" + scenario.DemoAppClientID
	action, fields, page := consentForm(t, e, link)
	if !strings.HasSuffix(action, "/"+tailspin+"/adminconsent") || fields.Get("redirect_uri") != emuhook.DemoRedirectURI || !strings.Contains(page, "Sites.Read.All") {
		t.Fatalf("v1 page: action %q, fields %v", action, fields)
	}
	resp := submit(t, e, action, fields, "accept")
	loc, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || err != nil || !strings.HasPrefix(loc.String(), emuhook.DemoRedirectURI+"?") {
		t.Fatalf("accept: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if q := loc.Query(); q.Get("admin_consent") != "True" || q.Get("tenant") != tailspin || q.Has("scope") || q.Has("state") {
		t.Fatalf("redirect query %v", q)
	}
	c, err := demoToken(t, e, va, tailspin, graphScope)
	if err != nil || !slices.Equal(c.Roles, demoRoles) {
		t.Fatalf("token after a v1 consent: %+v %v", c, err)
	}
	// A registered redirect URI given is used, with the state.
	_, fields, _ = consentForm(t, e, link+"&redirect_uri="+url.QueryEscape(emuhook.DemoRedirectURIIP)+"&state=s2")
	resp = submit(t, e, action, fields, "cancel")
	if loc := resp.Header.Get("Location"); !strings.HasPrefix(loc, emuhook.DemoRedirectURIIP+"?") || !strings.Contains(loc, "state=s2") || !strings.Contains(loc, "error=access_denied") {
		t.Fatalf("cancel: %q", loc)
	}

	// The v1 endpoint still refuses what v2 refuses, and needs a reply address.
	s := scenario.Demo()
	s.Apps[0].RedirectURIs = nil
	e2 := kvasserttest.NewTB(t, s, nil)
	for name, c := range map[string]struct{ url, code string }{
		"no redirect URI registered": {emuhook.AuthorityHost + tailspin + "/adminconsent?client_id=" + scenario.DemoAppClientID, "AADSTS500113"},
		"no client_id":               {emuhook.AuthorityHost + tailspin + "/adminconsent", "AADSTS900144"},
		"unknown tenant":             {emuhook.AuthorityHost + "nowhere.onmicrosoft.com/adminconsent?client_id=" + scenario.DemoAppClientID, "AADSTS90002"},
	} {
		resp, err := noRedirect(e2).Get(c.url)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), `<span id="error-code">`+c.code+`</span>`) {
			t.Errorf("%s: %d %.300s", name, resp.StatusCode, body)
		}
	}
}
