package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// debugLines are the --debug lines of stderr.
func debugLines(stderr string) []string {
	var out []string
	for _, l := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(l, debugPrefix) {
			out = append(out, l)
		}
	}
	return out
}

// checkDebugSafe asserts what no --debug output may hold, on stderr and
// stdout: a JWT (stderr; stdout only where the command prints one by
// design), a private key, the emulator identity's secret, a query string,
// a header or body that carries a credential.
func checkDebugSafe(t *testing.T, r result, stdoutMayHoldJWT bool) {
	t.Helper()
	what := "kvassert " + strings.Join(r.args, " ")
	for name, text := range map[string]string{"stderr": r.stderr, "stdout": r.stdout} {
		if strings.Contains(text, "PRIVATE KEY") {
			t.Errorf("%s: %s holds a private key", what, name)
		}
		if strings.Contains(text, emuhook.DemoWorkloadSecret) {
			t.Errorf("%s: %s holds the emulator identity's secret", what, name)
		}
		if name == "stderr" || !stdoutMayHoldJWT {
			if jwtPattern.MatchString(text) {
				t.Errorf("%s: %s holds a JWT", what, name)
			}
		}
	}
	for _, l := range debugLines(r.stderr) {
		low := strings.ToLower(l)
		for _, bad := range []string{"?", "api-version", "authorization", "cookie", "client_assertion", "client_secret", "access_token", "bearer"} {
			if strings.Contains(low, bad) {
				t.Errorf("%s: --debug line holds %q: %s", what, bad, l)
			}
		}
	}
}

// requestLine matches a --debug request line.
var requestLine = regexp.MustCompile(`^debug: HTTP request  (GET|POST|PUT|PATCH|DELETE) https://[a-z0-9.-]+(:[0-9]+)?/\S*( [a-z-]+=\S+)*$`)

// responseLine matches a --debug response line.
var responseLine = regexp.MustCompile(`^debug: HTTP response (GET|POST|PUT|PATCH|DELETE) https://[a-z0-9.-]+(:[0-9]+)?/\S*: ([0-9]{3} after [0-9.]+m?s|no response \([A-Za-z ]+\) after [0-9.]+m?s)( [a-z-]+=\S+)*$`)

// TestDebugTrace: --debug shows one line per request and per response of
// the token endpoint (the app's own credential), the vault, and the vault
// credential, with the correlation headers and which credential reached
// the vault; nothing secret.
func TestDebugTrace(t *testing.T) {
	t.Parallel()
	env := newCLIEnv(t)
	r := env.run([]string{"token", "--debug", "--tenant", "contoso.onmicrosoft.com"})
	wantOK(t, r)
	checkDebugSafe(t, r, true)
	lines := debugLines(r.stderr)
	var reqs, resps int
	seen := map[string]bool{}
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, debugPrefix+"HTTP request "):
			reqs++
			if !requestLine.MatchString(l) {
				t.Errorf("request line %q", l)
			}
		case strings.HasPrefix(l, debugPrefix+"HTTP response "):
			resps++
			if !responseLine.MatchString(l) {
				t.Errorf("response line %q", l)
			}
		}
		for _, want := range []string{
			"POST https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token",         // the app's token
			"POST https://login.microsoftonline.com/" + scenario.DemoHomeTenant + "/oauth2/v2.0/token", // the vault credential
			".vault.azure.net/keys/",              // keys/sign
			"x-ms-client-request-id=",             // azcore's request ID
			"client-request-id=",                  // MSAL's
			"azidentity: ClientSecretCredential.", // the credential that reached the vault
		} {
			if strings.Contains(l, want) {
				seen[want] = true
			}
		}
	}
	if reqs == 0 || reqs != resps {
		t.Errorf("%d request lines, %d response lines:\n%s", reqs, resps, r.stderr)
	}
	for _, want := range []string{
		"POST https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token",
		"POST https://login.microsoftonline.com/" + scenario.DemoHomeTenant + "/oauth2/v2.0/token",
		".vault.azure.net/keys/", "x-ms-client-request-id=", "client-request-id=", "azidentity: ClientSecretCredential.",
	} {
		if !seen[want] {
			t.Errorf("no --debug line with %q:\n%s", want, r.stderr)
		}
	}

	// A vault error answer carries the service's request ID.
	r = env.run([]string{"cert", "show", "--debug", "--cert", "nope"})
	wantExit(t, r, exitFailure)
	checkDebugSafe(t, r, false)
	if !regexp.MustCompile(`(?m)^debug: HTTP response GET https://\S+/certificates/nope/: 404 after \S+ .*x-ms-request-id=\S+`).MatchString(r.stderr) {
		t.Errorf("no 404 line with x-ms-request-id:\n%s", r.stderr)
	}

	// Without --debug (and with --verbose) no HTTP line.
	r = env.run([]string{"token", "--verbose", "--tenant", "contoso.onmicrosoft.com"})
	wantOK(t, r)
	if l := debugLines(r.stderr); len(l) > 0 {
		t.Errorf("--verbose prints --debug lines: %q", l)
	}
}

