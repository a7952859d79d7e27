package entra

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/internal/testcert"
	"github.com/kvassert/kvassert/kvasserttest/internal/emu"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

const (
	demoApp = scenario.DemoAppClientID
	home    = scenario.DemoHomeTenant
	contoso = scenario.DemoContosoTenant
	vault   = "https://vault.azure.net/.default"
)

func TestAssertionAccepted(t *testing.T) {
	f := newFixture(t)
	now := time.Now()
	std256 := sha256.Sum256(f.appCert.Raw)
	for _, tc := range []struct {
		name   string
		header map[string]any
		aud    string
	}{
		{"PS256 x5t#S256 base64url", map[string]any{"alg": "PS256", "typ": "JWT", "x5t#S256": x5tS256(f.appCert)}, tokenURL(contoso)},
		{"PS256 x5t#S256 std base64 (MSAL Go)", map[string]any{"alg": "PS256", "typ": "JWT", "x5t#S256": base64.StdEncoding.EncodeToString(std256[:])}, tokenURL(contoso)},
		{"RS256 x5t", map[string]any{"alg": "RS256", "typ": "JWT", "x5t": x5t(f.appCert)}, tokenURL(contoso)},
		{"aud by domain", map[string]any{"alg": "RS256", "x5t": x5t(f.appCert)}, tokenURL("contoso.onmicrosoft.com")},
		{"aud upper-case GUID", map[string]any{"alg": "RS256", "x5t": x5t(f.appCert)}, tokenURL(strings.ToUpper(contoso))},
		{"aud v1 endpoint", map[string]any{"alg": "RS256", "x5t": x5t(f.appCert)}, "https://login.microsoftonline.com/" + contoso + "/oauth2/token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := testcert.SignJWT(t, f.appKey, tc.header, claims(demoApp, tc.aud, now))
			status, body, raw := f.post(t, contoso, assertionForm(demoApp, a, vault))
			if status != http.StatusOK {
				t.Fatalf("status %d: %s", status, raw)
			}
			if body["token_type"] != "Bearer" || body["expires_in"] != float64(3599) || body["ext_expires_in"] != float64(3599) {
				t.Errorf("body = %s", raw)
			}
			tok, _ := body["access_token"].(string)
			c, err := f.auth.Verify(tok, "https://vault.azure.net")
			if err != nil {
				t.Fatal(err)
			}
			sp := f.e.ServicePrincipalID(demoApp, contoso)
			if c.Tid != contoso || c.AppID != demoApp || c.Azp != demoApp || c.Oid != sp || c.Sub != sp || c.IdTyp != "app" ||
				c.Iss != "https://login.microsoftonline.com/"+contoso+"/v2.0" || c.Roles != nil || // the app's roles are Graph's: none in a vault token
				c.Exp-c.Iat != 3600 || c.Nbf != c.Iat || c.UTI == "" {
				t.Errorf("claims = %+v", c)
			}
		})
	}
	t.Run("bare loopback host", func(t *testing.T) {
		aud := f.srv.URL + "/" + contoso + "/oauth2/v2.0/token"
		a := testcert.SignJWT(t, f.appKey, map[string]any{"alg": "PS256", "x5t#S256": x5tS256(f.appCert)}, claims(demoApp, aud, now))
		resp, err := f.client.PostForm(aud, assertionForm(demoApp, a, vault))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
	if sp1, sp2 := f.e.ServicePrincipalID(demoApp, contoso), f.e.ServicePrincipalID(demoApp, home); sp1 == sp2 || !isGUID(sp1) {
		t.Errorf("service principal IDs %s, %s: want distinct GUIDs per tenant", sp1, sp2)
	}
}

func TestAssertionRejected(t *testing.T) {
	f := newFixture(t)
	now := time.Now()
	ps := func() map[string]any {
		return map[string]any{"alg": "PS256", "typ": "JWT", "x5t#S256": x5tS256(f.appCert)}
	}
	good := func() map[string]any { return claims(demoApp, tokenURL(contoso), now) }
	with := func(k string, v any) map[string]any {
		c := good()
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	otherCert := makeCert(t, testKey(t, 2), "not registered", now.Add(-time.Hour), now.AddDate(1, 0, 0))
	for _, tc := range []struct {
		name      string
		assertion string
		status    int
		err       string
		code      int
	}{
		{"unregistered certificate", testcert.SignJWT(t, testKey(t, 2), map[string]any{"alg": "PS256", "x5t#S256": x5tS256(otherCert)}, good()), 401, "invalid_client", 700027},
		{"no thumbprint", testcert.SignJWT(t, f.appKey, map[string]any{"alg": "PS256", "kid": "x"}, good()), 400, "invalid_request", 700211},
		{"garbage thumbprint", testcert.SignJWT(t, f.appKey, map[string]any{"alg": "PS256", "x5t#S256": "!!"}, good()), 401, "invalid_client", 700027},
		{"signed by another key", testcert.SignJWT(t, testKey(t, 2), ps(), good()), 401, "invalid_client", 7000274},
		{"RS256 signature under PS256 header", func() string {
			a := testcert.SignJWT(t, f.appKey, map[string]any{"alg": "RS256", "x5t#S256": x5tS256(f.appCert)}, good())
			parts := strings.Split(a, ".")
			hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
			return base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(hb), "RS256", "PS256", 1))) + "." + parts[1] + "." + parts[2]
		}(), 401, "invalid_client", 7000274},
		{"expired", testcert.SignJWT(t, f.appKey, ps(), with("exp", now.Add(-6*time.Minute).Unix())), 401, "invalid_client", 700024},
		{"no exp", testcert.SignJWT(t, f.appKey, ps(), with("exp", nil)), 401, "invalid_client", 700024},
		{"nbf in the future", testcert.SignJWT(t, f.appKey, ps(), with("nbf", now.Add(6*time.Minute).Unix())), 401, "invalid_client", 700024},
		{"aud of another tenant", testcert.SignJWT(t, f.appKey, ps(), with("aud", tokenURL(home))), 401, "invalid_client", 700023},
		{"aud on another host", testcert.SignJWT(t, f.appKey, ps(), with("aud", "https://evil.example/"+contoso+"/oauth2/v2.0/token")), 401, "invalid_client", 700023},
		{"aud is the issuer", testcert.SignJWT(t, f.appKey, ps(), with("aud", "https://login.microsoftonline.com/"+contoso+"/v2.0")), 401, "invalid_client", 700023},
		{"iss differs from sub", testcert.SignJWT(t, f.appKey, ps(), with("iss", emuhook.DemoWorkloadClientID)), 401, "invalid_client", 50048},
		{"iss and sub another app", testcert.SignJWT(t, f.appKey, ps(), func() map[string]any {
			c := good()
			c["iss"], c["sub"] = emuhook.DemoWorkloadClientID, emuhook.DemoWorkloadClientID
			return c
		}()), 401, "invalid_client", 700021},
		{"no jti", testcert.SignJWT(t, f.appKey, ps(), with("jti", nil)), 400, "invalid_request", 90014},
		{"HS256", testcert.SignJWT(t, f.appKey, map[string]any{"alg": "HS256", "x5t#S256": x5tS256(f.appCert)}, good()), 400, "invalid_request", 5002730},
		{"alg none", testcert.SignJWT(t, f.appKey, map[string]any{"alg": "none", "x5t#S256": x5tS256(f.appCert)}, good()), 400, "invalid_request", 5002730},
		{"two parts", "eyJhbGciOiJQUzI1NiJ9.eyJpc3MiOiJ4In0", 400, "invalid_request", 50027},
		{"not base64", "%%%.%%%.%%%", 400, "invalid_request", 50027},
		{"header not JSON", base64.RawURLEncoding.EncodeToString([]byte("nope")) + ".e30.c2ln", 400, "invalid_request", 50027},
		{"padded base64", base64.URLEncoding.EncodeToString([]byte(`{"alg": "PS256"}`)) + ".e30.c2ln", 400, "invalid_request", 50027},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body, raw := f.post(t, contoso, assertionForm(demoApp, tc.assertion, vault))
			wantAADSTS(t, status, body, raw, tc.status, tc.err, tc.code)
			if strings.Contains(raw, tc.assertion) {
				t.Error("the error echoes the assertion")
			}
		})
	}
}

