package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// emulator is "kvassert emulate" running as a child process.
type emulator struct {
	cmd    *exec.Cmd
	stdout []string          // lines printed before "Serving until"
	env    map[string]string // its export lines
	mu     sync.Mutex
	stderr bytes.Buffer
	done   chan error
}

func (e *emulator) Write(p []byte) (int, error) { // stderr sink
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.stderr.Write(p)
}

func (e *emulator) stderrText() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.stderr.String()
}

// startEmulate runs kvassert emulate with args and waits until it serves.
func startEmulate(t *testing.T, args ...string) *emulator {
	t.Helper()
	e := &emulator{env: map[string]string{}, done: make(chan error, 1)}
	e.cmd = exec.Command(kvassertBin, append([]string{"emulate"}, args...)...)
	e.cmd.Env = hermeticEnv(t, nil)
	e.cmd.Stderr = e
	out, err := e.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := e.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if e.cmd.ProcessState == nil {
			e.cmd.Process.Kill()
			<-e.done
		}
	})
	ready := make(chan struct{})
	go func() {
		serving := false // only this goroutine touches it
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			if serving {
				continue
			}
			e.stdout = append(e.stdout, line)
			if kv, ok := strings.CutPrefix(line, "export "); ok {
				k, v, _ := strings.Cut(kv, "=")
				e.env[k] = strings.Trim(v, "'")
			}
			if strings.HasPrefix(line, "Serving until") {
				serving = true
				close(ready)
			}
		}
		io.Copy(io.Discard, out)
		e.done <- e.cmd.Wait()
	}()
	select {
	case <-ready:
	case err := <-e.done:
		e.done <- err
		t.Fatalf("kvassert emulate exited before serving: %v\nstdout:\n%s\nstderr:\n%s", err, strings.Join(e.stdout, "\n"), e.stderrText())
	case <-time.After(30 * time.Second):
		t.Fatalf("kvassert emulate did not start in 30 s\nstderr:\n%s", e.stderrText())
	}
	return e
}

// stop signals the emulator and waits for it to exit.
func (e *emulator) stop(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := e.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-e.done:
		if err != nil {
			t.Fatalf("kvassert emulate after %v: %v\nstderr:\n%s", sig, err, e.stderrText())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("kvassert emulate did not stop within 15 s of %v", sig)
	}
}