// TestDebugEveryCommandLeaksNothing runs every command that reaches the
// emulator with --debug and checks stderr and stdout for tokens,
// assertions, secrets and private keys.
func TestDebugEveryCommandLeaksNothing(t *testing.T) {
	t.Parallel()
	env := newRollEnv(t)
	env.renewDemoCertificate() // so that cert roll registers a version through Graph
	ten := []string{"--tenant", "contoso.onmicrosoft.com"}
	tok := env.run(append([]string{"token", "--debug"}, ten...))
	wantOK(t, tok)
	checkDebugSafe(t, tok, true)
	as := env.run(append([]string{"assertion", "--debug"}, ten...))
	wantOK(t, as)
	checkDebugSafe(t, as, true)
	home := []string{"--tenant", scenario.DemoHomeTenant}
	cases := []struct {
		args  []string
		stdin string
		want  string // a --debug line must hold it
	}{
		{args: []string{"decode", "--debug", "--vault", env.vaultURL(), "--cert", scenario.DemoCertificate, "-o", "json"}, stdin: as.stdout},
		{args: []string{"cert", "create", "--debug", "--cert", "debugged"}},
		{args: []string{"cert", "show", "--debug", "-o", "json"}},
		{args: []string{"cert", "export", "--debug"}},
		{args: []string{"cert", "export", "--debug", "--format", "keycredential"}},
		{args: []string{"cert", "audit", "--debug", "-o", "json"}},
		{args: append([]string{"cert", "status", "--debug", "-o", "json"}, home...)},
		{args: append([]string{"cert", "roll", "--debug", "--dry-run"}, home...)},
		{args: append([]string{"cert", "roll", "--debug"}, home...), want: "https://graph.microsoft.com/v1.0/applications/"},
		{args: []string{"tenants", "check", "--debug", "-o", "json", "--customer-tenant", "contoso.onmicrosoft.com,wingtip.onmicrosoft.com"},
			want: "https://login.microsoftonline.com/wingtip.onmicrosoft.com/oauth2/v2.0/token"},
		{args: append([]string{"cert", "audit", "--debug", "--app", "-o", "json", "--customer-tenant", "wingtip.onmicrosoft.com"}, home...),
			want: "https://graph.microsoft.com/"},
	}
	for _, c := range cases {
		r := env.runIn(c.stdin, c.args)
		if r.code != 0 && r.code != exitFailure {
			t.Errorf("kvassert %v: exit %d\n%s", c.args, r.code, r.stderr)
		}
		checkDebugSafe(t, r, false)
		if len(debugLines(r.stderr)) == 0 && c.args[0] != "decode" {
			t.Errorf("kvassert %v: no --debug line:\n%s", c.args, r.stderr)
		}
		if c.want != "" && !strings.Contains(strings.Join(debugLines(r.stderr), "\n"), c.want) {
			t.Errorf("kvassert %v: no --debug line with %q:\n%s", c.args, c.want, r.stderr)
		}
		if strings.Contains(r.stdout, strings.TrimSpace(tok.stdout)) {
			t.Errorf("kvassert %v: stdout holds the token", c.args)
		}
	}
}

// wantExit asserts the exit code only.
func wantExit(t *testing.T, r result, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("kvassert %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(r.args, " "), r.code, code, r.stdout, r.stderr)
	}
}