func TestCertificateLifecycle(t *testing.T) {
	f := newFixture(t)
	now := time.Now()
	ps := map[string]any{"alg": "PS256", "x5t#S256": x5tS256(f.appCert)}
	try := func(t *testing.T) (int, map[string]any, string) {
		return f.post(t, contoso, assertionForm(demoApp, testcert.SignJWT(t, f.appKey, ps, claims(demoApp, tokenURL(contoso), f.auth.Now())), vault))
	}

	t.Run("revoked", func(t *testing.T) {
		if err := f.e.RevokeCertificate(demoApp, f.appCert); err != nil {
			t.Fatal(err)
		}
		status, body, raw := try(t)
		wantAADSTS(t, status, body, raw, 401, "invalid_client", 7000277)
		// Registering it again clears the revocation.
		if err := f.e.RegisterCertificate(demoApp, f.appCert); err != nil {
			t.Fatal(err)
		}
		if status, _, raw := try(t); status != 200 {
			t.Fatalf("after re-registering: %d %s", status, raw)
		}
	})
	t.Run("removed then a new one", func(t *testing.T) {
		if err := f.e.RemoveCertificate(demoApp, f.appCert); err != nil {
			t.Fatal(err)
		}
		status, body, raw := try(t)
		wantAADSTS(t, status, body, raw, 401, "invalid_client", 700027)
		if !strings.Contains(raw, "Thumbprint of key used by client") {
			t.Errorf("700027 without the thumbprint: %s", raw)
		}
		if err := f.e.RemoveCertificate(demoApp, f.appCert); err == nil {
			t.Error("removing twice: want an error")
		}
		k := testKey(t, 3)
		c := makeCert(t, k, "rotated", now.Add(-time.Minute), now.AddDate(0, 6, 0))
		if err := f.e.RegisterCertificate(demoApp, c); err != nil {
			t.Fatal(err)
		}
		a := testcert.SignJWT(t, k, map[string]any{"alg": "RS256", "x5t": x5t(c)}, claims(demoApp, tokenURL(contoso), now))
		if status, _, raw := f.post(t, contoso, assertionForm(demoApp, a, vault)); status != 200 {
			t.Fatalf("new certificate: %d %s", status, raw)
		}
		if err := f.e.RegisterCertificate(demoApp, f.appCert); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("outside validity window", func(t *testing.T) {
		later := f.appCert.NotAfter.Add(time.Hour)
		f.auth.SetClock(func() time.Time { return later })
		defer f.auth.SetClock(nil)
		status, body, raw := try(t)
		wantAADSTS(t, status, body, raw, 401, "invalid_client", 1000502)
	})
	t.Run("not yet valid", func(t *testing.T) {
		k := testKey(t, 3)
		c := makeCert(t, k, "future", now.Add(24*time.Hour), now.AddDate(1, 0, 0))
		if err := f.e.RegisterCertificate(demoApp, c); err != nil {
			t.Fatal(err)
		}
		a := testcert.SignJWT(t, k, map[string]any{"alg": "PS256", "x5t#S256": x5tS256(c)}, claims(demoApp, tokenURL(contoso), now))
		status, body, raw := f.post(t, contoso, assertionForm(demoApp, a, vault))
		wantAADSTS(t, status, body, raw, 401, "invalid_client", 1000502)
	})
	t.Run("errors of the runtime API", func(t *testing.T) {
		if f.e.RegisterCertificate("9e9e9e9e-0000-4000-8000-000000000000", f.appCert) == nil ||
			f.e.RevokeCertificate(demoApp, makeCert(t, testKey(t, 2), "x", now, now.Add(time.Hour))) == nil ||
			f.e.RegisterCertificate(demoApp, nil) == nil {
			t.Error("want errors")
		}
	})
}

func TestReplay(t *testing.T) {
	f := newFixture(t)
	a := testcert.SignJWT(t, f.appKey, map[string]any{"alg": "PS256", "x5t#S256": x5tS256(f.appCert)}, claims(demoApp, tokenURL(contoso), time.Now()))
	if status, _, raw := f.post(t, contoso, assertionForm(demoApp, a, vault)); status != 200 {
		t.Fatalf("first use: %d %s", status, raw)
	}
	status, body, raw := f.post(t, contoso, assertionForm(demoApp, a, vault))
	wantAADSTS(t, status, body, raw, 401, "invalid_client", 50013)
	if f.e.Replays() != 1 {
		t.Errorf("Replays() = %d, want 1", f.e.Replays())
	}
	// A failed attempt does not burn the jti: a bad-aud assertion with a jti,
	// then the good one with the same jti.
	c := claims(demoApp, tokenURL(home), time.Now())
	if status, _, _ := f.post(t, contoso, assertionForm(demoApp, testcert.SignJWT(t, f.appKey, map[string]any{"alg": "RS256", "x5t": x5t(f.appCert)}, c), vault)); status != 401 {
		t.Fatalf("bad aud: %d", status)
	}
	c["aud"] = tokenURL(contoso)
	if status, _, raw := f.post(t, contoso, assertionForm(demoApp, testcert.SignJWT(t, f.appKey, map[string]any{"alg": "RS256", "x5t": x5t(f.appCert)}, c), vault)); status != 200 {
		t.Fatalf("same jti after a failure: %d %s", status, raw)
	}
	f.e.SetReplayProtection(false)
	if status, _, raw := f.post(t, contoso, assertionForm(demoApp, a, vault)); status != 200 {
		t.Fatalf("replay with protection off: %d %s", status, raw)
	}
}

func TestJTICacheBounded(t *testing.T) {
	c := newJTICache(3)
	now := time.Unix(1000, 0)
	for i := range 10 {
		if !c.add(fmt.Sprint(i), now.Add(time.Duration(i+1)*time.Minute), now) {
			t.Fatalf("%d: not new", i)
		}
		if c.len() > 3 {
			t.Fatalf("len %d > 3", c.len())
		}
	}
	if c.add("9", now.Add(time.Hour), now) {
		t.Error("9 replayed: want refused")
	}
	if !c.add("9", now.Add(time.Hour), now.Add(20*time.Minute)) {
		t.Error("9 after its expiry: want accepted")
	}
}

func TestProtocolErrors(t *testing.T) {
	f := newFixture(t)
	ok := func() url.Values {
		return url.Values{"grant_type": {"client_credentials"}, "client_id": {emuhook.DemoWorkloadClientID},
			"client_secret": {emuhook.DemoWorkloadSecret}, "scope": {vault}}
	}
	edit := func(k, v string) url.Values {
		f := ok()
		if v == "" {
			f.Del(k)
		} else {
			f.Set(k, v)
		}
		return f
	}
	for _, tc := range []struct {
		name   string
		tenant string
		form   url.Values
		status int
		err    string
		code   int
	}{
		{"unknown tenant", "00000000-0000-4000-8000-000000000000", ok(), 400, "invalid_tenant", 90002},
		{"bare tenant name", "contoso", ok(), 400, "invalid_tenant", 90002},
		{"no grant_type", home, edit("grant_type", ""), 400, "invalid_request", 900144},
		{"password grant", home, edit("grant_type", "password"), 400, "unsupported_grant_type", 70003},
		{"common", "common", ok(), 400, "invalid_request", 9001023},
		{"organizations", "organizations", ok(), 400, "invalid_request", 50059},
		{"no client_id", home, edit("client_id", ""), 400, "invalid_request", 900144},
		{"no scope", home, edit("scope", ""), 400, "invalid_request", 900144},
		{"scope without .default", home, edit("scope", "https://vault.azure.net/keys.read"), 400, "invalid_scope", 1002012},
		{"two resources", home, edit("scope", vault+" https://graph.microsoft.com/.default"), 400, "invalid_scope", 70011},
		{"only openid", home, edit("scope", "openid profile"), 400, "invalid_scope", 70011},
		{"client_id not a GUID", home, edit("client_id", "workload"), 400, "unauthorized_client", 700016},
		{"unknown app", home, edit("client_id", "9e9e9e9e-0000-4000-8000-000000000000"), 400, "unauthorized_client", 700016},
		{"single-tenant demoApp elsewhere", contoso, ok(), 400, "unauthorized_client", 700016},
		{"no credential", home, edit("client_secret", ""), 401, "invalid_client", 7000216},
		{"wrong secret", home, edit("client_secret", "guess"), 401, "invalid_client", 7000215},
		{"secret and assertion", home, func() url.Values {
			v := ok()
			v.Set("client_assertion", "a.b.c")
			v.Set("client_assertion_type", jwtBearer)
			return v
		}(), 400, "invalid_request", 9002313},
		{"assertion type", home, func() url.Values {
			v := edit("client_secret", "")
			v.Set("client_assertion", "a.b.c")
			v.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:saml2-bearer")
			return v
		}(), 400, "invalid_request", 9002313},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body, raw := f.post(t, tc.tenant, tc.form)
			wantAADSTS(t, status, body, raw, tc.status, tc.err, tc.code)
			if strings.Contains(raw, emuhook.DemoWorkloadSecret) || strings.Contains(raw, "guess") {
				t.Error("the error echoes the secret")
			}
		})
	}
	t.Run("GET", func(t *testing.T) {
		resp, err := f.client.Get(tokenURL(home))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Errorf("status %d", resp.StatusCode)
		}
	})
	t.Run("huge body", func(t *testing.T) {
		resp, err := f.client.Post(tokenURL(home), "application/x-www-form-urlencoded", strings.NewReader("scope="+strings.Repeat("a", maxBody+10)))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Errorf("status %d", resp.StatusCode)
		}
	})
	t.Run("client_secret_basic", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, tokenURL(home), strings.NewReader(url.Values{"grant_type": {"client_credentials"}, "scope": {vault}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(emuhook.DemoWorkloadClientID, url.QueryEscape(emuhook.DemoWorkloadSecret))
		resp, err := f.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("status %d", resp.StatusCode)
		}
	})
	t.Run("correlation id echoed", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, tokenURL(home), strings.NewReader(edit("client_secret", "bad").Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		cid := "0f0e0d0c-0b0a-4909-8807-060504030201"
		req.Header.Set("client-request-id", cid)
		resp, err := f.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.Header.Get("client-request-id") != cid {
			t.Errorf("client-request-id = %q", resp.Header.Get("client-request-id"))
		}
	})
	// A token is identified as an error is: Entra's request ID and the
	// client's correlation ID.
	t.Run("ids on success", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, tokenURL(home), strings.NewReader(ok().Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		cid := "0f0e0d0c-0b0a-4909-8807-060504030202"
		req.Header.Set("client-request-id", cid)
		resp, err := f.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("client-request-id") != cid || !isGUID(resp.Header.Get("x-ms-request-id")) {
			t.Errorf("status %d, client-request-id %q, x-ms-request-id %q", resp.StatusCode, resp.Header.Get("client-request-id"), resp.Header.Get("x-ms-request-id"))
		}
	})
}

