package proxy

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

const graph = "https://graph.microsoft.com/.default"

func kvCertBody(tenant string) map[string]any {
	return map[string]any{
		"clientId": scenario.DemoAppClientID, "tenantId": tenant, "scopes": []string{graph},
		"keyVaultUri": "https://" + scenario.DemoVault + ".vault.azure.net/", "certificateName": scenario.DemoCertificate,
	}
}

func (env *testEnv) token(resp *http.Response) tokenResponse {
	env.t.Helper()
	tr := decode[tokenResponse](env.t, resp, http.StatusOK)
	env.sawToken(tr.AccessToken)
	if tr.TokenType != "Bearer" || tr.ExpiresIn < 600 || time.Unix(tr.ExpiresOn, 0).Before(time.Now()) {
		env.t.Errorf("token response %+v", tr)
	}
	return tr
}

func checkTokenClaims(t *testing.T, tr tokenResponse, tid, appid string) {
	t.Helper()
	c := claims(t, tr.AccessToken)
	if c["tid"] != tid || c["appid"] != appid {
		t.Errorf("token tid=%v appid=%v, want tid=%s appid=%s", c["tid"], c["appid"], tid, appid)
	}
	if tr.TenantID != tid {
		t.Errorf("tenant_id %q", tr.TenantID)
	}
}

func TestAPIKVCertificate(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	for _, tenant := range []string{scenario.DemoContosoTenant, emuhook.DemoFabrikamTenant} {
		tr := env.token(env.api("kv-certificate", kvCertBody(tenant)))
		checkTokenClaims(t, tr, tenant, scenario.DemoAppClientID)
		if len(tr.Scopes) != 1 || tr.Scopes[0] != graph {
			t.Errorf("scopes %v", tr.Scopes)
		}
	}
	tokens, reads := env.e.Count(kvasserttest.OpToken), env.e.Count(kvasserttest.OpCertificateGet)
	// Cached: the same token, no new token request or certificate read; the
	// X-Kvassert-Secret header works as well as Authorization.
	again := env.token(env.do("POST", "/api/token/kv-certificate", "application/json",
		strings.NewReader(`{"clientId":"`+scenario.DemoAppClientID+`","tenantId":"`+scenario.DemoContosoTenant+`","scopes":["`+graph+`"],"keyVaultUri":"https://`+scenario.DemoVault+`.vault.azure.net","certificateName":"`+scenario.DemoCertificate+`"}`),
		"X-Kvassert-Secret", env.s.Secret()))
	checkTokenClaims(t, again, scenario.DemoContosoTenant, scenario.DemoAppClientID)
	if env.e.Count(kvasserttest.OpToken) != tokens || env.e.Count(kvasserttest.OpCertificateGet) != reads || reads != 1 {
		t.Errorf("token requests %d -> %d, certificate reads %d -> %d: want cached", tokens, env.e.Count(kvasserttest.OpToken), reads, env.e.Count(kvasserttest.OpCertificateGet))
	}
	if n := env.s.creds.creds.len(); n != 1 {
		t.Errorf("%d credentials, want 1 for one (client, certificate)", n)
	}

	// Entra's refusal comes back with its AADSTS code and hint.
	p := problemOf(t, env.api("kv-certificate", kvCertBody(emuhook.DemoWingtipTenant)), http.StatusBadRequest)
	if p.Type != problemEntra || p.Code != 700016 || p.Hint == "" {
		t.Errorf("problem %+v", p)
	}
	// Key Vault's: a missing certificate.
	body := kvCertBody(scenario.DemoContosoTenant)
	body["certificateName"] = "missing"
	if p := problemOf(t, env.api("kv-certificate", body), http.StatusNotFound); p.Type != problemVault {
		t.Errorf("problem %+v", p)
	}
}

