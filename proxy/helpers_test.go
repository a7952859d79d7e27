package proxy

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/kvassert/kvassert/internal/testcert"
	"github.com/kvassert/kvassert/internal/testfixture"
	"github.com/kvassert/kvassert/internal/testlog"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// syncBuffer is a log sink safe for background goroutines.
type syncBuffer = testlog.Buffer

// testEnv is a proxy in front of an emulator, serving on a loopback port.
type testEnv struct {
	t    *testing.T
	e    *kvasserttest.Emulator
	s    *Server
	url  string
	logs *syncBuffer

	mu     sync.Mutex
	tokens []string // every token seen, to check the logs for
}

// envOption adjusts the proxy's configuration; it may use the emulator.
type envOption func(*Options, *kvasserttest.Emulator)

// addFile configures lc at start as the certificate file name
// (Options.Files, Options.KeyFiles).
func addFile(c *Options, name string, lc *localCert) {
	if c.Files == nil {
		c.Files, c.KeyFiles = map[string]string{}, map[string]string{}
	}
	c.Files[name], c.KeyFiles[name] = lc.certFile, lc.keyFile
}

// localCert is a self-signed certificate registered on the demo app.
type localCert struct {
	cert              *x509.Certificate
	certFile, keyFile string // separate PEM files
	dir               string
}

// newEnv starts an emulator of the demo scenario and a proxy reaching it:
// Key Vault through the workload app's client secret, forward through the
// same credential (its tokens say appid = workload, tid = home).
func newEnv(t *testing.T, opts ...envOption) *testEnv {
	t.Helper()
	w := testfixture.NewWorld(t, nil)
	e, vaultCred := w.Emu, w.VaultCred
	logs := &syncBuffer{}
	cfg := &Options{
		Addr:               "127.0.0.1:0",
		KeyVaultCredential: vaultCred,
		ForwardCredential:  vaultCred,
		ClientOptions:      e.ClientOptions(),
		Logger:             slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, o := range opts {
		o(cfg, e)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	env := &testEnv{t: t, e: e, s: s, logs: logs}
	env.url = "http://" + serve(t, s, env.checkLogs)
	return env
}

// serve runs s on a loopback port until the test ends (then runs after,
// when set) and returns its address.
func serve(t *testing.T, s *Server, after func()) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		if after != nil {
			after()
		}
	})
	return ln.Addr().String()
}

// checkLogs asserts that no token and no secret reached the log.
func (env *testEnv) checkLogs() {
	t := env.t
	logs := env.logs.String()
	if strings.Contains(logs, env.s.Secret()) {
		t.Errorf("the secret appears in the log:\n%s", logs)
	}
	env.mu.Lock()
	defer env.mu.Unlock()
	for _, tok := range env.tokens {
		// Any 16-character piece of a token's signature would be a leak.
		sig := tok[strings.LastIndexByte(tok, '.')+1:]
		if strings.Contains(logs, tok) || (len(sig) >= 16 && strings.Contains(logs, sig[:16])) {
			t.Errorf("a token appears in the log")
		}
	}
	if strings.Contains(logs, "eyJ") {
		t.Errorf("something JWT-like appears in the log:\n%s", logs)
	}
}

func (env *testEnv) sawToken(tok string) {
	env.mu.Lock()
	env.tokens = append(env.tokens, tok)
	env.mu.Unlock()
}

// do sends a request to the proxy; headers alternate name, value.
func (env *testEnv) do(method, path, contentType string, body io.Reader, headers ...string) *http.Response {
	env.t.Helper()
	req, err := http.NewRequest(method, env.url+path, body)
	if err != nil {
		env.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if strings.EqualFold(headers[i], "Host") {
			req.Host = headers[i+1]
			continue
		}
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		env.t.Fatal(err)
	}
	env.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// api posts a JSON body to a token API route with the secret.
func (env *testEnv) api(route string, body any, headers ...string) *http.Response {
	env.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case string:
		r = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			env.t.Fatal(err)
		}
		r = bytes.NewReader(data)
	}
	h := append([]string{"Authorization", "Bearer " + env.s.Secret()}, headers...)
	return env.do("POST", "/api/token/"+route, "application/json", r, h...)
}

// decode reads a JSON answer with the expected status.
func decode[T any](t *testing.T, resp *http.Response, status int) T {
	t.Helper()
	var v T
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d: %s", resp.StatusCode, status, data)
	}
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("decoding %s: %v", data, err)
	}
	return v
}

// problemOf reads a problem answer with the expected status.
func problemOf(t *testing.T, resp *http.Response, status int) problem {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type %q, want application/problem+json", ct)
	}
	return decode[problem](t, resp, status)
}

// hasField reports whether a problem names a field.
func hasField(p problem, field string) bool {
	for _, e := range p.Errors {
		if e.Field == field {
			return true
		}
	}
	return false
}

// claims decodes a JWT's payload (no verification: the emulator signed it).
func claims(t *testing.T, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %d parts", len(parts))
	}
	data, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func checkClaims(t *testing.T, tok azcore.AccessToken, tid, appid string) {
	t.Helper()
	c := claims(t, tok.Token)
	if c["tid"] != tid || c["appid"] != appid {
		t.Errorf("token tid=%v appid=%v, want tid=%s appid=%s", c["tid"], c["appid"], tid, appid)
	}
	if time.Until(tok.ExpiresOn) < 10*time.Minute {
		t.Errorf("token expires on %v", tok.ExpiresOn)
	}
}

// newLocalCert writes a fresh self-signed certificate and key as PEM files
// in a new directory and registers the certificate on the demo app.
func newLocalCert(t *testing.T, e *kvasserttest.Emulator) *localCert {
	t.Helper()
	c := testcert.New(t, &testcert.Options{Serial: time.Now().UnixNano(), CommonName: "kvassert proxy test"})
	cert := c.Cert
	dir := t.TempDir()
	lc := &localCert{cert: cert, dir: dir}
	lc.certFile, lc.keyFile = c.WriteFiles(t, dir)
	if err := e.RegisterCertificate(scenario.DemoAppClientID, cert); err != nil {
		t.Fatal(err)
	}
	return lc
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