func TestConsent(t *testing.T) {
	f := newFixture(t)
	wingtip := emuhook.DemoWingtipTenant
	try := func(tenant string) (int, map[string]any, string) {
		a := testcert.SignJWT(t, f.appKey, map[string]any{"alg": "PS256", "x5t#S256": x5tS256(f.appCert)}, claims(demoApp, tokenURL(tenant), time.Now()))
		return f.post(t, tenant, assertionForm(demoApp, a, vault))
	}
	status, body, raw := try(wingtip)
	wantAADSTS(t, status, body, raw, 400, "unauthorized_client", 700016)
	if !strings.Contains(raw, "Application with identifier '"+demoApp+"' was not found in the directory 'wingtip'") {
		t.Errorf("wording: %s", raw)
	}
	if err := f.e.SetConsent(demoApp, "wingtip", true); err != nil {
		t.Fatal(err)
	}
	if status, _, raw := try(wingtip); status != 200 {
		t.Fatalf("after consent: %d %s", status, raw)
	}
	if err := f.e.SetConsent(demoApp, contoso, false); err != nil {
		t.Fatal(err)
	}
	status, body, raw = try(contoso)
	wantAADSTS(t, status, body, raw, 400, "unauthorized_client", 700016)
	if err := f.e.SetConsent(emuhook.DemoWorkloadClientID, contoso, true); err == nil {
		t.Error("consenting a single-tenant demoApp elsewhere: want an error")
	}
	if err := f.e.SetConsent(demoApp, "nowhere", true); err == nil {
		t.Error("unknown tenant: want an error")
	}
}

