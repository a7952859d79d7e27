package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// proxyProc is "kvassert proxy" running as a child process.
type proxyProc struct {
	cmd     *exec.Cmd
	stdout  []string // lines printed before "Serving until"
	exports [][2]string
	secret  string
	mu      sync.Mutex
	stderr  bytes.Buffer
	done    chan error
}

func (p *proxyProc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.Write(b)
}

func (p *proxyProc) stderrText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// export returns the n-th value exported for name.
func (p *proxyProc) export(name string, n int) string {
	for _, kv := range p.exports {
		if kv[0] == name {
			if n == 0 {
				return kv[1]
			}
			n--
		}
	}
	return ""
}

func startProxy(t *testing.T, vars map[string]string, args ...string) *proxyProc {
	t.Helper()
	p := &proxyProc{done: make(chan error, 1)}
	p.cmd = exec.Command(kvassertBin, append([]string{"proxy"}, args...)...)
	p.cmd.Env = hermeticEnv(t, vars)
	p.cmd.Stderr = p
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	ready := make(chan struct{})
	go func() {
		serving := false
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			if serving {
				continue
			}
			p.stdout = append(p.stdout, line)
			if kv, ok := strings.CutPrefix(line, "export "); ok {
				k, v, _ := strings.Cut(kv, "=")
				p.exports = append(p.exports, [2]string{k, strings.Trim(v, "'")})
			}
			if s, ok := strings.CutPrefix(line, "API secret (new each run; token API, page, OpenAPI): "); ok {
				p.secret = s
			}
			if strings.HasPrefix(line, "Serving until") {
				serving = true
				close(ready)
			}
		}
		io.Copy(io.Discard, out)
		p.done <- p.cmd.Wait()
	}()
	select {
	case <-ready:
	case err := <-p.done:
		p.done <- err
		t.Fatalf("kvassert proxy exited before serving: %v\nstdout:\n%s\nstderr:\n%s", err, strings.Join(p.stdout, "\n"), p.stderrText())
	case <-time.After(30 * time.Second):
		t.Fatalf("kvassert proxy did not start in 30 s\nstderr:\n%s", p.stderrText())
	}
	return p
}