func TestAPIKVKeyInfoAndKVKey(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	infoBody := map[string]any{"keyVaultUri": "https://" + scenario.DemoVault + ".vault.azure.net/", "certificateName": scenario.DemoCertificate}
	info := decode[keyInfoResponse](t, env.api("kv-key-info", infoBody), http.StatusOK)
	cert, err := env.e.Certificate(scenario.DemoVault, scenario.DemoCertificate)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(info.KeyID, "https://"+scenario.DemoVault+".vault.azure.net/keys/"+scenario.DemoCertificate+"/") ||
		info.Kid != info.X5T || len(info.X5T) != 27 || len(info.X5TS256) != 43 || len(info.Thumbprint) != 40 || len(info.ThumbprintSHA256) != 64 ||
		!info.ExpiresOn.Equal(cert.NotAfter.UTC()) || !info.NotBefore.Equal(cert.NotBefore.UTC()) || info.Subject != cert.Subject.String() || info.Version == "" {
		t.Errorf("key info %+v", info)
	}
	if info.Exportable != nil && *info.Exportable {
		t.Errorf("the demo certificate's key is exportable")
	}

	// Cached, unless skipCache.
	decode[keyInfoResponse](t, env.api("kv-key-info", infoBody), http.StatusOK)
	if n := env.e.Count(kvasserttest.OpCertificateGet); n != 1 {
		t.Errorf("%d certificate reads, want 1", n)
	}
	infoBody["skipCache"] = true
	fresh := decode[keyInfoResponse](t, env.api("kv-key-info", infoBody), http.StatusOK)
	if n := env.e.Count(kvasserttest.OpCertificateGet); n != 2 || !fresh.ReadAt.After(info.ReadAt) {
		t.Errorf("skipCache: %d certificate reads (want 2), read at %v then %v", n, info.ReadAt, fresh.ReadAt)
	}

	// kv-key takes keyId and kid, or the hex thumbprint as the portal shows it.
	for _, thumb := range []string{info.Kid, info.Thumbprint, strings.ToLower(info.ThumbprintSHA256)} {
		tr := env.token(env.api("kv-key", map[string]any{
			"clientId": scenario.DemoAppClientID, "tenantId": emuhook.DemoNorthwindTenant, "scopes": []string{graph},
			"keyUri": info.KeyID, "keyThumbprint": thumb,
		}))
		checkTokenClaims(t, tr, emuhook.DemoNorthwindTenant, scenario.DemoAppClientID)
	}
	if n := env.e.Count(kvasserttest.OpKeyGet); n != 2 {
		t.Errorf("%d keys/get calls, want 2 (SHA-1 spellings share one source, SHA-256 has its own)", n)
	}
}