func TestFaultsAndCounters(t *testing.T) {
	f := newFixture(t)
	f.faults.Set(emu.OpToken, emu.Fault{Status: 503, RetryAfter: 2 * time.Second, Times: 1})
	status, body, raw := f.post(t, home, url.Values{})
	wantAADSTS(t, status, body, raw, 503, "temporarily_unavailable", 90033)
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {emuhook.DemoWorkloadClientID},
		"client_secret": {emuhook.DemoWorkloadSecret}, "scope": {vault}}
	if status, _, raw := f.post(t, home, form); status != 200 {
		t.Fatalf("after the fault: %d %s", status, raw)
	}
	if n := f.faults.Count(emu.OpToken); n != 2 {
		t.Errorf("Count(OpToken) = %d, want 2", n)
	}
	if f.e.Issued() != 1 {
		t.Errorf("Issued() = %d", f.e.Issued())
	}
}

func TestConcurrentTokens(t *testing.T) {
	f := newFixture(t)
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for i := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tenant := []string{home, contoso, emuhook.DemoFabrikamTenant, emuhook.DemoNorthwindTenant}[i%4]
			a := testcert.SignJWT(t, f.appKey, map[string]any{"alg": "PS256", "x5t#S256": x5tS256(f.appCert)}, claims(demoApp, tokenURL(tenant), time.Now()))
			resp, err := f.client.PostForm(tokenURL(tenant), assertionForm(demoApp, a, vault))
			if err != nil {
				errs <- err.Error()
				return
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				errs <- fmt.Sprint(resp.StatusCode)
			}
			if i%8 == 0 {
				_ = f.e.SetConsent(demoApp, emuhook.DemoWingtipTenant, i%16 == 0)
				_ = f.e.RegisterCertificate(demoApp, f.appCert)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// FuzzToken throws arbitrary assertions and forms at the token endpoint: no
// panic, always a JSON error or a token.
func FuzzToken(f *testing.F) {
	fx := newFixture(f)
	f.Add("a.b.c", "client_credentials", vault)
	f.Add("eyJhbGciOiJQUzI1NiIsIng1dCNTMjU2IjoiQUFBQSJ9.eyJleHAiOiJ4In0.AA", "client_credentials", vault)
	f.Add("e30.e30.e30", "client_credentials", "openid")
	f.Fuzz(func(t *testing.T, assertion, grant, scope string) {
		form := assertionForm(demoApp, assertion, scope)
		form.Set("grant_type", grant)
		r := httptest.NewRequest(http.MethodPost, tokenURL(contoso), strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		fx.e.ServeHTTP(w, r)
		if w.Code != 200 && w.Code != 400 && w.Code != 401 {
			t.Fatalf("status %d", w.Code)
		}
	})
}
