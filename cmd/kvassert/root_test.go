package main

import (
	"maps"
	"strings"
	"testing"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

func TestHelpVersionCompletion(t *testing.T) {
	t.Parallel()
	r := runBin(t, nil, "", []string{"--help"})
	wantOK(t, r)
	for _, want := range []string{"demo", "emulate", "token", "assertion", "decode", "cert", "completion", "KVASSERT_EMULATOR", "Exit codes"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("--help lacks %q", want)
		}
	}
	r = runBin(t, nil, "", []string{"token", "--help"})
	wantOK(t, r)
	for _, want := range []string{"Examples:", "[env KVASSERT_CLIENT_ID, AZURE_CLIENT_ID]", "[env KVASSERT_TENANT_ID, AZURE_TENANT_ID]", "--password-env", "--managed-identity", "flag > KVASSERT_* > AZURE_*"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("token --help lacks %q", want)
		}
	}
	if strings.Contains(r.stdout, "--password ") {
		t.Error("token --help shows the refused --password flag")
	}
	r = runBin(t, nil, "", []string{"--version"})
	wantOK(t, r)
	if !strings.Contains(r.stdout, kvassert.Version) {
		t.Errorf("--version = %q", r.stdout)
	}
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		r = runBin(t, nil, "", []string{"completion", shell})
		wantOK(t, r)
		if !strings.Contains(r.stdout, "kvassert") {
			t.Errorf("completion %s printed no script", shell)
		}
	}
	// Dynamic completion of --output values.
	r = runBin(t, nil, "", []string{"__complete", "token", "--output", ""})
	wantOK(t, r)
	if !strings.Contains(r.stdout, "json") || !strings.Contains(r.stdout, "tsv") {
		t.Errorf("completion of --output = %q", r.stdout)
	}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		args      []string
		msg, hint string
	}{
		{[]string{"tokn"}, `unknown command "tokn"`, "did you mean token"},
		{[]string{"token", "--bogus"}, "unknown flag: --bogus", "kvassert token --help"},
		{[]string{"cert", "bogus"}, `unknown command "bogus" for "kvassert cert"`, "create, show, export, audit, status and roll"},
		{[]string{"cert", "show", "--vault"}, "flag needs an argument", "--help"},
		{[]string{"-o", "xml", "token"}, `unknown output format "xml"`, "json, jsonc, yaml, table, tsv or none"},
		{[]string{"--cloud", "mars", "token"}, `unknown cloud "mars"`, "AzureCloud"},
		{[]string{"token", "extra-arg"}, "takes no arguments", ""},
		{[]string{"decode", "a", "b"}, "one JWT", ""},
		{[]string{"token", "--tenant", "contoso.onmicrosoft.com", "--client-id", "6d2f4a8b-1c3e-4f5a-9b7d-2e4f6a8c0b16", "--password", "hunter2-secret-pw"}, "--password is not accepted", "--password-env"},
	}
	for _, c := range cases {
		r := runBin(t, nil, "", c.args)
		wantError(t, r, exitUsage, c.msg, c.hint)
		if strings.Contains(r.stderr, "hunter2") {
			t.Errorf("kvassert %v: the password appears on stderr", c.args)
		}
	}
}

// A broken emulator configuration must fail up front, and never fall back
// to real Azure.
func TestEmulatorEnvErrors(t *testing.T) {
	t.Parallel()
	args := []string{"cert", "show", "--vault", "https://kvassert-demo.vault.azure.net/", "--cert", "x"}
	cases := []struct {
		vars      map[string]string
		msg, hint string
	}{
		{map[string]string{"KVASSERT_EMULATOR": "https://127.0.0.1:8443"}, "KVASSERT_CA_FILE is not", "kvassert emulate"},
		{map[string]string{"KVASSERT_EMULATOR": "http://127.0.0.1:8443", "KVASSERT_CA_FILE": "/nonexistent"}, "is not the https://127.0.0.1:PORT address", "unset KVASSERT_EMULATOR"},
		{map[string]string{"KVASSERT_EMULATOR": "https://emulator.example.com:8443", "KVASSERT_CA_FILE": "/nonexistent"}, "not a loopback address", ""},
		{map[string]string{"KVASSERT_EMULATOR": "https://127.0.0.1:8443", "KVASSERT_CA_FILE": "/nonexistent/ca.pem"}, "KVASSERT_CA_FILE", "CA file"},
	}
	for _, c := range cases {
		r := runBin(t, c.vars, "", args)
		wantError(t, r, exitUsage, c.msg, c.hint)
	}
}

// TestOnlyShowErrors: az's --only-show-errors, which scripts ported from
// az pass: no warning (a deprecated flag spelling's note included) while
// errors and the exit code stay; with --verbose or --debug it is a usage
// error before any request, as in az.
func TestOnlyShowErrors(t *testing.T) {
	t.Parallel()
	env := newCLIEnv(t)
	r := env.run([]string{"cert", "show", "--name", scenario.DemoCertificate, "--only-show-errors", "-o", "json"})
	wantOK(t, r)
	if r.stderr != "" || !strings.HasPrefix(r.stdout, "{") {
		t.Errorf("cert show --name --only-show-errors: stderr %q (want none), stdout %q", r.stderr, r.stdout)
	}
	r = env.run([]string{"cert", "show", "--name", scenario.DemoCertificate, "-o", "none"})
	if !strings.Contains(r.stderr, "warning: --name is deprecated") {
		t.Errorf("without --only-show-errors, no deprecation note: %q", r.stderr)
	}
	wantError(t, env.run([]string{"token", "--only-show-errors", "--tenant", emuhook.DemoWingtipTenant}), exitFailure, "AADSTS700016", "")
	before := env.e.Counts()
	for _, f := range []string{"--verbose", "--debug"} {
		wantError(t, env.run([]string{"token", "--only-show-errors", f, "--tenant", "contoso.onmicrosoft.com"}), exitUsage,
			"--only-show-errors can't be used together with --debug or --verbose", "")
	}
	if after := env.e.Counts(); !maps.Equal(before, after) {
		t.Errorf("requests were made before the usage error: %v, then %v", before, after)
	}
}