func TestAPILocalCertificate(t *testing.T) {
	t.Parallel()
	var named, rooted *localCert
	outside := t.TempDir()
	env := newEnv(t, func(c *Options, e *kvasserttest.Emulator) {
		named = newLocalCert(t, e)
		rooted = newLocalCert(t, e)
		addFile(c, "dev", named)
		c.FileRoot = rooted.dir
	})
	// A file outside the root, and a link to it inside.
	secretFile := filepath.Join(outside, "id_rsa")
	if err := os.WriteFile(secretFile, []byte("not for the proxy"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secretFile, filepath.Join(rooted.dir, "link.pem")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(rooted.dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	body := func(cert, key string) map[string]any {
		b := map[string]any{"clientId": scenario.DemoAppClientID, "tenantId": scenario.DemoContosoTenant, "scopes": []string{graph}, "certFile": cert}
		if key != "" {
			b["keyFile"] = key
		}
		return b
	}
	for _, tc := range []struct{ name, cert, key string }{
		{"configured name", "dev", ""},
		{"configured path", named.certFile, ""},
		{"configured path and key", named.certFile, named.keyFile},
		{"relative to the root", "app.crt", "app.key"},
		{"absolute under the root", rooted.certFile, rooted.keyFile},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := env.token(env.api("local-certificate", body(tc.cert, tc.key)))
			checkTokenClaims(t, tr, scenario.DemoContosoTenant, scenario.DemoAppClientID)
		})
	}
	for _, tc := range []struct{ name, cert, key, field string }{
		{"outside the root", secretFile, "", "certFile"},
		{"dot dot", "../" + filepath.Base(outside) + "/id_rsa", "", "certFile"},
		{"link leaving the root", "link.pem", "", "certFile"},
		{"missing", "nope.pem", "", "certFile"},
		{"directory", "sub", "", "certFile"},
		{"key outside the root", "app.crt", secretFile, "keyFile"},
		{"other key for a configured certificate", "dev", rooted.keyFile, "keyFile"},
		{"/etc/passwd", "/etc/passwd", "", "certFile"},
		{"key missing", "app.crt", "", "certFile"},
		{"not a certificate", "app.key", "app.key", "certFile"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := problemOf(t, env.api("local-certificate", body(tc.cert, tc.key)), http.StatusBadRequest)
			if !hasField(p, tc.field) {
				t.Errorf("problem %+v does not name %s", p, tc.field)
			}
			if strings.Contains(p.Detail+p.Title, "not for the proxy") {
				t.Error("the problem leaks file contents")
			}
			for _, e := range p.Errors {
				if strings.Contains(e.Message, "not for the proxy") {
					t.Error("the problem leaks file contents")
				}
			}
		})
	}

	// A certificate without its key says where the key goes (recognised by
	// certfile.ErrNoPrivateKey, not by the wording of the parse error).
	if p := problemOf(t, env.api("local-certificate", body("app.crt", "")), http.StatusBadRequest); len(p.Errors) != 1 || !strings.Contains(p.Errors[0].Message, "give keyFile") {
		t.Errorf("certificate without key: %+v, want the keyFile hint", p.Errors)
	}

	// Without Files and FileRoot, nothing can be read.
	bare := newEnv(t)
	if p := problemOf(t, bare.api("local-certificate", body(named.certFile, named.keyFile)), 400); !hasField(p, "certFile") {
		t.Errorf("problem %+v", p)
	}
}

