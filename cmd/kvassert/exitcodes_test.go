package main

import (
	"maps"
	"net"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// exitCase is one command line and the exit code it must give. env picks
// the environment: "" none, "emu" the demo emulator, "roll" the emulator
// with the app's home tenant and object ID, "closed" the emulator's
// variables pointing at a closed loopback port. stdin "assertion" pipes in
// an assertion the emulator's app signed.
type exitCase struct {
	env   string
	args  string
	stdin string
	code  int
}

// exitTable has a row for every command of the CLI (TestExitCodes fails on
// a command without one): 0 ok, 1 the service refused or a check fell
// short, 2 usage (before any network call), 3 a service could not be
// reached, each where it applies.
func exitTable(busyAddr string) map[string][]exitCase {
	wingtip := emuhook.DemoWingtipTenant
	obj := "--app-object-id " + scenario.DemoAppObjectID
	noVault := "--vault https://nosuchvault.vault.azure.net/"
	return map[string][]exitCase{
		"kvassert": {{"", "--help", "", 0}, {"", "--version", "", 0}, {"", "--bogus", "", 2}, {"", "-v", "", 2}},
		"kvassert demo": {
			{"", "demo -o none", "", 0}, {"", "demo -o table", "", 2},
		},
		"kvassert emulate": {
			{"", "emulate --listen " + busyAddr, "", 1}, {"", "emulate --listen 0.0.0.0:1", "", 2}, {"", "emulate --listen 127.0.0.1:99999", "", 2},
			{"", "emulate --listen 127.0.0.1:0 --ca-out /nonexistent/dir/ca.pem", "", 2}, {"", "emulate -o table", "", 2},
		},
		"kvassert token": {
			{"emu", "token --tenant contoso.onmicrosoft.com -o none", "", 0},
			{"emu", "token --tenant " + wingtip, "", 1},
			{"emu", "token -o none --tenant " + wingtip, "", 1}, // none prints nothing, keeps the code
			{"emu", "token --tenant contoso.onmicrosoft.com --scope https://graph.microsoft.com/User.Read", "", 2},
			{"closed", "token --tenant contoso.onmicrosoft.com", "", 3},
			// Bad values are usage errors before any request: with the
			// emulator unreachable, a request would give 3.
			{"closed", "token --tenant bad!", "", 2},
			{"closed", "token --tenant x", "", 2}, // one label: no Entra tenant is named so
			{"closed", "token --tenant contoso.onmicrosoft.com --client-id notaguid", "", 2},
			{"closed", "token --tenant contoso.onmicrosoft.com --vault notaurl", "", 2},
			{"closed", "token --tenant contoso.onmicrosoft.com --cert bad_name", "", 2},
			{"closed", "token --tenant contoso.onmicrosoft.com --resource notaurl", "", 2},
			{"closed", "token --tenant contoso.onmicrosoft.com --scope x/.default", "", 2},
			{"closed", "token --tenant contoso.onmicrosoft.com --scope https://graph.microsoft.com?x/.default", "", 2},
			{"closed", "token --tenant contoso.onmicrosoft.com --scope https://graph.microsoft.com/.default/.default", "", 2},
			{"closed", "token --tenant contoso.onmicrosoft.com --resource https://graph.microsoft.com/.default", "", 2},
			{"closed", "token --tenant contoso.onmicrosoft.com --cert-file /nonexistent/app.pem", "", 2},
		},
		"kvassert assertion": {
			{"emu", "assertion --tenant contoso.onmicrosoft.com", "", 0},
			{"emu", "assertion --tenant contoso.onmicrosoft.com -o table", "", 0},
			{"emu", "assertion --tenant contoso.onmicrosoft.com --cert nosuchcert", "", 1},
			{"emu", "assertion --audience http://login.example/token", "", 2},
			{"closed", "assertion --tenant contoso.onmicrosoft.com", "", 3},
			{"closed", "assertion --tenant contoso.onmicrosoft.com --client-id notaguid", "", 2},
		},
		"kvassert decode": {
			{"", "decode -", "assertion", 0},
			{"", "decode eyJhbGciOiJQUzI1NiJ9.eyJhIjoxfQ.c2ln", "", 1}, // a JWT with problems
			{"", "decode not-a-jwt", "", 2},                            // not a JWT: bad input
			{"", "decode a b", "", 2},
			{"closed", "decode -", "assertion", 3}, // checked against KVASSERT_VAULT/KVASSERT_CERT
		},
		"kvassert cert": {{"", "cert", "", 0}, {"", "cert bogus", "", 2}},
		"kvassert cert create": {
			{"emu", "cert create -n exitcodes -o none", "", 0},
			{"emu", "cert create -n exitcodes " + noVault, "", 1},
			{"emu", "cert create -n exitcodes --key-size 1024", "", 2},
			{"closed", "cert create -n exitcodes", "", 3},
			{"closed", "cert create -n exitcodes --out /nonexistent/dir/x.cer", "", 2}, // not created, then unwritable
		},
		"kvassert cert show": {
			{"emu", "cert show", "", 0}, {"emu", "cert show -n nosuchcert", "", 1},
			{"emu", "cert show --version xyz", "", 2}, {"closed", "cert show", "", 3},
		},
		"kvassert cert export": {
			{"emu", "cert export", "", 0}, {"emu", "cert export --format keycredential --query keyId -o tsv", "", 0},
			{"emu", "cert export -n nosuchcert", "", 1}, {"emu", "cert export --query keyId", "", 2},
			{"closed", "cert export", "", 3}, {"closed", "cert export --out /nonexistent/dir/x.pem", "", 2},
		},
		"kvassert tenants": {{"", "tenants", "", 0}, {"", "tenants bogus", "", 2}},
		"kvassert tenants check": {
			{"roll", "tenants check --customer-tenant contoso.onmicrosoft.com -o none", "", 0},
			{"roll", "tenants check --customer-tenant " + wingtip, "", 1}, // not consented: falls short
			{"roll", "tenants check --customer-tenant common", "", 2},
			{"closed", "tenants check --tenant contoso.onmicrosoft.com --customer-tenant contoso.onmicrosoft.com", "", 3},
			{"closed", "tenants check --customer-tenant bad!", "", 2},
			{"closed", "tenants check --customer-tenant x,y", "", 2},
			{"closed", "tenants check --customer-tenant contoso.onmicrosoft.com --require-role notaurl=x", "", 2},
			{"closed", "tenants check --customer-tenant contoso.onmicrosoft.com --client-id notaguid", "", 2},
		},
		"kvassert tenants consent-url": {
			{"emu", "tenants consent-url --redirect-uri https://app.example.com/consent", "", 0},
			{"emu", "tenants consent-url", "", 2}, // no redirect URI
			{"emu", "tenants consent-url --redirect-uri https://app.example.com/consent --tenant bad!", "", 2},
		},
		"kvassert cert audit": {
			{"emu", "cert audit --fail-on fail", "", 0}, {"emu", "cert audit", "", 1}, // the demo certificate has a warning
			{"emu", "cert audit -n nosuchcert", "", 1},
			{"emu", "cert audit --fail-on sometimes", "", 2}, {"closed", "cert audit", "", 3},
			{"closed", "cert audit --app-object-id notaguid", "", 2}, // given without --app: nothing would read it
			{"closed", "cert audit --app --app-object-id notaguid", "", 2},
		},
		"kvassert cert status": {
			{"roll", "cert status", "", 0}, {"roll", "cert status -n nosuchcert", "", 1},
			{"roll", "cert status --app-object-id not-a-guid", "", 2}, {"closed", "cert status --tenant " + scenario.DemoHomeTenant + " " + obj, "", 3},
		},
		"kvassert cert roll": {
			{"roll", "cert roll --dry-run", "", 0}, {"roll", "cert roll -n nosuchcert", "", 1},
			{"roll", "cert roll --grace -1h", "", 2}, {"closed", "cert roll --tenant " + scenario.DemoHomeTenant + " " + obj, "", 3},
		},
		"kvassert proxy": {
			{"", "proxy --listen 0.0.0.0:1", "", 2}, {"", "proxy -o json", "", 2}, {"", "proxy --listen 127.0.0.1:notaport", "", 2},
			{"closed", "proxy --listen 127.0.0.1:0 --secret-out /nonexistent/dir/secret", "", 2},
			{"closed", "proxy --customer-tenant bad!", "", 2},
			{"closed", "proxy --customer-tenant contoso.onmicrosoft.com --require-role notaurl=x", "", 2},
			{"closed", "proxy --customer-tenant contoso.onmicrosoft.com --redirect-uri notaurl", "", 2},
		},
		"kvassert version":               {{"", "version", "", 0}, {"", "version -o yaml", "", 0}, {"", "version extra", "", 2}},
		"kvassert completion":            {{"", "completion", "", 0}, {"", "completion --bogus", "", 2}},
		"kvassert completion bash":       {{"", "completion bash", "", 0}, {"", "completion bash --query x", "", 2}},
		"kvassert completion zsh":        {{"", "completion zsh", "", 0}, {"", "completion zsh --bogus", "", 2}},
		"kvassert completion fish":       {{"", "completion fish", "", 0}, {"", "completion fish --bogus", "", 2}},
		"kvassert completion powershell": {{"", "completion powershell", "", 0}, {"", "completion powershell --bogus", "", 2}},
		"kvassert help":                  {{"", "help token", "", 0}, {"", "help --bogus", "", 2}},
	}
}

// TestExitCodes: every command of the CLI (the cobra tree walked, help and
// completion included) has rows in exitTable, and each row exits as
// documented.
func TestExitCodes(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	table := exitTable(busy.Addr().String())

	root := newTestRoot()
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	walk(root, func(c *cobra.Command) {
		if _, ok := table[c.CommandPath()]; !ok {
			t.Errorf("%s has no row in exitTable", c.CommandPath())
		}
	})

	emu := newCLIEnv(t)
	roll := newRollEnv(t)
	closedL, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "https://" + closedL.Addr().String()
	closedL.Close()
	closed := maps.Clone(roll.vars)
	closed["KVASSERT_EMULATOR"] = closedURL
	envs := map[string]map[string]string{"": nil, "emu": emu.vars, "roll": roll.vars, "closed": closed}

	r := emu.run([]string{"assertion", "--tenant", "contoso.onmicrosoft.com"})
	wantOK(t, r)
	assertion := strings.TrimSpace(r.stdout)

	for cmd, cases := range table {
		for _, c := range cases {
			stdin := c.stdin
			if stdin == "assertion" {
				stdin = assertion
			}
			vars := envs[c.env]
			if c.env == "" {
				vars = map[string]string{}
			}
			r := runBin(t, vars, stdin, strings.Fields(c.args))
			if r.code != c.code {
				t.Errorf("%s: kvassert %s (env %q): exit %d, want %d\nstderr:\n%s", cmd, c.args, c.env, r.code, c.code, r.stderr)
				continue
			}
			if c.code == exitUnreachable && !strings.Contains(r.stderr, "could not reach ") {
				t.Errorf("kvassert %s: exit 3 without 'could not reach':\n%s", c.args, r.stderr)
			}
		}
	}
}
