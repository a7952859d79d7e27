package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"maps"
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
	mi     map[string]string // the managed identity variables of its one-command line
	miArgs []string          // the command of that line
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
	return startEmulateEnv(t, nil, args...)
}

// startEmulateEnv is startEmulate with extra environment variables
// (NAME=value, as hermeticEnv takes them).
func startEmulateEnv(t *testing.T, extra []string, args ...string) *emulator {
	t.Helper()
	e := &emulator{env: map[string]string{}, mi: map[string]string{}, done: make(chan error, 1)}
	e.cmd = exec.Command(kvassertBin, append([]string{"emulate"}, args...)...)
	e.cmd.Env = hermeticEnv(t, nil, extra...)
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
			if strings.HasPrefix(line, "IDENTITY_ENDPOINT=") { // VAR=value VAR=value kvassert ARGS
				words := strings.Fields(line)
				for i, w := range words {
					if w == "kvassert" {
						e.miArgs = words[i+1:]
						break
					}
					k, v, _ := strings.Cut(w, "=")
					e.mi[k] = v
				}
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
		"KVASSERT_TENANT_ID":              scenario.DemoHomeTenant,
		"KVASSERT_APP_OBJECT_ID":          scenario.DemoAppObjectID,
		"KVASSERT_VAULT":                  "https://kvassert-demo.vault.azure.net/",
		"KVASSERT_CERT":                   scenario.DemoCertificate,
		"KVASSERT_CUSTOMER_TENANTS":       demoCustomerTenants(),
	}
	for k, v := range want {
		if em.env[k] != v {
			t.Errorf("%s = %q, want %q", k, em.env[k], v)
		}
	}
	// The managed identity endpoint is not among the export lines (the
	// proxy would warn about it, and its credential would use it), but on
	// a line of its own that runs one command.
	for _, k := range []string{"IDENTITY_ENDPOINT", "IDENTITY_HEADER", "MSI_ENDPOINT"} {
		if v, ok := em.env[k]; ok {
			t.Errorf("emulate exports %s=%s for the shell that runs kvassert", k, v)
		}
	}
	if em.mi["IDENTITY_ENDPOINT"] != em.env["KVASSERT_EMULATOR"]+"/msi/token" || len(em.mi["IDENTITY_HEADER"]) < 16 {
		t.Errorf("managed identity line: %v", em.mi)
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
	// The managed identity line, as printed.
	r = runBin(t, em.env, "", append(em.miArgs, "-o", "tsv"), "IDENTITY_ENDPOINT="+em.mi["IDENTITY_ENDPOINT"], "IDENTITY_HEADER="+em.mi["IDENTITY_HEADER"])
	wantOK(t, r)
	if f := strings.Split(strings.TrimSpace(r.stdout), "\t"); len(f) != 5 || f[3] != scenario.DemoContosoTenant || !strings.Contains(strings.Join(em.miArgs, " "), "--managed-identity "+emuhook.DemoIdentityClientID) {
		t.Errorf("managed identity token (%v): %q", em.miArgs, r.stdout)
	}
	// cert status needs the app's object ID and home tenant: printed.
	r = runBin(t, em.env, "", []string{"cert", "status", "-o", "json"})
	wantOK(t, r)
	if !strings.Contains(r.stdout, `"accepted": "accepted"`) {
		t.Errorf("cert status against the emulator:\n%s", r.stdout)
	}
	// The proxy started with these lines has nothing to warn about, even
	// with the managed identity variables exported too (as emulate once
	// printed them): under the emulator its credential is the emulator's.
	vars := maps.Clone(em.env)
	maps.Copy(vars, em.mi)
	p := startProxy(t, vars, "--listen", "127.0.0.1:0")
	stopProxy(t, p)
	if s := p.stderrText(); strings.Contains(s, "warning") || strings.Contains(s, "level=WARN") {
		t.Errorf("kvassert proxy with the emulator's lines warns:\n%s", s)
	}
	if !strings.Contains(strings.Join(p.stdout, "\n"), "/healthz (no secret)") {
		t.Errorf("the proxy did not print its liveness URL:\n%s", strings.Join(p.stdout, "\n"))
	}
	if !strings.Contains(strings.Join(p.stdout, "\n"), "/msi/"+scenario.DemoHomeTenant+"/"+scenario.DemoAppClientID+"/kv/kvassert-demo/"+scenario.DemoCertificate) {
		t.Errorf("the proxy did not print the app's managed identity lines:\n%s", strings.Join(p.stdout, "\n"))
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
	if jwtPattern.MatchString(logs) || strings.Contains(logs, emuhook.DemoWorkloadSecret) || strings.Contains(logs, em.mi["IDENTITY_HEADER"]) {
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

// TestEmulateSecondEmulatorKeepsTheFirstsCAFile: without --ca-out, a
// second emulator on another port writes its own CA file, so the shell
// that uses the first one keeps working.
func TestEmulateSecondEmulatorKeepsTheFirstsCAFile(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	first := startEmulateEnv(t, []string{"TMPDIR=" + tmp}, "--listen", "127.0.0.1:0")
	second := startEmulateEnv(t, []string{"TMPDIR=" + tmp}, "--listen", "127.0.0.1:0")
	ca1, ca2 := first.env["KVASSERT_CA_FILE"], second.env["KVASSERT_CA_FILE"]
	if ca1 == ca2 || filepath.Dir(ca1) != tmp || filepath.Dir(ca2) != tmp {
		t.Errorf("CA files %q and %q: want two files in %s", ca1, ca2, tmp)
	}
	for _, em := range []*emulator{first, second} {
		r := runBin(t, em.env, "", []string{"token", "--tenant", "contoso.onmicrosoft.com", "-o", "none"})
		wantOK(t, r)
	}
	if got := defaultCAFile("https://127.0.0.1:8443"); filepath.Base(got) != "kvassert-emulator-ca.pem" {
		t.Errorf("the default port's CA file is %s", got)
	}
}

// TestEmulateRemovesItsDefaultCAFile: on SIGTERM the emulator removes the
// CA file it wrote without --ca-out (emulators on random ports used to leave
// one kvassert-emulator-ca-PORT.pem each in the temp directory); a file
// given with --ca-out stays.
func TestEmulateRemovesItsDefaultCAFile(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	own := filepath.Join(t.TempDir(), "ca.pem")
	for _, c := range []struct {
		args  []string
		stays bool
	}{
		{[]string{"--listen", "127.0.0.1:0"}, false},
		{[]string{"--listen", "127.0.0.1:0", "--ca-out", own}, true},
	} {
		em := startEmulateEnv(t, []string{"TMPDIR=" + tmp}, c.args...)
		ca := em.env["KVASSERT_CA_FILE"]
		if _, err := os.Stat(ca); err != nil {
			t.Fatalf("%v: CA file while serving: %v", c.args, err)
		}
		if err := em.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err := <-em.done; err != nil {
			t.Fatalf("%v: exit after SIGTERM: %v", c.args, err)
		}
		if _, err := os.Stat(ca); (err == nil) != c.stays {
			t.Errorf("%v: after the stop, CA file %s: %v (want kept: %v)", c.args, ca, err, c.stays)
		}
	}
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
		{[]string{"emulate", "--listen", "127.0.0.1:0", "-o", "table"}, exitUsage, "prints shell lines or JSON", "-o json"},
		{[]string{"emulate", "--listen", "127.0.0.1:0", "-o", "tsv"}, exitUsage, "--output tsv does not apply", "-o json"},
		{[]string{"emulate", "--listen", "127.0.0.1:0", "--query", "url"}, exitUsage, "--query does not apply to its shell lines, only to -o json", "-o json"},
		{[]string{"emulate", "--listen", "127.0.0.1:0", "--shell", "tcsh"}, exitUsage, `--shell "tcsh"`, "bash, zsh, sh, fish or powershell"},
	}
	for _, c := range cases {
		wantError(t, runBin(t, nil, "", c.args), c.code, c.msg, c.hint)
	}
}

// With -o json, stdout is one JSON document (the instructions go to
// stderr), with everything the other commands need.
func TestEmulateJSON(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(kvassertBin, "emulate", "--listen", "127.0.0.1:0", "--ca-out", filepath.Join(t.TempDir(), "ca.pem"), "-o", "json")
	cmd.Env = hermeticEnv(t, nil)
	var stderr syncBuffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	var got struct {
		URL, CAFile                   string
		Env                           map[string]string
		ClientID, HomeTenant          string
		ApplicationObjectID, VaultURL string
		Certificate                   string
		Tenants                       []struct {
			Name, ID, Domain string
			Home, Consented  bool
		}
		ManagedIdentity map[string]string
	}
	dec := json.NewDecoder(out)
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("emulate -o json: stdout is not JSON: %v\nstderr:\n%s", err, stderr.String())
	}
	// Nothing else on stdout while it serves (it serves once the JSON is out).
	r := runBin(t, got.Env, "", []string{"token", "--tenant", "northwind.onmicrosoft.com", "--query", "tenant", "-o", "tsv"})
	wantOK(t, r)
	if strings.TrimSpace(r.stdout) != emuhook.DemoNorthwindTenant {
		t.Errorf("token with the JSON's env: %q", r.stdout)
	}
	_ = cmd.Process.Signal(os.Interrupt)
	rest, _ := io.ReadAll(io.MultiReader(dec.Buffered(), out))
	_ = cmd.Wait()
	if strings.TrimSpace(string(rest)) != "" {
		t.Errorf("stdout after the JSON: %q", rest)
	}
	if got.ClientID != scenario.DemoAppClientID || got.HomeTenant != scenario.DemoHomeTenant || got.ApplicationObjectID != scenario.DemoAppObjectID ||
		got.VaultURL != "https://kvassert-demo.vault.azure.net/" || got.Certificate != scenario.DemoCertificate || got.Env["KVASSERT_CA_FILE"] != got.CAFile {
		t.Errorf("emulate -o json: %+v", got)
	}
	consented := map[string]bool{}
	for _, tn := range got.Tenants {
		consented[tn.Name] = tn.Consented
	}
	if len(got.Tenants) != len(scenario.Demo().Tenants) || !got.Tenants[0].Home || consented["wingtip"] || !consented["contoso"] || !consented["kvassert-saas"] {
		t.Errorf("tenants: %+v", got.Tenants)
	}
	if got.ManagedIdentity["IDENTITY_ENDPOINT"] != got.URL+"/msi/token" || got.ManagedIdentity["clientId"] != emuhook.DemoIdentityClientID {
		t.Errorf("managedIdentity: %v", got.ManagedIdentity)
	}
	if _, ok := got.Env["IDENTITY_ENDPOINT"]; ok {
		t.Error("env holds IDENTITY_ENDPOINT")
	}
	if s := stderr.String(); !strings.Contains(s, "serving on "+got.URL) {
		t.Errorf("stderr: %s", s)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func TestEmulateShellSyntax(t *testing.T) {
	t.Parallel()
	cases := []struct {
		flag, shellEnv, goos string
		want                 string // the line for K="it's a b"
	}{
		{"", "/bin/bash", "linux", `export K='it'\''s a b'`},
		{"", "/usr/bin/zsh", "darwin", `export K='it'\''s a b'`},
		{"", "/usr/local/bin/fish", "linux", `set -gx K 'it\'s a b'`},
		{"", "", "windows", `$env:K = 'it''s a b'`},
		{"", `C:\Program Files\PowerShell\7\pwsh.exe`, "windows", `$env:K = 'it''s a b'`},
		{"", "/bin/tcsh", "linux", `export K='it'\''s a b'`},
		{"fish", "/bin/bash", "linux", `set -gx K 'it\'s a b'`},
		{"PowerShell", "/bin/bash", "linux", `$env:K = 'it''s a b'`},
		{"sh", "/usr/bin/fish", "linux", `export K='it'\''s a b'`},
	}
	for _, c := range cases {
		sh, err := pickShell(c.flag, c.shellEnv, c.goos)
		if err != nil {
			t.Errorf("pickShell(%q, %q, %q): %v", c.flag, c.shellEnv, c.goos, err)
			continue
		}
		if got := sh.set("K", "it's a b"); got != c.want {
			t.Errorf("pickShell(%q, %q, %q): %s, want %s", c.flag, c.shellEnv, c.goos, got, c.want)
		}
	}
	// The one-command lines of the managed identity endpoint.
	vars := [][2]string{{"A", "x y"}, {"B", "it's"}}
	for _, c := range []struct {
		syn  shellSyntax
		want string
	}{
		{posixShell, `A='x y' B='it'\''s' kvassert token`},
		{fishShell, `env A='x y' B='it\'s' kvassert token`},
		{powerShell, `$env:A = 'x y'; $env:B = 'it''s'; kvassert token; Remove-Item Env:A, Env:B`},
	} {
		if got := c.syn.prefix(vars, "kvassert token"); got != c.want {
			t.Errorf("%s: %s, want %s", c.syn.name, got, c.want)
		}
	}
	if out, err := exec.Command("bash", "-c", posixShell.prefix(vars, `bash -c 'printf "%s|%s" "$A" "$B"'`)+`; printf '|%s' "${A-unset}"`).Output(); err != nil || string(out) != "x y|it's|unset" {
		t.Errorf("bash runs the one-command line: %q %v", out, err)
	}
	if got := fishQuote(`a\b`); got != `'a\\b'` {
		t.Errorf("fishQuote: %s", got)
	}
	// PowerShell ends a single-quoted string at any of its four typographic
	// single quotes too (‘ ’ ‚ ‛): each is doubled like '.
	if got, want := psQuote("C:\\Users\\O’Brien‘‚‛'s"), "'C:\\Users\\O’’Brien‘‘‚‚‛‛''s'"; got != want {
		t.Errorf("psQuote: %s, want %s", got, want)
	}
	// The lines run in the shell they are for.
	for _, sh := range []struct {
		bin  string
		syn  shellSyntax
		echo string
	}{{"bash", posixShell, `printf '%s' "$K"`}, {"fish", fishShell, `printf '%s' "$K"`}, {"pwsh", powerShell, `[Console]::Write($env:K)`}} {
		path, err := exec.LookPath(sh.bin)
		if err != nil {
			continue // bash is everywhere; fish and pwsh where installed
		}
		v := `it's "a" $b \c`
		arg := "-c"
		if sh.bin == "pwsh" {
			arg = "-Command"
		}
		out, err := exec.Command(path, arg, sh.syn.set("K", v)+"\n"+sh.echo).Output()
		if err != nil || string(out) != v {
			t.Errorf("%s: %q (%v), want %q", sh.bin, out, err, v)
		}
	}
}

// demoCustomerTenants is KVASSERT_CUSTOMER_TENANTS of the demo scenario:
// its tenants but the home one, as domains, in the scenario's order.
func demoCustomerTenants() string {
	var names []string
	for _, tn := range scenario.Demo().Tenants {
		if tn.ID != scenario.DemoHomeTenant {
			names = append(names, tn.Name+".onmicrosoft.com")
		}
	}
	return strings.Join(names, " ")
}
