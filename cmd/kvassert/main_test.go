package main

// The tests run the real kvassert binary, built once in TestMain, against
// emulators started in the test process (or against "kvassert emulate" run
// as a child process), with a hermetic environment: only the variables a
// test sets, so nothing can reach real Azure.

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azcertificates"

	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/internal/jwtassert"
	"github.com/kvassert/kvassert/internal/testfixture"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// kvassertBin is the binary under test, built once by TestMain.
var kvassertBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "kvassert-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	kvassertBin = filepath.Join(dir, "kvassert")
	args := []string{"build", "-o", kvassertBin}
	// The test process is race-checked under go test -race; the binary is
	// too with KVASSERT_TEST_RACE_BINARY=1 (about 4x slower: every run of
	// the binary pays the race runtime).
	if os.Getenv("KVASSERT_TEST_RACE_BINARY") == "1" {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, ".")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building kvassert:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// jwtPattern finds a compact JWT (a token or an assertion) in output.
var jwtPattern = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}`)

// cliEnv is an emulator and the environment that points the binary at it.
type cliEnv struct {
	t      *testing.T
	e      *kvasserttest.Emulator
	caFile string
	vars   map[string]string
}

// newCLIEnv starts the demo scenario's emulators and sets the variables a
// user would after "kvassert emulate": the emulator, its CA, the emulator's
// workload identity (KVASSERT_EMULATOR_*; AZURE_TENANT_ID and
// AZURE_CLIENT_ID stay as flag defaults), and the app and its certificate.
func newCLIEnv(t *testing.T) *cliEnv {
	t.Helper()
	e := testfixture.NewWorld(t, nil).Emu
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, e.CAPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	return &cliEnv{t: t, e: e, caFile: ca, vars: map[string]string{
		"KVASSERT_EMULATOR":  e.URL(),
		"KVASSERT_CA_FILE":   ca,
		"AZURE_TENANT_ID":    scenario.DemoHomeTenant,
		"AZURE_CLIENT_ID":    emuhook.DemoWorkloadClientID,
		"KVASSERT_CLIENT_ID": scenario.DemoAppClientID,
		"KVASSERT_VAULT":     e.VaultURL(scenario.DemoVault),
		"KVASSERT_CERT":      scenario.DemoCertificate,
		// The emulator's own identity, which reaches its vaults.
		"KVASSERT_EMULATOR_TENANT_ID":     scenario.DemoHomeTenant,
		"KVASSERT_EMULATOR_CLIENT_ID":     emuhook.DemoWorkloadClientID,
		"KVASSERT_EMULATOR_CLIENT_SECRET": emuhook.DemoWorkloadSecret,
	}}
}

// vaultURL is the demo vault's real-Azure-style URL.
func (c *cliEnv) vaultURL() string { return c.e.VaultURL(scenario.DemoVault) }

type result struct {
	code           int
	stdout, stderr string
	args           []string
}

// run runs kvassert with args and the environment's variables, overridden
// by extra ("NAME=value"; "NAME=" unsets).
func (c *cliEnv) run(args []string, extra ...string) result {
	c.t.Helper()
	return runBin(c.t, c.vars, "", args, extra...)
}

// runIn is run with stdin.
func (c *cliEnv) runIn(stdin string, args []string, extra ...string) result {
	c.t.Helper()
	return runBin(c.t, c.vars, stdin, args, extra...)
}

func runBin(t *testing.T, vars map[string]string, stdin string, args []string, extra ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, kvassertBin, args...)
	cmd.Env = hermeticEnv(t, vars, extra...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String(), args: args}
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("kvassert %s: %v", strings.Join(args, " "), err)
		}
		r.code = ee.ExitCode()
	}
	checkStderr(t, r, vars, extra)
	return r
}

// hermeticEnv is the child's whole environment: nothing of the test
// process's own (no AZURE_* of the developer, no PATH to an az CLI).
func hermeticEnv(t *testing.T, vars map[string]string, extra ...string) []string {
	home := t.TempDir()
	m := map[string]string{"HOME": home, "TMPDIR": os.TempDir(), "PATH": "/nonexistent", "NO_COLOR": "1"}
	for k, v := range vars {
		m[k] = v
	}
	for _, kv := range extra {
		k, v, _ := strings.Cut(kv, "=")
		if v == "" {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	env := make([]string, 0, len(m))
	for k, v := range m {
		env = append(env, k+"="+v)
	}
	return env
}

// checkStderr asserts what every run must respect: no token, assertion or
// secret on stderr, no panic, no data race.
func checkStderr(t *testing.T, r result, vars map[string]string, extra []string) {
	t.Helper()
	what := "kvassert " + strings.Join(r.args, " ")
	if jwtPattern.MatchString(r.stderr) {
		t.Errorf("%s: stderr holds a JWT:\n%s", what, r.stderr)
	}
	secrets := []string{emuhook.DemoWorkloadSecret, vars["IDENTITY_HEADER"]}
	for _, kv := range extra {
		if k, v, _ := strings.Cut(kv, "="); (k == "IDENTITY_HEADER" || strings.Contains(k, "PASSWORD") || strings.Contains(k, "SECRET")) && len(v) >= 8 {
			secrets = append(secrets, v)
		}
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(r.stderr, s) {
			t.Errorf("%s: stderr holds the secret %q:\n%s", what, s, r.stderr)
		}
	}
	for _, bad := range []string{"panic:", "goroutine ", "DATA RACE"} {
		if strings.Contains(r.stderr, bad) {
			t.Errorf("%s: stderr has %q:\n%s", what, bad, r.stderr)
		}
	}
}

// wantOK asserts success.
func wantOK(t *testing.T, r result) {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("kvassert %s: exit %d, want 0\nstdout:\n%s\nstderr:\n%s", strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
	}
}

// wantError asserts a failure with exit code code whose stderr is exactly
// one "error: " line containing msg and, when hint is not "", a "hint: "
// line containing hint. Lines before the error are allowed only with
// progress (cert create shows its progress first).
// usageCase is a command line (args, with extra variables) that must fail
// with a usage error naming msg (and hint, when set).
type usageCase struct {
	args      []string
	extra     []string
	msg, hint string
}

// wantUsageErrors runs each case in env and wants its usage error.
func wantUsageErrors(t *testing.T, env *cliEnv, cases []usageCase) {
	t.Helper()
	for _, c := range cases {
		wantError(t, env.run(c.args, c.extra...), exitUsage, c.msg, c.hint)
	}
}

func wantError(t *testing.T, r result, code int, msg, hint string, progress ...bool) {
	t.Helper()
	what := "kvassert " + strings.Join(r.args, " ")
	if r.code != code {
		t.Fatalf("%s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", what, r.code, code, r.stdout, r.stderr)
	}
	lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
	errAt := -1
	for i, l := range lines {
		if strings.HasPrefix(l, "error: ") {
			if errAt >= 0 {
				t.Fatalf("%s: more than one error line:\n%s", what, r.stderr)
			}
			errAt = i
		}
	}
	switch {
	case errAt < 0:
		t.Fatalf("%s: no 'error: ' line on stderr:\n%s", what, r.stderr)
	case errAt > 0 && len(progress) == 0:
		t.Fatalf("%s: stderr has lines before the error:\n%s", what, r.stderr)
	}
	rest := lines[errAt+1:]
	if len(rest) > 1 || len(rest) == 1 && !strings.HasPrefix(rest[0], "hint: ") {
		t.Fatalf("%s: stderr is not one error line and an optional hint:\n%s", what, r.stderr)
	}
	if !strings.Contains(lines[errAt], msg) {
		t.Errorf("%s: error line %q does not contain %q", what, lines[errAt], msg)
	}
	if hint != "" && (len(rest) == 0 || !strings.Contains(rest[0], hint)) {
		t.Errorf("%s: hint line missing or without %q:\n%s", what, hint, r.stderr)
	}
}

// demoThumbprints is the demo vault certificate and its x5t and x5t#S256.
func demoThumbprints(t *testing.T, env *cliEnv) (*x509.Certificate, string, string) {
	t.Helper()
	cert, err := env.e.Certificate(scenario.DemoVault, scenario.DemoCertificate)
	if err != nil {
		t.Fatal(err)
	}
	x5t, x5tS256 := jwtassert.Thumbprints(cert)
	return cert, x5t, x5tS256
}

// certClient is an azcertificates client for the demo vault as the
// workload identity (certificates/*).
func (c *cliEnv) certClient() *azcertificates.Client {
	c.t.Helper()
	return testfixture.Certificates(c.t, c.e, scenario.DemoVault)
}

// createExportable creates a certificate whose key is exportable (the
// mistake "cert audit" must catch) and waits for it.
func (c *cliEnv) createExportable(name string) {
	c.t.Helper()
	cl := c.certClient()
	ctx := context.Background()
	_, err := cl.CreateCertificate(ctx, name, azcertificates.CreateCertificateParameters{CertificatePolicy: &azcertificates.CertificatePolicy{
		IssuerParameters:          &azcertificates.IssuerParameters{Name: to.Ptr("Self")},
		KeyProperties:             &azcertificates.KeyProperties{Exportable: to.Ptr(true), KeyType: to.Ptr(azcertificates.KeyTypeRSA), KeySize: to.Ptr(int32(2048))},
		SecretProperties:          &azcertificates.SecretProperties{ContentType: to.Ptr("application/x-pkcs12")},
		X509CertificateProperties: &azcertificates.X509CertificateProperties{Subject: to.Ptr("CN=" + name), ValidityInMonths: to.Ptr(int32(12))},
	}}, nil)
	if err != nil {
		c.t.Fatalf("creating %s: %v", name, err)
	}
	for i := 0; i < 50; i++ {
		op, err := cl.GetCertificateOperation(ctx, name, nil)
		if err != nil {
			c.t.Fatal(err)
		}
		if op.Status != nil && *op.Status == "completed" {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.t.Fatalf("certificate %s did not complete", name)
}
