package main

import (
	"bytes"
	"io"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// conflictValues are values for every flag of a conflicting pair: a
// flag's default where it has one (given with its default value, it still
// counts as given), else a well-formed value.
var conflictValues = map[string]string{
	"managed-identity": "0c5f2d3e-1a2b-4c3d-8e9f-a0b1c2d3e4f5",
	"vault":            "https://kvassert-demo.vault.azure.net/",
	"cert":             "saas-app-auth",
	"key-id":           "https://kvassert-demo.vault.azure.net/keys/k/0123456789abcdef0123456789abcdef",
	"cert-file":        "/nonexistent/cert.pem",
	"key-file":         "/nonexistent/key.pem",
	"thumbprint":       "52ED9B50A1B2C3D4E5F60718293A4B5C6D7E8F90",
	"password-env":     "PFX_PASSWORD",
	"alg":              "PS256", // the default
	"lifetime":         "10m0s", // the default
	"x5c":              "false", // the default
	"scope":            defaultScope,
	"resource":         "https://management.azure.com",
	"audience":         "https://login.microsoftonline.com/t/oauth2/v2.0/token",
	"tenant":           "contoso.onmicrosoft.com",

	"token-cache-key-env":  "CACHE_KEY",
	"token-cache-key-file": "/nonexistent/cache.key",
	"token-cache-wrap-key": "https://kvassert-demo.vault.azure.net/keys/wrap",
}

// wantConflicts is every pair of mutually exclusive flags, by command.
var wantConflicts = func() map[string][]string {
	cred := []string{}
	for _, c := range credConflicts() {
		cred = append(cred, c.a+" "+c.b)
	}
	cache := []string{"token-cache-key-env token-cache-key-file", "token-cache-key-env token-cache-wrap-key", "token-cache-key-file token-cache-wrap-key"}
	return map[string][]string{
		"kvassert token":         append(append(slices.Clone(cred), cache...), "scope resource"),
		"kvassert assertion":     append(slices.Clone(cred), "audience tenant"),
		"kvassert decode":        {"cert-file vault", "cert-file cert"},
		"kvassert proxy":         cache,
		"kvassert tenants check": slices.Clone(cred),
	}
}()

// walk visits every command of the tree.
func walk(c *cobra.Command, visit func(*cobra.Command)) {
	visit(c)
	for _, s := range c.Commands() {
		walk(s, visit)
	}
}

func newTestRoot() *cobra.Command {
	a := &App{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: &bytes.Buffer{}, Getenv: func(string) string { return "" }, flagFrom: map[string]string{}}
	return newRootCmd(a)
}

// TestConflictTable: every pair of mutually exclusive flags, in every
// command, is refused with a usage error (exit 2) when both flags are given,
// whatever their values (the default value included), before any network
// call; and the registered pairs are exactly the table's.
func TestConflictTable(t *testing.T) {
	t.Parallel()
	got := map[string][]string{}
	walk(newTestRoot(), func(c *cobra.Command) {
		for _, p := range conflictsOf(c) {
			got[c.CommandPath()] = append(got[c.CommandPath()], p.a+" "+p.b)
		}
	})
	for cmd, pairs := range wantConflicts {
		g, w := slices.Clone(got[cmd]), slices.Clone(pairs)
		sort.Strings(g)
		sort.Strings(w)
		if !slices.Equal(g, w) {
			t.Errorf("%s: registered pairs %q, want %q", cmd, g, w)
		}
	}
	for cmd := range got {
		if _, ok := wantConflicts[cmd]; !ok {
			t.Errorf("%s registers conflicts %q not in the table", cmd, got[cmd])
		}
	}
	// A broken emulator configuration: no request can leave, and the
	// refusal (exit 2) comes before any.
	vars := map[string]string{"KVASSERT_EMULATOR": "https://127.0.0.1:9", "KVASSERT_CA_FILE": "/nonexistent/ca.pem"}
	for cmd, pairs := range wantConflicts {
		for _, p := range pairs {
			a, b, _ := strings.Cut(p, " ")
			args := strings.Fields(strings.TrimPrefix(cmd, "kvassert "))
			for _, f := range []string{a, b} {
				v, ok := conflictValues[f]
				if !ok {
					t.Fatalf("no value for --%s", f)
				}
				args = append(args, "--"+f+"="+v)
			}
			wantError(t, runBin(t, vars, "", args), exitUsage, "give either --"+a+" or --"+b+", not both", "")
		}
	}
}

// TestConflictEnvironmentYields: a flag filled from the environment does
// not conflict with the other flag given on the command line (the command
// line wins), e.g. KVASSERT_SCOPE with --resource.
func TestConflictEnvironmentYields(t *testing.T) {
	t.Parallel()
	env := newCLIEnv(t)
	r := env.run([]string{"token", "--tenant", "contoso.onmicrosoft.com", "--resource", "https://management.azure.com", "--query", "tenant", "-o", "tsv"},
		"KVASSERT_SCOPE=https://graph.microsoft.com/.default")
	wantOK(t, r)
	// The case: the default scope given explicitly with --resource.
	wantError(t, env.run([]string{"token", "--tenant", "contoso.onmicrosoft.com", "--scope", defaultScope, "--resource", "https://management.azure.com"}),
		exitUsage, "give either --scope or --resource, not both", "--resource R is the same as --scope R/.default")
}
