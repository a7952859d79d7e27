package proxy

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

func TestGuardSecret(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	info := `{"keyVaultUri":"https://` + scenario.DemoVault + `.vault.azure.net/","certificateName":"` + scenario.DemoCertificate + `"}`
	for _, tc := range []struct {
		name    string
		headers []string
		status  int
	}{
		{"no secret", nil, 401},
		{"wrong bearer", []string{"Authorization", "Bearer " + strings.Repeat("x", 43)}, 401},
		{"prefix of the secret", []string{"Authorization", "Bearer " + env.s.Secret()[:20]}, 401},
		{"basic scheme", []string{"Authorization", "Basic " + env.s.Secret()}, 401},
		{"identity header is not the API secret", []string{"X-IDENTITY-HEADER", env.s.Secret()}, 401},
		{"wrong X-Kvassert-Secret", []string{"X-Kvassert-Secret", "nope"}, 401},
		{"bearer", []string{"Authorization", "Bearer " + env.s.Secret()}, 200},
		{"bearer, lower case scheme", []string{"Authorization", "bearer " + env.s.Secret()}, 200},
		{"X-Kvassert-Secret", []string{"X-Kvassert-Secret", env.s.Secret()}, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := env.do("POST", "/api/token/kv-key-info", "application/json", strings.NewReader(info), tc.headers...)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.status == 401 {
				if resp.Header.Get("WWW-Authenticate") == "" {
					t.Error("no WWW-Authenticate")
				}
				problemOf(t, resp, 401)
			}
		})
	}
	// /openapi.json needs the secret too.
	problemOf(t, env.do("GET", "/openapi.json", "", nil), 401)
	if resp := env.do("GET", "/openapi.json", "", nil, "X-Kvassert-Secret", env.s.Secret()); resp.StatusCode != 200 {
		t.Errorf("openapi.json with the secret: %d", resp.StatusCode)
	}
}

func TestGuardHostAndOrigin(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(env.url, "http://"))
	info := `{"keyVaultUri":"https://` + scenario.DemoVault + `.vault.azure.net/","certificateName":"` + scenario.DemoCertificate + `"}`
	for _, tc := range []struct {
		name    string
		headers []string
		status  int
	}{
		{"127.0.0.1", []string{"Host", "127.0.0.1:" + port}, 200},
		{"localhost", []string{"Host", "localhost:" + port}, 200},
		{"LOCALHOST", []string{"Host", "LOCALHOST:" + port}, 200},
		{"[::1]", []string{"Host", "[::1]:" + port}, 200},
		{"rebinding name", []string{"Host", "attacker.example:" + port}, 421},
		{"localhost subdomain", []string{"Host", "localhost.attacker.example:" + port}, 421},
		{"LAN address", []string{"Host", "192.168.1.20:" + port}, 421},
		{"same origin", []string{"Origin", env.url, "Sec-Fetch-Site", "same-origin"}, 200},
		{"other origin", []string{"Origin", "https://attacker.example"}, 403},
		{"other port on localhost", []string{"Origin", "http://127.0.0.1:1"}, 403},
		{"null origin", []string{"Origin", "null"}, 403},
		{"cross-site fetch", []string{"Sec-Fetch-Site", "cross-site"}, 403},
		{"same-site fetch", []string{"Sec-Fetch-Site", "same-site"}, 403},
		{"typed address", []string{"Sec-Fetch-Site", "none"}, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := append([]string{"Authorization", "Bearer " + env.s.Secret()}, tc.headers...)
			resp := env.do("POST", "/api/token/kv-key-info", "application/json", strings.NewReader(info), h...)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if resp.Header.Get("Access-Control-Allow-Origin") != "" {
				t.Error("CORS header sent")
			}
			if tc.status != 200 {
				problemOf(t, resp, tc.status)
			}
		})
	}
	// Preflight requests fail: no CORS, ever.
	resp := env.do("OPTIONS", "/api/token/kv-key-info", "", nil, "Origin", "https://attacker.example", "Access-Control-Request-Method", "POST")
	if resp.StatusCode != 403 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
	// The managed identity routes are guarded the same way.
	problemOf(t, env.do("GET", "/msi/forward?api-version=2019-08-01&resource=x", "", nil, "X-IDENTITY-HEADER", env.s.Secret(), "Host", "attacker.example"), 421)
	problemOf(t, env.do("GET", "/msi/forward?api-version=2019-08-01&resource=x", "", nil, "X-IDENTITY-HEADER", env.s.Secret(), "Sec-Fetch-Site", "cross-site"), 403)
}

