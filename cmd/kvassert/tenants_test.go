package main

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

func TestTenantsCheck(t *testing.T) {
	t.Parallel()
	env := newCLIEnv(t)
	if err := env.e.SetGrantedRoles(scenario.DemoAppClientID, "fabrikam.onmicrosoft.com", "Organization.Read.All"); err != nil {
		t.Fatal(err)
	}

	// JSON: the whole reports; exit 1 when a tenant falls short.
	r := env.run([]string{"tenants", "check", "--customer-tenant", "contoso.onmicrosoft.com", "--customer-tenant", "fabrikam.onmicrosoft.com, " + emuhook.DemoTailspinTenant,
		"--require-role", "Sites.Read.All", "-o", "json"}, "KVASSERT_REDIRECT_URI="+emuhook.DemoRedirectURI)
	if r.code != exitFailure || !strings.Contains(r.stderr, "error: 2 tenants of 3 fall short") {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	var reports []struct {
		Tenant, State, ConsentURL string
		Code                      int
		Resources                 []struct{ Granted, Missing []string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &reports); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	if len(reports) != 3 || reports[0].State != "ok" || reports[1].State != "missing_roles" || strings.Join(reports[1].Resources[0].Missing, ",") != "Sites.Read.All" ||
		reports[2].State != "app_not_found" || reports[2].Code != 700016 || !strings.Contains(reports[2].ConsentURL, "/"+emuhook.DemoTailspinTenant+"/v2.0/adminconsent?") ||
		!strings.Contains(reports[2].ConsentURL, "redirect_uri="+url.QueryEscape(emuhook.DemoRedirectURI)) {
		t.Fatalf("%+v", reports)
	}
	if strings.Contains(r.stdout, "eyJ") {
		t.Fatal("a token in the output")
	}

	// Tenants on stdin (comments, blank lines), a table, exit 0.
	r = env.runIn("contoso.onmicrosoft.com  # the first customer\n\n"+scenario.DemoContosoTenant+"\n", []string{"tenants", "check"}, "KVASSERT_CUSTOMER_TENANTS=wingtip.onmicrosoft.com")
	wantOK(t, r)
	var rowsSeen int
	for _, l := range strings.Split(r.stdout, "\n") {
		if strings.HasPrefix(l, "contoso.onmicrosoft.com ") || strings.HasPrefix(l, scenario.DemoContosoTenant+" ") {
			rowsSeen++
			if !strings.Contains(l, " ok ") || !strings.Contains(l, "Organization.Read.All Sites.Read.All") {
				t.Fatalf("table row %q", l)
			}
		}
	}
	if rowsSeen != 2 || !strings.Contains(strings.ToLower(r.stdout), "tenant") {
		t.Fatalf("table:\n%s", r.stdout)
	}

	// KVASSERT_CUSTOMER_TENANTS when nothing else names tenants.
	r = env.run([]string{"tenants", "check", "--query", "[].state", "-o", "tsv"}, "KVASSERT_CUSTOMER_TENANTS=contoso.onmicrosoft.com  fabrikam.onmicrosoft.com")
	if r.code != 0 || strings.Fields(r.stdout)[0] != "ok" || len(strings.Fields(r.stdout)) != 2 {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}

	// A file, with a role of another resource (a token there has none).
	file := t.TempDir() + "/customers.txt"
	writeFile(t, file, []byte("contoso.onmicrosoft.com\n"))
	r = env.run([]string{"tenants", "check", "--customer-tenants-file", file, "--require-role", "https://management.azure.com=Reader", "--query", "[0].resources[?resource=='https://management.azure.com'].missing[]", "-o", "tsv"})
	if r.code != exitFailure || strings.TrimSpace(r.stdout) != "Reader" || !strings.Contains(r.stderr, "error: 1 tenant of 1 falls short") {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}

	// The vault certificate is missing: no tenant can be reached, exit 3.
	r = env.run([]string{"tenants", "check", "--customer-tenant", "contoso.onmicrosoft.com"}, "KVASSERT_CERT=no-such-cert")
	if r.code != exitTenantUnreachable || !strings.Contains(r.stdout, "unreachable") {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}

	wantUsageErrors(t, env, []usageCase{
		{args: []string{"tenants", "check"}, msg: "no tenants to check", hint: "KVASSERT_CUSTOMER_TENANTS"},
		{args: []string{"tenants", "check", "--customer-tenant", "common"}, msg: `tenant "common" is not a tenant ID or domain`},
		{args: []string{"tenants", "check", "--customer-tenant", "a/b"}, msg: "is not a tenant ID or domain"},
		{args: []string{"tenants", "check", "--customer-tenant", "contoso.onmicrosoft.com", "--require-role", "graph=Sites.Read.All"}, msg: "is not [RESOURCE=]ROLE", hint: "--require-role https://graph.microsoft.com=User.Read.All"},
		{args: []string{"tenants", "check", "--customer-tenant", "contoso.onmicrosoft.com", "--concurrency", "0"}, msg: "--concurrency 0 is not between 1 and 256"},
		{args: []string{"tenants", "check", "--customer-tenant", "contoso.onmicrosoft.com", "--redirect-uri", "http://app.example.com/cb"}, msg: "--redirect-uri: the redirect URI uses http on app.example.com"},
		{args: []string{"tenants", "check", "--customer-tenant", "contoso.onmicrosoft.com"}, extra: []string{"KVASSERT_CLIENT_ID=", "AZURE_CLIENT_ID="}, msg: "--client-id is required"},
		{args: []string{"tenants", "check", "--customer-tenant", "contoso.onmicrosoft.com"}, extra: []string{"AZURE_TENANT_ID="}, msg: "--tenant is required"},
		{args: []string{"tenants", "check", "--customer-tenants-file", t.TempDir() + "/none"}, msg: "--customer-tenants-file: no such file or directory"},
		{args: []string{"tenants", "check", "--customer-tenant", "contoso.onmicrosoft.com", "extra"}, msg: "takes no arguments"},
	})
}

func TestTenantsConsentURL(t *testing.T) {
	t.Parallel()
	env := newCLIEnv(t)
	r := env.run([]string{"tenants", "consent-url", "--redirect-uri", "https://app.example.com/consent", "-t", "contoso.onmicrosoft.com", "--state", "s1"})
	wantOK(t, r)
	u, err := url.Parse(strings.TrimSpace(r.stdout))
	if err != nil || u.Host != "login.microsoftonline.com" || u.Path != "/contoso.onmicrosoft.com/v2.0/adminconsent" ||
		u.Query().Get("client_id") != scenario.DemoAppClientID || u.Query().Get("state") != "s1" || u.Query().Get("redirect_uri") != "https://app.example.com/consent" {
		t.Fatalf("%q", r.stdout)
	}
	r = env.run([]string{"tenants", "consent-url", "--redirect-uri", "http://localhost:8080/cb", "--cloud", "AzureUSGovernment", "-o", "json"})
	wantOK(t, r)
	var out struct{ ConsentURL string }
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || !strings.HasPrefix(out.ConsentURL, "https://login.microsoftonline.us/organizations/v2.0/adminconsent?") ||
		!strings.Contains(out.ConsentURL, "graph.microsoft.us") {
		t.Fatalf("%q %v", r.stdout, err)
	}
	wantUsageErrors(t, env, []usageCase{
		{args: []string{"tenants", "consent-url"}, msg: "--redirect-uri is required"},
		{args: []string{"tenants", "consent-url", "--redirect-uri", "http://app.example.com/cb"}, msg: "--redirect-uri: the redirect URI uses http on app.example.com"},
		{args: []string{"tenants", "consent-url", "--redirect-uri", "https://app.example.com/cb", "-t", "consumers"}, msg: "--tenant: tenant \"consumers\" cannot consent"},
		{args: []string{"tenants", "consent-url", "--redirect-uri", "https://app.example.com/cb", "--scope", "User.Read"}, msg: "--scope: scope (9 bytes) is not"},
		{args: []string{"tenants", "consent-url", "--redirect-uri", "https://app.example.com/cb", "--client-id", "x"}, msg: "--client-id \"x\" is not a GUID"},
	})
}

func TestCertAuditApp(t *testing.T) {
	t.Parallel()
	env := newCLIEnv(t)
	rows := func(r result) map[string][]string {
		t.Helper()
		var out []struct{ Status, Check, Detail string }
		if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
			t.Fatalf("%v\n%s\n%s", err, r.stdout, r.stderr)
		}
		m := map[string][]string{}
		for _, f := range out {
			m[f.Check] = append(m[f.Check], f.Status+" "+f.Detail)
		}
		return m
	}
	args := []string{"cert", "audit", "--app", "--app-object-id", scenario.DemoAppObjectID, "--tenant", scenario.DemoHomeTenant,
		"--customer-tenant", "contoso.onmicrosoft.com", "--customer-tenant", emuhook.DemoTailspinTenant, "-o", "json"}

	// The app may not read its registration: a warning.
	r := env.run(args)
	m := rows(r)
	if r.code != exitFailure || len(m["app-lock"]) != 1 || !strings.HasPrefix(m["app-lock"][0], "WARN could not read") || !strings.Contains(m["app-lock"][0], "Application.Read.All") {
		t.Fatalf("exit %d: %v", r.code, m)
	}
	if len(m["tenants"]) != 1 || !strings.HasPrefix(m["tenants"][0], "FAIL "+emuhook.DemoTailspinTenant+": app_not_found; send the administrator https://login.microsoftonline.com/") {
		t.Fatalf("%v", m["tenants"])
	}
	if err := env.e.GrantAppRoles(scenario.DemoAppClientID, "Application.Read.All"); err != nil {
		t.Fatal(err)
	}
	m = rows(env.run(args))
	if len(m["app-lock"]) != 1 || !strings.HasPrefix(m["app-lock"][0], "PASS") {
		t.Fatalf("%v", m["app-lock"])
	}
	if err := emuhook.Of(env.e).SetServicePrincipalLock(scenario.DemoAppClientID, false, false, true); err != nil {
		t.Fatal(err)
	}
	m = rows(env.run(append(args[:len(args)-6:len(args)-6], "-o", "json"))) // no customers
	if len(m["app-lock"]) != 1 {
		t.Fatalf("%v", m)
	}
	// KVASSERT_APP_OBJECT_ID alone does not turn the app audit on.
	if m := rows(env.run([]string{"cert", "audit", "-o", "json"}, "KVASSERT_APP_OBJECT_ID="+scenario.DemoAppObjectID)); len(m["app-lock"]) != 0 {
		t.Fatalf("%v", m)
	}
	if len(m["app-lock"]) != 1 || !strings.HasPrefix(m["app-lock"][0], "FAIL the app's credentials are not locked") || !strings.Contains(m["app-lock"][0], `"isEnabled":true,"allProperties":true`) || len(m["tenants"]) != 0 {
		t.Fatalf("%v", m)
	}
	wantUsageErrors(t, env, []usageCase{
		{args: []string{"cert", "audit", "--customer-tenant", "contoso.onmicrosoft.com"}, msg: "--app-object-id is required with --app, --customer-tenant or --customer-tenants-file"},
		{args: []string{"cert", "audit", "--app", "--app-object-id", "x"}, msg: "is not a GUID"},
		{args: []string{"cert", "audit", "--app", "--app-object-id", scenario.DemoAppObjectID}, msg: "--tenant is required"},
		{args: []string{"cert", "audit", "--app-object-id", scenario.DemoAppObjectID, "-t", scenario.DemoHomeTenant, "--customer-tenant", "x/y"}, msg: "--customer-tenant: \"x/y\" is not a tenant ID"},
	})
}

// TestTenantsExitCodes: 0 all ok, 1 a tenant falls short, 2 usage, 3 no
// tenant could be reached (the emulator's port is closed).
func TestTenantsExitCodes(t *testing.T) {
	t.Parallel()
	env := newCLIEnv(t)
	for _, c := range []struct {
		args  string
		extra []string
		code  int
	}{
		{"tenants", nil, 0},
		{"tenants bogus", nil, 2},
		{"tenants check --customer-tenant contoso.onmicrosoft.com -o json", nil, 0},
		{"tenants check --customer-tenant wingtip.onmicrosoft.com", nil, 1},
		{"tenants check --customer-tenant common", nil, 2},
		{"tenants check --customer-tenant contoso.onmicrosoft.com", []string{"KVASSERT_EMULATOR=https://127.0.0.1:1"}, 3},
		{"tenants consent-url --redirect-uri https://app.example.com/cb", nil, 0},
		{"tenants consent-url", nil, 2},
	} {
		if r := env.run(strings.Fields(c.args), c.extra...); r.code != c.code {
			t.Errorf("kvassert %s: exit %d, want %d\n%s\n%s", c.args, r.code, c.code, r.stdout, r.stderr)
		}
	}
}
