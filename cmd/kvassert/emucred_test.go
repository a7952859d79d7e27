package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// fakeAz puts an "az" (and "azd") on PATH that records each call in a file
// and fails, as a signed-out Azure CLI would. It returns the PATH value and
// a func reporting whether either was called.
func fakeAz(t *testing.T) (path string, called func() bool) {
	t.Helper()
	dir := t.TempDir()
	record := filepath.Join(dir, "calls")
	script := "#!/bin/sh\necho \"$0 $*\" >> '" + record + "'\necho 'ERROR: Please run az login' >&2\nexit 1\n"
	for _, name := range []string{"az", "azd"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir, func() bool {
		_, err := os.Stat(record)
		return err == nil
	}
}

// Issue 18, defect 10: with KVASSERT_EMULATOR set, no command hands a real
// developer credential to the emulator: the Azure CLI (az login) is never
// run, and AZURE_* environment credentials are not what reaches it. Every
// command path that builds a vault credential is run.
func TestEmulatorNeverUsesDeveloperCredentials(t *testing.T) {
	t.Parallel()
	env := newCLIEnv(t)
	path, called := fakeAz(t)
	keyID := ""
	{
		r := env.run([]string{"cert", "show", "-o", "json", "--query", "kid", "-o", "tsv"})
		wantOK(t, r)
		keyID = strings.TrimSpace(r.stdout)
		if !strings.HasPrefix(keyID, "https://") {
			t.Fatalf("kid %q", keyID)
		}
	}
	tenant := []string{"--tenant", "contoso.onmicrosoft.com"}
	commands := [][]string{
		append([]string{"token"}, tenant...),
		append([]string{"token", "--key-id", keyID, "--thumbprint", strings.Repeat("ab", 20)}, tenant...),
		append([]string{"assertion"}, tenant...),
		{"cert", "show"},
		{"cert", "audit"},
		{"cert", "export", "--out", filepath.Join(t.TempDir(), "c.cer")},
		{"cert", "create", "-n", "never-created"},
	}
	// A developer's shell: signed in with az, no emulator identity set.
	bare := []string{"PATH=" + path, "AZURE_CLIENT_SECRET=", "AZURE_CLIENT_ID=", "AZURE_TENANT_ID=",
		"KVASSERT_EMULATOR_CLIENT_SECRET=", "KVASSERT_EMULATOR_CLIENT_ID=", "KVASSERT_EMULATOR_TENANT_ID="}
	for _, args := range commands {
		r := env.run(args, bare...)
		if called() {
			t.Fatalf("kvassert %s with KVASSERT_EMULATOR set ran the Azure CLI (exit %d)\nstderr:\n%s", strings.Join(args, " "), r.code, r.stderr)
		}
		if r.code == 0 {
			t.Errorf("kvassert %s succeeded without the emulator's identity", strings.Join(args, " "))
		}
	}
	// The proxy too (its vault and forward credential): it refuses to start.
	r := env.run([]string{"proxy", "--listen", "127.0.0.1:0", "--allow-forward"}, bare...)
	wantError(t, r, exitUsage, "KVASSERT_EMULATOR is set but not the emulator's identity", "KVASSERT_EMULATOR_CLIENT_SECRET")
	if called() {
		t.Fatal("kvassert proxy with KVASSERT_EMULATOR set ran the Azure CLI")
	}
	// --managed-identity with an endpoint that is not the emulator's: its
	// token would become the assertion sent to the emulator.
	r = env.run(append([]string{"token", "--managed-identity", emuhook.DemoIdentityClientID}, tenant...),
		append(bare, "IDENTITY_ENDPOINT=http://127.0.0.1:1/msi/forward", "IDENTITY_HEADER=developer-proxy-secret")...)
	wantError(t, r, exitUsage, "needs the emulator's managed identity endpoint", "IDENTITY_ENDPOINT")

	// A developer's service principal in AZURE_* is not sent to the
	// emulator either: the emulator's identity is used, so the command
	// works although the emulator knows no such app.
	dev := []string{"PATH=" + path, "AZURE_TENANT_ID=" + scenario.DemoContosoTenant, "AZURE_CLIENT_ID=0f0e0d0c-0b0a-4908-8706-050403020100",
		"AZURE_CLIENT_SECRET=developer-real-secret-do-not-send"}
	r = env.run(append([]string{"token"}, tenant...), dev...)
	checkToken(t, parseToken(t, r), scenario.DemoContosoTenant)
	if called() {
		t.Fatal("the Azure CLI was run")
	}
}