func TestEmulate(t *testing.T) {
	t.Parallel()
	caOut := filepath.Join(t.TempDir(), "emulator-ca.pem")
	em := startEmulate(t, "--listen", "127.0.0.1:0", "--ca-out", caOut)
	out := strings.Join(em.stdout, "\n")

	// The environment it prints.
	if !strings.HasPrefix(em.env["KVASSERT_EMULATOR"], "https://127.0.0.1:") {
		t.Errorf("KVASSERT_EMULATOR = %q", em.env["KVASSERT_EMULATOR"])
	}
	if em.env["KVASSERT_CA_FILE"] != caOut {
		t.Errorf("KVASSERT_CA_FILE = %q, want %q", em.env["KVASSERT_CA_FILE"], caOut)
	}
	if pem, err := os.ReadFile(caOut); err != nil || !bytes.Contains(pem, []byte("BEGIN CERTIFICATE")) {
		t.Errorf("CA file: %v", err)
	}
	want := map[string]string{
		"KVASSERT_EMULATOR_TENANT_ID":     scenario.DemoHomeTenant,
		"KVASSERT_EMULATOR_CLIENT_ID":     emuhook.DemoWorkloadClientID,
		"KVASSERT_EMULATOR_CLIENT_SECRET": emuhook.DemoWorkloadSecret,
		"KVASSERT_CLIENT_ID":              scenario.DemoAppClientID,
		"KVASSERT_VAULT":                  "https://kvassert-demo.vault.azure.net/",
		"KVASSERT_CERT":                   scenario.DemoCertificate,
		"IDENTITY_ENDPOINT":               em.env["KVASSERT_EMULATOR"] + "/msi/token",
	}
	for k, v := range want {
		if em.env[k] != v {
			t.Errorf("%s = %q, want %q", k, em.env[k], v)
		}
	}
	if len(em.env["IDENTITY_HEADER"]) < 16 {
		t.Errorf("IDENTITY_HEADER = %q", em.env["IDENTITY_HEADER"])
	}
	for _, s := range []string{"Emulator-only secret", "contoso", "wingtip", "not consented", "kvassert token --tenant contoso.onmicrosoft.com"} {
		if !strings.Contains(out, s) {
			t.Errorf("emulate output lacks %q:\n%s", s, out)
		}
	}

	// It serves: the commands work with exactly the environment it printed.
	r := runBin(t, em.env, "", []string{"token", "--tenant", "contoso.onmicrosoft.com"})
	wantOK(t, r)
	var tok struct{ Tenant string }
	if err := json.Unmarshal([]byte(r.stdout), &tok); err != nil || tok.Tenant != scenario.DemoContosoTenant {
		t.Errorf("token: tenant %q (%v)\n%s", tok.Tenant, err, r.stdout)
	}
	r = runBin(t, em.env, "", []string{"token", "--tenant", "fabrikam.onmicrosoft.com", "--managed-identity", emuhook.DemoIdentityClientID, "-o", "tsv"})
	wantOK(t, r)
	if f := strings.Split(strings.TrimSpace(r.stdout), "\t"); len(f) != 5 || f[3] != emuhook.DemoFabrikamTenant {
		t.Errorf("managed identity token: %q", r.stdout)
	}

	// It stops on SIGINT, having logged one line per request.
	em.stop(t, os.Interrupt)
	logs := em.stderrText()
	if !strings.Contains(logs, "msg=request") || !strings.Contains(logs, "path=/keys/"+scenario.DemoCertificate) || !strings.Contains(logs, "/oauth2/v2.0/token") {
		t.Errorf("emulate logged no requests:\n%s", logs)
	}
	if !strings.Contains(logs, "Stopping the emulator") {
		t.Errorf("emulate did not say it stopped:\n%s", logs)
	}
	if jwtPattern.MatchString(logs) || strings.Contains(logs, emuhook.DemoWorkloadSecret) || strings.Contains(logs, em.env["IDENTITY_HEADER"]) {
		t.Errorf("emulate logged a token or secret:\n%s", logs)
	}
}

func TestEmulateConfig(t *testing.T) {
	t.Parallel()
	s := scenario.Demo()
	s.Tenants[1].Name = "adatum" // contoso, renamed
	data, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "scenario.json")
	if err := os.WriteFile(cfg, data, 0o600); err != nil {
		t.Fatal(err)
	}
	em := startEmulate(t, "--listen", "127.0.0.1:0", "--config", cfg, "--ca-out", filepath.Join(t.TempDir(), "ca.pem"))
	out := strings.Join(em.stdout, "\n")
	if !strings.Contains(out, "scenario: "+cfg) || !strings.Contains(out, "adatum") {
		t.Errorf("emulate --config output:\n%s", out)
	}
	r := runBin(t, em.env, "", []string{"token", "--tenant", "adatum.onmicrosoft.com", "-o", "tsv"})
	wantOK(t, r)
	em.stop(t, syscall.SIGTERM)
}

func TestEmulateErrors(t *testing.T) {
	t.Parallel()
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte(`{"tenants":[{"id":"not-a-guid"}],"typo":1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args      []string
		code      int
		msg, hint string
	}{
		{[]string{"emulate", "--listen", "0.0.0.0:8443"}, exitUsage, "not a loopback address", "127.0.0.1"},
		{[]string{"emulate", "--listen", "8443"}, exitUsage, "is not host:port", ""},
		{[]string{"emulate", "--config", filepath.Join(t.TempDir(), "missing.json")}, exitUsage, "--config", "scenario file"},
		{[]string{"emulate", "--listen", "127.0.0.1:0", "--config", bad}, exitUsage, "invalid JSON", ""},
	}
	for _, c := range cases {
		wantError(t, runBin(t, nil, "", c.args), c.code, c.msg, c.hint)
	}
}