func TestGuardBody(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	huge := `{"keyVaultUri":"https://` + scenario.DemoVault + `.vault.azure.net/","certificateName":"` + strings.Repeat("a", maxBody) + `"}`
	problemOf(t, env.api("kv-key-info", huge), http.StatusRequestEntityTooLarge)
	problemOf(t, env.do("POST", "/api/token/kv-key-info", "text/plain", strings.NewReader(`{}`), "Authorization", "Bearer "+env.s.Secret()), http.StatusUnsupportedMediaType)
	problemOf(t, env.do("POST", "/api/token/kv-key-info", "application/x-www-form-urlencoded", strings.NewReader(`a=b`), "Authorization", "Bearer "+env.s.Secret()), http.StatusUnsupportedMediaType)
	if resp := env.do("POST", "/api/token/kv-key-info", "application/json; charset=utf-8", strings.NewReader(`{"keyVaultUri":"https://`+scenario.DemoVault+`.vault.azure.net/","certificateName":"`+scenario.DemoCertificate+`"}`), "Authorization", "Bearer "+env.s.Secret()); resp.StatusCode != 200 {
		t.Errorf("charset parameter: %d", resp.StatusCode)
	}
}

func TestRoutingProblems(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	problemOf(t, env.do("GET", "/nope", "", nil), 404)
	problemOf(t, env.do("GET", "/static/secret.txt", "", nil), 404)
	problemOf(t, env.do("GET", "/static/index.html", "", nil), 404)
	resp := env.do("GET", "/api/token/kv-certificate", "", nil, "Authorization", "Bearer "+env.s.Secret())
	if p := problemOf(t, resp, 405); p.Type != problemMethod || resp.Header.Get("Allow") != "POST" {
		t.Errorf("405: %+v Allow=%q", p, resp.Header.Get("Allow"))
	}
}

func TestPageServedWithoutSecret(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	for path, ct := range map[string]string{"/": "text/html", "/static/app.js": "text/javascript", "/static/app.css": "text/css"} {
		resp := env.do("GET", path, "", nil)
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), ct) {
			t.Errorf("%s: %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		csp := resp.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") {
			t.Errorf("%s: CSP %q", path, csp)
		}
		if resp.Header.Get("X-Frame-Options") != "DENY" || resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("%s: headers %v", path, resp.Header)
		}
	}
	// The page holds no data: not the secret, nor anything configured.
	for _, f := range []string{"static/index.html", "static/app.js", "static/app.css"} {
		data, _ := static.ReadFile(f)
		if strings.Contains(string(data), env.s.Secret()) || strings.Contains(string(data), scenario.DemoVault) {
			t.Errorf("%s holds data", f)
		}
	}
	// Cross-site framing or navigation is refused like everything else.
	problemOf(t, env.do("GET", "/", "", nil, "Sec-Fetch-Site", "cross-site"), 403)
}