// TestDebugProxy: the proxy's upstream calls (vault, token endpoints,
// DefaultAzureCredential's forward) are traced with --debug; its stderr
// holds no token, no API secret, no identity header.
func TestDebugProxy(t *testing.T) {
	t.Parallel()
	env := newCLIEnv(t)
	p := startProxy(t, env.vars, "--debug", "--listen", "127.0.0.1:0", "--tenant", "contoso.onmicrosoft.com", "--allow-forward")
	kv := p.export("IDENTITY_ENDPOINT", 0)
	proxyRequest(t, "GET", kv+"?api-version=2019-08-01&resource=https://vault.azure.net", "", "", "X-IDENTITY-HEADER", p.export("IDENTITY_HEADER", 0))
	fwd := p.export("IDENTITY_ENDPOINT", 1)
	proxyRequest(t, "GET", fwd+"?api-version=2019-08-01&resource=https://vault.azure.net", "", "", "X-IDENTITY-HEADER", p.export("IDENTITY_HEADER", 1))
	interruptProxy(t, p, 15*time.Second, true)
	logs := p.stderrText()
	checkDebugSafe(t, result{stderr: logs, args: []string{"proxy", "--debug"}}, false)
	for _, want := range []string{
		"debug: HTTP request  POST https://kvassert-demo.vault.azure.net/keys/",
		"debug: HTTP request  POST https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token",
		"debug: azidentity: ClientSecretCredential.",
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("no %q:\n%s", want, logs)
		}
	}
	secrets := []string{p.secret, p.export("IDENTITY_HEADER", 0), p.export("IDENTITY_HEADER", 1)}
	for _, s := range secrets {
		if s == "" || strings.Contains(logs, s) {
			t.Errorf("stderr holds a proxy secret (or none was printed: %q):\n%s", s, logs)
		}
	}
}

// TestDebugHidesTheCloudShellEndpointSecret: an MSI_ENDPOINT in the Cloud
// Shell form that kvassert proxy prints holds its identity's secret in the
// path. With it exported, DefaultAzureCredential reaches the vault through
// that endpoint, and the --debug line of that request must not print the
// secret (a debug trace is what users paste into issues).
func TestDebugHidesTheCloudShellEndpointSecret(t *testing.T) {
	t.Parallel()
	env := newCLIEnv(t)
	const secret = "yASl4OipzaWRAI0pju-nrr3NCc4swjzMDOpvTWNQvUg"
	msi := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":"not-a-vault-token","expires_on":"%d","resource":"https://vault.azure.net","token_type":"Bearer"}`, time.Now().Add(time.Hour).Unix())
	}))
	defer msi.Close()
	// The vault's real name reaches the emulator through an HTTPS proxy
	// (no KVASSERT_EMULATOR: DefaultAzureCredential is the vault
	// credential).
	proxyURL := connectProxy(t, strings.TrimPrefix(env.e.URL(), "https://"))
	vars := map[string]string{
		"SSL_CERT_FILE":      env.caFile,
		"HTTPS_PROXY":        proxyURL,
		"MSI_ENDPOINT":       msi.URL + "/cloudshell/" + secret + "/" + scenario.DemoHomeTenant + "/" + scenario.DemoAppClientID + "/kv/" + scenario.DemoVault + "/" + scenario.DemoCertificate,
		"KVASSERT_CLIENT_ID": scenario.DemoAppClientID,
		"KVASSERT_VAULT":     env.vaultURL(),
		"KVASSERT_CERT":      scenario.DemoCertificate,
	}
	r := runBin(t, vars, "", []string{"token", "--debug", "--tenant", "contoso.onmicrosoft.com"})
	if !strings.Contains(r.stderr, "debug: HTTP request  POST "+msi.URL+"/cloudshell/") {
		t.Fatalf("no --debug line of the Cloud Shell endpoint (exit %d):\n%s", r.code, r.stderr)
	}
	if strings.Contains(r.stderr, secret) {
		t.Errorf("stderr holds the Cloud Shell endpoint's secret:\n%s", r.stderr)
	}
}

// connectProxy is an HTTP CONNECT proxy that sends every tunnel to target;
// it returns the proxy's URL.
func connectProxy(t *testing.T, target string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				req, err := http.ReadRequest(br)
				if err != nil || req.Method != http.MethodConnect {
					return
				}
				u, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer u.Close()
				if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\n\r\n"); err != nil {
					return
				}
				go func() { _, _ = io.Copy(u, br); u.Close() }()
				_, _ = io.Copy(c, u)
			}()
		}
	}()
	return "http://" + l.Addr().String()
}