func proxyRequest(t *testing.T, method, url, contentType, body string, headers ...string) map[string]any {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("%s %s: %d %s", method, url, resp.StatusCode, data)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func tokenClaims(t *testing.T, m map[string]any) map[string]any {
	t.Helper()
	tok, _ := m["access_token"].(string)
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("no token in %v", m)
	}
	data, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestProxy(t *testing.T) {
	t.Parallel()
	env := newCLIEnv(t)
	cert, key := selfSigned(t, "kvassert proxy cli test")
	if err := env.e.RegisterCertificate(scenario.DemoAppClientID, cert); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "dev.crt"), filepath.Join(dir, "dev.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	secretFile := filepath.Join(dir, "secret")
	p := startProxy(t, env.vars, "--listen", "127.0.0.1:0", "--tenant", "contoso.onmicrosoft.com",
		"--secret-out", secretFile, "--file", "dev="+certFile+","+keyFile, "--allow-forward")

	// The API secret: printed, and in the secret file (0600); each identity
	// has a secret of its own.
	if len(p.secret) < 32 || p.export("KVASSERT_PROXY_SECRET", 0) != p.secret {
		t.Fatalf("secret %q; output:\n%s", p.secret, strings.Join(p.stdout, "\n"))
	}
	seen := map[string]bool{p.secret: true}
	for i := 0; i < 3; i++ {
		h := p.export("IDENTITY_HEADER", i)
		if len(h) < 32 || seen[h] {
			t.Fatalf("IDENTITY_HEADER %d is missing or shared; output:\n%s", i, strings.Join(p.stdout, "\n"))
		}
		seen[h] = true
	}
	data, err := os.ReadFile(secretFile)
	if err != nil || strings.TrimSpace(string(data)) != p.secret {
		t.Errorf("secret file: %q %v", data, err)
	}
	if st, err := os.Stat(secretFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("secret file mode: %v %v", st.Mode(), err)
	}
	out := strings.Join(p.stdout, "\n")
	base := strings.TrimSuffix(strings.SplitN(strings.SplitN(out, "web page: ", 2)[1], "/#secret=", 2)[0], "/")
	if !strings.HasPrefix(base, "http://127.0.0.1:") || !strings.Contains(out, base+"/#secret="+p.secret) {
		t.Fatalf("no web page URL:\n%s", out)
	}

	// The exported managed identity endpoints, in order: the Key Vault
	// certificate, the --file certificate, forward; then Cloud Shell.
	kv, file, forward := p.export("IDENTITY_ENDPOINT", 0), p.export("IDENTITY_ENDPOINT", 1), p.export("IDENTITY_ENDPOINT", 2)
	if kv != base+"/msi/contoso.onmicrosoft.com/"+scenario.DemoAppClientID+"/kv/"+scenario.DemoVault+"/"+scenario.DemoCertificate ||
		file != base+"/msi/contoso.onmicrosoft.com/"+scenario.DemoAppClientID+"/file/dev" || forward != base+"/msi/forward" {
		t.Fatalf("IDENTITY_ENDPOINT lines:\n%s", out)
	}
	for i, c := range []struct{ endpoint, tid, appid string }{
		{kv, scenario.DemoContosoTenant, scenario.DemoAppClientID},
		{file, scenario.DemoContosoTenant, scenario.DemoAppClientID},
		{forward, scenario.DemoHomeTenant, emuhook.DemoWorkloadClientID},
	} {
		m := proxyRequest(t, "GET", c.endpoint+"?api-version=2019-08-01&resource=https://vault.azure.net", "", "", "X-IDENTITY-HEADER", p.export("IDENTITY_HEADER", i))
		if cl := tokenClaims(t, m); cl["tid"] != c.tid || cl["appid"] != c.appid {
			t.Errorf("%s: tid %v appid %v", c.endpoint, cl["tid"], cl["appid"])
		}
	}
	m := proxyRequest(t, "POST", p.export("MSI_ENDPOINT", 0), "application/x-www-form-urlencoded", "resource=https://management.azure.com", "Metadata", "true")
	if cl := tokenClaims(t, m); cl["tid"] != scenario.DemoContosoTenant || m["expires_in"] == nil {
		t.Errorf("Cloud Shell: tid %v, response %v", cl["tid"], m["expires_in"])
	}

	// The token API, as the printed curl line does it.
	body := `{"clientId":"` + scenario.DemoAppClientID + `","tenantId":"fabrikam.onmicrosoft.com","scopes":["https://graph.microsoft.com/.default"],"certFile":"dev"}`
	m = proxyRequest(t, "POST", base+"/api/token/local-certificate", "application/json", body, "Authorization", "Bearer "+p.secret)
	if cl := tokenClaims(t, m); cl["tid"] != emuhook.DemoFabrikamTenant {
		t.Errorf("local-certificate: tid %v", cl["tid"])
	}
	if !strings.Contains(out, "curl -sS "+base+"/api/token/kv-certificate") {
		t.Errorf("no curl example:\n%s", out)
	}

	// SIGINT stops it; stderr has one line per request, no token, no secret.
	interruptProxy(t, p, 15*time.Second, true)
	logs := p.stderrText()
	if n := strings.Count(logs, "msg=request"); n != 5 || !strings.Contains(logs, "Stopping the proxy.") {
		t.Errorf("%d request lines:\n%s", n, logs)
	}
	if jwtPattern.MatchString(logs) || strings.Contains(logs, p.secret) || strings.Contains(logs, emuhook.DemoWorkloadSecret) {
		t.Errorf("stderr holds a token or secret:\n%s", logs)
	}
	for i := 0; i < 3; i++ {
		if strings.Contains(logs, p.export("IDENTITY_HEADER", i)) {
			t.Errorf("stderr holds an identity secret:\n%s", logs)
		}
	}
}

// stopProxy stops a proxy with SIGINT and waits for it.
func stopProxy(t *testing.T, p *proxyProc) {
	t.Helper()
	interruptProxy(t, p, 15*time.Second, false)
}

// interruptProxy sends a proxy SIGINT and waits up to within for it to
// stop; clean also wants it to exit without an error.
func interruptProxy(t *testing.T, p *proxyProc, within time.Duration, clean bool) {
	t.Helper()
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if clean && err != nil {
			t.Fatalf("kvassert proxy after SIGINT: %v\nstderr:\n%s", err, p.stderrText())
		}
	case <-time.After(within):
		t.Fatalf("kvassert proxy did not stop within %d s of SIGINT", int(within/time.Second))
	}
}

// Issue 18, defect 10: kvassert proxy serves /msi/forward only with
// --allow-forward, and an identity's secret opens no other route.
func TestProxyForwardOffAndSecretsSeparate(t *testing.T) {
	t.Parallel()
	env := newCLIEnv(t)
	p := startProxy(t, env.vars, "--listen", "127.0.0.1:0", "--tenant", "contoso.onmicrosoft.com")
	defer stopProxy(t, p)
	out := strings.Join(p.stdout, "\n")
	kv, hdr := p.export("IDENTITY_ENDPOINT", 0), p.export("IDENTITY_HEADER", 0)
	if p.export("IDENTITY_ENDPOINT", 1) != "" || strings.Contains(out, "/msi/forward\n") || !strings.Contains(out, "--allow-forward") {
		t.Fatalf("forward printed without --allow-forward:\n%s", out)
	}
	base, _, _ := strings.Cut(kv, "/msi/")
	status := func(method, url string, headers ...string) int {
		req, _ := http.NewRequest(method, url, nil)
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(body), "access_token") {
			t.Errorf("%s %s answered a token", method, url)
		}
		return resp.StatusCode
	}
	q := "?api-version=2019-08-01&resource=https://vault.azure.net"
	for _, secret := range []string{hdr, p.secret} {
		if st := status("GET", base+"/msi/forward"+q, "X-IDENTITY-HEADER", secret); st != 403 {
			t.Errorf("forward without --allow-forward: %d, want 403", st)
		}
	}
	if st := status("GET", base+"/api/config", "Authorization", "Bearer "+hdr); st != 401 {
		t.Errorf("the identity secret on /api/config: %d, want 401", st)
	}
	if st := status("GET", strings.Replace(kv, "contoso.onmicrosoft.com", "fabrikam.onmicrosoft.com", 1)+q, "X-IDENTITY-HEADER", hdr); st != 401 {
		t.Errorf("the identity secret on another tenant's route: %d, want 401", st)
	}
	if st := status("GET", kv+q, "X-IDENTITY-HEADER", p.secret); st != 401 {
		t.Errorf("the API secret on an identity route: %d, want 401", st)
	}
}