func TestNewAndServe(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{"0.0.0.0:5616", ":5616", "192.168.1.2:80", "example.com:80", "nope"} {
		if _, err := New(&Options{Addr: addr}); err == nil {
			t.Errorf("New accepted address %q", addr)
		}
	}
	for _, addr := range []string{"127.0.0.1:0", "[::1]:5616", "localhost:5616"} {
		if _, err := New(&Options{Addr: addr}); err != nil {
			t.Errorf("New(%q): %v", addr, err)
		}
	}
	if _, err := New(&Options{Secret: "short"}); err == nil {
		t.Error("short secret accepted")
	}
	if _, err := New(&Options{Secret: strings.Repeat("a", 40) + "/"}); err == nil {
		t.Error("secret with '/' accepted")
	}
	if _, err := New(&Options{Files: map[string]string{"a/b": "x"}}); err == nil {
		t.Error("bad file name accepted")
	}
	if _, err := New(&Options{Files: map[string]string{"a": "/nonexistent/x.pem"}}); err == nil {
		t.Error("missing certificate file accepted")
	}
	if _, err := New(&Options{FileRoot: "/nonexistent/dir"}); err == nil {
		t.Error("missing file root accepted")
	}
	s1, _ := New(nil)
	s2, _ := New(&Options{})
	if s1.Secret() == s2.Secret() || len(s1.Secret()) != 43 || s1.cfg.Addr != "127.0.0.1:5616" {
		t.Errorf("secrets %q %q, addr %q", s1.Secret(), s2.Secret(), s1.cfg.Addr)
	}

	// Serve refuses a listener on every interface unless AllowRemote.
	ln, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Skip(err)
	}
	defer ln.Close()
	if err := s1.Serve(context.Background(), ln); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("Serve on 0.0.0.0: %v", err)
	}

	// With AllowRemote, an IP literal Host is served; a name never is.
	remote, err := New(&Options{Addr: "0.0.0.0:0", AllowRemote: true, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	for host, status := range map[string]int{"192.168.1.2:5616": 401, "[fe80::1]:5616": 401, "attacker.example:5616": 421} {
		req := httptest.NewRequest("GET", "/openapi.json", nil)
		req.Host = host
		req.TLS = &tls.ConnectionState{}
		rec := httptest.NewRecorder()
		remote.Handler().ServeHTTP(rec, req)
		if rec.Code != status {
			t.Errorf("AllowRemote, Host %s: %d, want %d", host, rec.Code, status)
		}
	}
	// Without TLS, even the page is refused: Handler served over plain HTTP
	// by someone else's server gives nothing away either.
	for _, path := range []string{"/", "/openapi.json"} {
		req := httptest.NewRequest("GET", path, nil)
		req.Host = "192.168.1.2:5616"
		req.Header.Set("Authorization", "Bearer "+remote.Secret())
		rec := httptest.NewRecorder()
		remote.Handler().ServeHTTP(rec, req)
		if rec.Code != http.StatusForbidden {
			t.Errorf("AllowRemote over plain HTTP, %s: %d, want 403", path, rec.Code)
		}
	}
}

func TestEnvironment(t *testing.T) {
	t.Parallel()
	s, err := New(&Options{Logger: discardLogger(), AllowForward: true})
	if err != nil {
		t.Fatal(err)
	}
	kv := Target{Tenant: scenario.DemoContosoTenant, ClientID: scenario.DemoAppClientID, Vault: scenario.DemoVault, Certificate: scenario.DemoCertificate}
	vars, err := s.AppServiceEnv("http://127.0.0.1:5616/", kv)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"IDENTITY_ENDPOINT=http://127.0.0.1:5616/msi/" + scenario.DemoContosoTenant + "/" + scenario.DemoAppClientID + "/kv/" + scenario.DemoVault + "/" + scenario.DemoCertificate,
		"IDENTITY_HEADER=" + s.identitySecret(appService, identityKey(targetKV, scenario.DemoContosoTenant, scenario.DemoAppClientID, scenario.DemoVault, scenario.DemoCertificate, "")),
	}
	if strings.Join(vars, "\n") != strings.Join(want, "\n") {
		t.Errorf("App Service env:\n%v\nwant\n%v", vars, want)
	}
	// The same identity spelled in another case has the same secret.
	upper := kv
	upper.Vault, upper.Certificate = strings.ToUpper(kv.Vault), strings.ToUpper(kv.Certificate)
	if v2, err := s.AppServiceEnv("http://127.0.0.1:5616/", upper); err != nil || envValue(v2, "IDENTITY_HEADER") != envValue(vars, "IDENTITY_HEADER") {
		t.Errorf("the secret depends on the case of the names: %v", err)
	}
	vars, err = s.CloudShellEnv("http://127.0.0.1:5616", Target{Forward: true})
	fwd := s.identitySecret(cloudShell, "forward")
	if err != nil || len(vars) != 1 || vars[0] != "MSI_ENDPOINT=http://127.0.0.1:5616/cloudshell/"+fwd+"/forward" || fwd == s.Secret() {
		t.Errorf("Cloud Shell env %v %v", vars, err)
	}
	for _, bad := range []Target{{}, {Tenant: "t", ClientID: "x", Vault: scenario.DemoVault, Certificate: "c"}, {Tenant: "t", ClientID: scenario.DemoAppClientID, File: "nope"}, {Tenant: "t", ClientID: scenario.DemoAppClientID, Vault: "a/b", Certificate: "c"}} {
		if _, err := s.AppServiceEnv("http://127.0.0.1:5616", bad); err == nil {
			t.Errorf("target %+v accepted", bad)
		}
	}
}

// By default the request lines are Debug: a program's logger at Info sees
// none; with LogRequests (kvassert proxy) they are Info.
func TestRequestLogLevel(t *testing.T) {
	t.Parallel()
	for _, logRequests := range []bool{false, true} {
		logs := &syncBuffer{}
		s, err := New(&Options{LogRequests: logRequests, Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))})
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest("GET", "/openapi.json", nil)
		req.Host = "127.0.0.1:5616"
		s.Handler().ServeHTTP(httptest.NewRecorder(), req)
		if got := strings.Contains(logs.String(), "msg=request"); got != logRequests {
			t.Errorf("LogRequests %v: request line at Info %v:\n%s", logRequests, got, logs)
		}
	}
}
