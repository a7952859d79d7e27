package main

import (
	"net/url"
	"strings"
	"testing"

	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// proxyBase is the base URL of a started proxy (from its web page line).
func proxyBase(t *testing.T, p *proxyProc) string {
	t.Helper()
	out := strings.Join(p.stdout, "\n")
	_, rest, ok := strings.Cut(out, "web page: ")
	if !ok {
		t.Fatalf("no web page URL:\n%s", out)
	}
	base, _, _ := strings.Cut(rest, "/#secret=")
	return strings.TrimSuffix(base, "/")
}

func TestProxyTenantsView(t *testing.T) {
	t.Parallel()
	env := newCLIEnv(t)
	p := startProxy(t, env.vars, "--listen", "127.0.0.1:0", "--tenant", scenario.DemoContosoTenant,
		"--customer-tenant", scenario.DemoContosoTenant+","+emuhook.DemoWingtipTenant, "--require-role", "Sites.Read.All",
		"--require-role", "https://graph.microsoft.com/=Organization.Read.All", "--redirect-uri", emuhook.DemoRedirectURI)
	m := proxyRequest(t, "GET", proxyBase(t, p)+"/api/tenants", "", "", "Authorization", "Bearer "+p.secret)
	reps, _ := m["tenants"].([]any)
	if m["clientId"] != scenario.DemoAppClientID || len(reps) != 2 {
		t.Fatalf("GET /api/tenants: %v", m)
	}
	ok, _ := reps[0].(map[string]any)
	refused, _ := reps[1].(map[string]any)
	res, _ := ok["resources"].([]any)
	if ok["state"] != "ok" || len(res) != 1 {
		t.Fatalf("contoso: %v", ok)
	}
	r0, _ := res[0].(map[string]any)
	if r0["resource"] != "https://graph.microsoft.com" || len(r0["required"].([]any)) != 2 {
		t.Errorf("contoso's resource: %v", r0)
	}
	if link, _ := refused["consentUrl"].(string); refused["tenant"] != emuhook.DemoWingtipTenant || refused["state"] != "app_not_found" ||
		!strings.Contains(link, "redirect_uri="+url.QueryEscape(emuhook.DemoRedirectURI)) {
		t.Errorf("wingtip: %v", refused)
	}
}

// The customer tenants kvassert emulate exports are used when the app is
// configured, and left out (the proxy still starts) when it is not.
func TestProxyTenantsFromEnv(t *testing.T) {
	t.Parallel()
	env := newCLIEnv(t)
	vars := map[string]string{}
	for k, v := range env.vars {
		vars[k] = v
	}
	vars["KVASSERT_CUSTOMER_TENANTS"] = scenario.DemoContosoTenant + " " + emuhook.DemoWingtipTenant
	p := startProxy(t, vars, "--listen", "127.0.0.1:0", "--tenant", scenario.DemoContosoTenant)
	m := proxyRequest(t, "GET", proxyBase(t, p)+"/api/tenants", "", "", "Authorization", "Bearer "+p.secret)
	if reps, _ := m["tenants"].([]any); len(reps) != 2 {
		t.Errorf("tenants from KVASSERT_CUSTOMER_TENANTS: %v", m)
	}
	// Without the app's certificate, the view is off and the proxy starts.
	delete(vars, "KVASSERT_VAULT")
	delete(vars, "KVASSERT_CERT")
	p = startProxy(t, vars, "--listen", "127.0.0.1:0")
	m = proxyRequest(t, "GET", proxyBase(t, p)+"/api/tenants", "", "", "Authorization", "Bearer "+p.secret)
	if reps, _ := m["tenants"].([]any); len(reps) != 0 {
		t.Errorf("tenants without a configured app: %v", m)
	}
}

func TestProxyTenantsErrors(t *testing.T) {
	t.Parallel()
	vars := map[string]string{}
	wantError(t, runBin(t, vars, "", []string{"proxy", "--listen", "127.0.0.1:0", "--customer-tenant", scenario.DemoContosoTenant}),
		exitUsage, "--customer-tenant needs the app to check: --client-id", "KVASSERT_CLIENT_ID")
	wantError(t, runBin(t, vars, "", []string{"proxy", "--listen", "127.0.0.1:0", "--require-role", "A"}),
		exitUsage, "--require-role is given without --customer-tenant", "")
	args := []string{"proxy", "--listen", "127.0.0.1:0", "--client-id", scenario.DemoAppClientID, "--tenant", scenario.DemoContosoTenant,
		"--vault", scenario.DemoVault, "--cert", scenario.DemoCertificate, "--customer-tenant", scenario.DemoContosoTenant}
	wantError(t, runBin(t, vars, "", append(args, "--require-role", "https://graph.microsoft.com=")), exitUsage, "is not [RESOURCE=]ROLE", "--require-role User.Read.All")
	wantError(t, runBin(t, vars, "", append(args, "--customer-tenant", "not a tenant!")), exitUsage, `--customer-tenant "not" is not a tenant ID or domain`, "contoso.onmicrosoft.com")
	wantError(t, runBin(t, vars, "", append(args, "--redirect-uri", "http://app.example/cb")), exitUsage, "--redirect-uri: the redirect URI uses http on app.example", "http on localhost")
	wantError(t, runBin(t, vars, "", []string{"proxy", "--listen", "127.0.0.1:0", "--redirect-uri", "https://app.example/cb"}),
		exitUsage, "--redirect-uri is given without --customer-tenant", "")
}