// Issue 18, defect 10: with --allow-remote the proxy serves TLS only, prints
// its certificate's SHA-256 fingerprint, and a client pinned to it works;
// plain HTTP gets nothing.
func TestProxyAllowRemoteTLS(t *testing.T) {
	t.Parallel()
	env := newCLIEnv(t)
	p := startProxy(t, env.vars, "--listen", "127.0.0.1:0", "--allow-remote")
	defer stopProxy(t, p)
	out := strings.Join(p.stdout, "\n")
	fp := ""
	for _, l := range p.stdout {
		if _, after, ok := strings.Cut(l, "SHA-256 fingerprint "); ok {
			fp = strings.TrimSpace(after)
		}
	}
	web := strings.SplitN(strings.SplitN(out, "web page: ", 2)[1], "/#secret=", 2)[0]
	if len(strings.ReplaceAll(fp, ":", "")) != 64 || !strings.HasPrefix(web, "https://127.0.0.1:") {
		t.Fatalf("no fingerprint or no https address:\n%s", out)
	}
	plain := "http://" + strings.TrimPrefix(web, "https://") + "/api/config"
	req, _ := http.NewRequest("GET", plain, nil)
	req.Header.Set("Authorization", "Bearer "+p.secret)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("plain HTTP answered 200 with --allow-remote")
		}
	}
	want := strings.ToLower(strings.ReplaceAll(fp, ":", ""))
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		InsecureSkipVerify: true, // the pin below replaces chain verification
		VerifyConnection: func(cs tls.ConnectionState) error {
			sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
			if hex.EncodeToString(sum[:]) != want {
				return errors.New("certificate does not match the printed fingerprint")
			}
			return nil
		},
	}}}
	req, _ = http.NewRequest("GET", web+"/api/config", nil)
	req.Header.Set("Authorization", "Bearer "+p.secret)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("pinned client: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("pinned client: status %d", resp.StatusCode)
	}
}

func TestProxyErrors(t *testing.T) {
	t.Parallel()
	vars := map[string]string{}
	wantError(t, runBin(t, vars, "", []string{"proxy", "--listen", "0.0.0.0:5616"}), exitUsage, "not a loopback address", "--allow-remote")
	wantError(t, runBin(t, vars, "", []string{"proxy", "--listen", "nope"}), exitUsage, "is not host:port", "127.0.0.1")
	wantError(t, runBin(t, vars, "", []string{"proxy", "--listen", "127.0.0.1:0", "--file", "dev"}), exitUsage, "is not NAME=CERT.pem", "--file dev=")
	wantError(t, runBin(t, vars, "", []string{"proxy", "--listen", "127.0.0.1:0", "--client-id", "app"}), exitUsage, "is not a GUID", "")
	wantError(t, runBin(t, vars, "", []string{"proxy", "--listen", "127.0.0.1:0", "--vault", "https://evil.example.com/", "--cert", "c"}), exitUsage, "--vault", "")
	// Vault names as keyvault checks them (a--b and a leading digit were once let through).
	for _, name := range []string{"a--b", "1vault", "ab"} {
		wantError(t, runBin(t, vars, "", []string{"proxy", "--listen", "127.0.0.1:0", "--vault", name, "--cert", "c"}), exitUsage, `--vault: "`+name+`" is not a valid vault name`, "3-24 letters")
	}
	wantError(t, runBin(t, vars, "", []string{"proxy", "--listen", "127.0.0.1:5616"}, "IDENTITY_ENDPOINT=http://localhost:5616/msi/forward", "IDENTITY_HEADER=0123456789abcdef"),
		exitUsage, "IDENTITY_ENDPOINT points at this proxy", "unset IDENTITY_ENDPOINT")
	wantError(t, runBin(t, vars, "", []string{"proxy", "--listen", "127.0.0.1:0", "--file", "dev=/nonexistent/cert.pem"}), exitUsage, "starting the proxy", "")
}