func TestAPIValidation(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	valid := map[string]map[string]any{
		"kv-certificate":    kvCertBody(scenario.DemoContosoTenant),
		"kv-key":            {"clientId": scenario.DemoAppClientID, "tenantId": scenario.DemoContosoTenant, "scopes": []string{graph}, "keyUri": "https://v-1.vault.azure.net/keys/k/0123abcd", "keyThumbprint": strings.Repeat("ab", 20)},
		"kv-key-info":       {"keyVaultUri": "https://" + scenario.DemoVault + ".vault.azure.net/", "certificateName": scenario.DemoCertificate},
		"local-certificate": {"clientId": scenario.DemoAppClientID, "tenantId": scenario.DemoContosoTenant, "scopes": []string{graph}, "certFile": "x"},
	}
	with := func(route string, changes map[string]any) map[string]any {
		b := map[string]any{}
		for k, v := range valid[route] {
			b[k] = v
		}
		for k, v := range changes {
			if v == nil {
				delete(b, k)
			} else {
				b[k] = v
			}
		}
		return b
	}
	type tc struct {
		route  string
		body   any
		fields []string
	}
	cases := map[string]tc{
		"empty object":            {"kv-certificate", `{}`, []string{"clientId", "tenantId", "scopes", "keyVaultUri", "certificateName"}},
		"client ID":               {"kv-certificate", with("kv-certificate", map[string]any{"clientId": "app"}), []string{"clientId"}},
		"tenant":                  {"kv-key", with("kv-key", map[string]any{"tenantId": "contoso/evil"}), []string{"tenantId"}},
		"common tenant":           {"kv-key", with("kv-key", map[string]any{"tenantId": "common"}), []string{"tenantId"}},
		"two scopes":              {"kv-certificate", with("kv-certificate", map[string]any{"scopes": []string{graph, graph}}), []string{"scopes"}},
		"delegated scope":         {"kv-certificate", with("kv-certificate", map[string]any{"scopes": []string{"User.Read"}}), []string{"scopes[0]"}},
		"scopes as string":        {"kv-certificate", with("kv-certificate", map[string]any{"scopes": graph}), []string{"scopes"}},
		"http vault":              {"kv-certificate", with("kv-certificate", map[string]any{"keyVaultUri": "http://v.vault.azure.net/"}), []string{"keyVaultUri"}},
		"other host":              {"kv-key-info", with("kv-key-info", map[string]any{"keyVaultUri": "https://evil.example.com/"}), []string{"keyVaultUri"}},
		"managed HSM certificate": {"kv-key-info", with("kv-key-info", map[string]any{"keyVaultUri": "https://hsm1.managedhsm.azure.net/"}), []string{"keyVaultUri"}},
		"loopback vault":          {"kv-key-info", with("kv-key-info", map[string]any{"keyVaultUri": "https://127.0.0.1:8443/"}), []string{"keyVaultUri"}},
		"loopback key":            {"kv-key", with("kv-key", map[string]any{"keyUri": "https://localhost:8443/keys/k/0123abcd"}), []string{"keyUri"}},
		"certificate name":        {"kv-key-info", with("kv-key-info", map[string]any{"certificateName": "../x"}), []string{"certificateName"}},
		"skipCache type":          {"kv-key-info", with("kv-key-info", map[string]any{"skipCache": "yes"}), []string{"skipCache"}},
		"key URI":                 {"kv-key", with("kv-key", map[string]any{"keyUri": "https://v-1.vault.azure.net/secrets/k"}), []string{"keyUri"}},
		"thumbprint":              {"kv-key", with("kv-key", map[string]any{"keyThumbprint": "xyz"}), []string{"keyThumbprint"}},
		"no certFile":             {"local-certificate", with("local-certificate", map[string]any{"certFile": nil}), []string{"certFile"}},
		"unknown field":           {"kv-certificate", with("kv-certificate", map[string]any{"password": "x"}), []string{"password"}},
		"field of another route":  {"kv-key-info", with("kv-key-info", map[string]any{"clientId": scenario.DemoAppClientID}), []string{"clientId"}},
		"differently cased field": {"kv-key-info", `{"KeyVaultUri":"https://kvassert-demo.vault.azure.net/","certificateName":"c"}`, []string{"KeyVaultUri"}},
		"repeated field":          {"kv-key-info", `{"keyVaultUri":"https://kvassert-demo.vault.azure.net/","certificateName":"c","certificateName":"d"}`, []string{"certificateName"}},
		"array":                   {"kv-key-info", `[]`, []string{"body"}},
		"trailing data":           {"kv-key-info", `{"keyVaultUri":"https://kvassert-demo.vault.azure.net/","certificateName":"c"} {}`, []string{"body"}},
		"broken JSON":             {"kv-key-info", `{"keyVaultUri":`, []string{"body"}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			p := problemOf(t, env.api(c.route, c.body), http.StatusBadRequest)
			if p.Type != problemValidation || p.Status != 400 || p.Title == "" {
				t.Errorf("problem %+v", p)
			}
			for _, f := range c.fields {
				if !hasField(p, f) {
					t.Errorf("problem %+v does not name %s", p, f)
				}
			}
			if len(p.Errors) != len(c.fields) {
				t.Errorf("problem names %d fields, want %v: %+v", len(p.Errors), c.fields, p.Errors)
			}
		})
	}
	if n := env.e.Count(kvasserttest.OpToken) + env.e.Count(kvasserttest.OpCertificateGet) + env.e.Count(kvasserttest.OpKeyGet); n != 0 {
		t.Errorf("%d calls to the emulator for invalid requests", n)
	}
}

func TestAPIVaultForbidden(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	if err := env.e.Revoke(scenario.DemoVault, emuhook.DemoWorkloadClientID, "keys/sign"); err != nil {
		t.Fatal(err)
	}
	p := problemOf(t, env.api("kv-certificate", kvCertBody(scenario.DemoContosoTenant)), http.StatusForbidden)
	if p.Type != problemVault || !strings.Contains(p.Detail, "403 Forbidden") || !strings.Contains(p.Detail, "/sign") || p.Hint == "" || strings.Contains(p.Detail, "\n") {
		t.Errorf("problem %+v", p)
	}
}
