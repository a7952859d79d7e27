package proxy

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/internal/testfixture"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// envValue returns the value of name in vars ("NAME=value").
func envValue(vars []string, name string) string {
	for _, kv := range vars {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			return v
		}
	}
	return ""
}

// refused asserts that a request was refused (401 or 403) with a problem
// that reveals no token and no secret.
func refused(t *testing.T, what string, resp *http.Response, secrets ...string) {
	t.Helper()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusForbidden {
		t.Errorf("%s: status %d, want 401 or 403: %s", what, resp.StatusCode, body)
		return
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("%s: Content-Type %q", what, ct)
	}
	if strings.Contains(string(body), "access_token") || strings.Contains(string(body), "eyJ") {
		t.Errorf("%s: the refusal carries a token: %s", what, body)
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(string(body), s) {
			t.Errorf("%s: the refusal reveals a secret: %s", what, body)
		}
	}
}

// Issue 18, defect 10: the IDENTITY_HEADER given to one emulated identity
// opens that identity's route only: not another identity's, not the token
// API, the page's API or the OpenAPI document, not forwarding. The API
// secret is not an identity secret either.
func TestIdentitySecretsAreSeparate(t *testing.T) {
	t.Parallel()
	env := newEnv(t, func(c *Options, e *kvasserttest.Emulator) {
		a, b := newLocalCert(t, e), newLocalCert(t, e)
		addFile(c, "a", a)
		addFile(c, "b", b)
		c.AllowForward = true
	})
	tA := Target{Tenant: scenario.DemoContosoTenant, ClientID: scenario.DemoAppClientID, File: "a"}
	tB := Target{Tenant: emuhook.DemoFabrikamTenant, ClientID: scenario.DemoAppClientID, File: "b"}
	tKV := Target{Tenant: scenario.DemoContosoTenant, ClientID: scenario.DemoAppClientID, Vault: scenario.DemoVault, Certificate: scenario.DemoCertificate}
	varsA, err := env.s.AppServiceEnv(env.url, tA)
	if err != nil {
		t.Fatal(err)
	}
	varsB, err := env.s.AppServiceEnv(env.url, tB)
	if err != nil {
		t.Fatal(err)
	}
	varsKV, err := env.s.AppServiceEnv(env.url, tKV)
	if err != nil {
		t.Fatal(err)
	}
	varsF, err := env.s.AppServiceEnv(env.url, Target{Forward: true})
	if err != nil {
		t.Fatal(err)
	}
	csA, err := env.s.CloudShellEnv(env.url, tA)
	if err != nil {
		t.Fatal(err)
	}
	secretA, secretB, secretKV, secretF := envValue(varsA, "IDENTITY_HEADER"), envValue(varsB, "IDENTITY_HEADER"), envValue(varsKV, "IDENTITY_HEADER"), envValue(varsF, "IDENTITY_HEADER")
	all := map[string]bool{secretA: true, secretB: true, secretKV: true, secretF: true, env.s.Secret(): true}
	if len(all) != 5 {
		t.Fatalf("identities share secrets: %d distinct of 5", len(all))
	}
	for s := range all {
		if len(s) < 32 {
			t.Fatalf("secret of %d characters", len(s))
		}
	}
	pathOf := func(vars []string) string {
		u := envValue(vars, "IDENTITY_ENDPOINT")
		return strings.TrimPrefix(u, env.url)
	}
	q := "?api-version=2019-08-01&resource=" + uniqueResource("isolation")
	get := func(path, secret string) *http.Response {
		return env.do("GET", path+q, "", nil, "X-IDENTITY-HEADER", secret)
	}

	// Each secret opens its own identity.
	if tr := decode[msiResponse](t, get(pathOf(varsA), secretA), 200); tr.AccessToken == "" {
		t.Fatal("identity A got no token with its own secret")
	} else {
		env.sawToken(tr.AccessToken)
	}

	// A's secret opens nothing else.
	refused(t, "A's secret on B's route", get(pathOf(varsB), secretA), secretB)
	refused(t, "A's secret on the Key Vault identity", get(pathOf(varsKV), secretA), secretKV)
	refused(t, "A's secret on forward", get("/msi/forward", secretA), secretF)
	refused(t, "A's secret on A's route for another tenant", get(strings.Replace(pathOf(varsA), scenario.DemoContosoTenant, emuhook.DemoFabrikamTenant, 1), secretA))
	refused(t, "A's secret on A's route for another file", get(strings.TrimSuffix(pathOf(varsA), "/a")+"/b", secretA))
	refused(t, "A's secret as a Cloud Shell path secret", env.do("POST", "/cloudshell/"+secretA+"/"+emuhook.DemoFabrikamTenant+"/"+scenario.DemoAppClientID+"/file/b",
		"application/x-www-form-urlencoded", strings.NewReader("resource=https://vault.azure.net"), "Metadata", "true"))
	for _, h := range [][]string{{"Authorization", "Bearer " + secretA}, {"X-Kvassert-Secret", secretA}} {
		refused(t, "A's secret on the token API", env.api("kv-certificate", kvCertBody(scenario.DemoContosoTenant), h...))
		refused(t, "A's secret on /api/config", env.do("GET", "/api/config", "", nil, h...))
		refused(t, "A's secret on /openapi.json", env.do("GET", "/openapi.json", "", nil, h...))
	}
	// The API secret opens no identity.
	refused(t, "the API secret on A's route", get(pathOf(varsA), env.s.Secret()))
	refused(t, "the API secret on forward", get("/msi/forward", env.s.Secret()))
	// The Cloud Shell secret of A is not its App Service secret.
	csPath := strings.TrimPrefix(envValue(csA, "MSI_ENDPOINT"), env.url)
	csSecret := strings.Split(strings.TrimPrefix(csPath, "/cloudshell/"), "/")[0]
	if csSecret == secretA || !all[env.s.Secret()] || all[csSecret] {
		t.Errorf("the Cloud Shell secret of A is shared with another route")
	}
	refused(t, "A's Cloud Shell secret on the App Service route", get(pathOf(varsA), csSecret))
	refused(t, "the forward secret on A's route", get(pathOf(varsA), secretF))
}

// Issue 18, defect 10: forwarding the developer's own credential is off
// unless Options.AllowForward: no secret opens it, and no environment is
// handed out for it.
func TestForwardOffByDefault(t *testing.T) {
	t.Parallel()
	env := newEnv(t) // a ForwardCredential, but AllowForward not set
	if vars, err := env.s.AppServiceEnv(env.url, Target{Forward: true}); err == nil {
		resp := env.do("GET", "/msi/forward?api-version=2019-08-01&resource="+uniqueResource("fwd-off"), "", nil, "X-IDENTITY-HEADER", envValue(vars, "IDENTITY_HEADER"))
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("forwarding is on by default: AppServiceEnv gave an environment, the route answered %d: %.60s", resp.StatusCode, body)
	}
	if _, err := env.s.CloudShellEnv(env.url, Target{Forward: true}); err == nil {
		t.Error("CloudShellEnv gave an environment for forward")
	}
	for _, secret := range []string{env.s.Secret(), strings.Repeat("a", 43)} {
		resp := env.do("GET", "/msi/forward?api-version=2019-08-01&resource="+uniqueResource("fwd-off"), "", nil, "X-IDENTITY-HEADER", secret)
		if resp.StatusCode == 200 {
			t.Fatal("forward answered 200 with forwarding off")
		}
		problemOf(t, resp, resp.StatusCode)
		resp = env.do("POST", "/cloudshell/"+secret+"/forward", "application/x-www-form-urlencoded", strings.NewReader("resource=https://vault.azure.net"), "Metadata", "true")
		if resp.StatusCode == 200 {
			t.Fatal("Cloud Shell forward answered 200 with forwarding off")
		}
	}
}

// pinnedClient trusts exactly the certificate whose SHA-256 fingerprint is
// fp (hex, colons allowed), whatever its issuer.
func pinnedClient(fp string) *http.Client {
	want := strings.ToLower(strings.ReplaceAll(fp, ":", ""))
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		InsecureSkipVerify: true, // replaced by the pin below
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("no certificate")
			}
			sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
			if hex.EncodeToString(sum[:]) != want {
				return errors.New("certificate does not match the pinned fingerprint")
			}
			return nil
		},
	}}}
}

// Issue 18, defect 10: with AllowRemote the proxy speaks TLS only, with a
// self-signed ECDSA P-256 certificate made at start (short-lived, its
// fingerprint known); plain HTTP gets nothing.
func TestAllowRemoteServesTLSOnly(t *testing.T) {
	t.Parallel()
	w := testfixture.NewWorld(t, nil)
	e, vaultCred := w.Emu, w.VaultCred
	s, err := New(&Options{Addr: "127.0.0.1:0", AllowRemote: true, KeyVaultCredential: vaultCred, ClientOptions: e.ClientOptions(), Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, s, nil)

	// Plain HTTP: no answer with data.
	req, _ := http.NewRequest("GET", "http://"+addr+"/api/config", nil)
	req.Header.Set("Authorization", "Bearer "+s.Secret())
	if resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req); err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatalf("plain HTTP with --allow-remote answered 200: %.80s", body)
		}
	}

	fp := s.Fingerprint()
	if len(strings.ReplaceAll(fp, ":", "")) != 64 {
		t.Fatalf("fingerprint %q is not a SHA-256 in hex", fp)
	}
	// A client pinned to the fingerprint gets through.
	body := `{"clientId":"` + scenario.DemoAppClientID + `","tenantId":"` + scenario.DemoContosoTenant + `","scopes":["` + graph + `"],"keyVaultUri":"https://` + scenario.DemoVault + `.vault.azure.net/","certificateName":"` + scenario.DemoCertificate + `"}`
	req, _ = http.NewRequest("POST", "https://"+addr+"/api/token/kv-certificate", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+s.Secret())
	req.Header.Set("Content-Type", "application/json")
	resp, err := pinnedClient(fp).Do(req)
	if err != nil {
		t.Fatalf("pinned TLS client: %v", err)
	}
	tr := decode[tokenResponse](t, resp, 200)
	resp.Body.Close()
	checkTokenClaims(t, tr, scenario.DemoContosoTenant, scenario.DemoAppClientID)

	// The certificate: ECDSA P-256, short-lived, for the bind address.
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	cert := conn.ConnectionState().PeerCertificates[0]
	conn.Close()
	if cert.PublicKeyAlgorithm != x509.ECDSA || cert.NotAfter.Sub(cert.NotBefore) > 8*24*time.Hour || time.Now().After(cert.NotAfter) {
		t.Errorf("certificate %v, valid %v to %v", cert.PublicKeyAlgorithm, cert.NotBefore, cert.NotAfter)
	}
	if len(cert.IPAddresses) == 0 || !cert.IPAddresses[0].Equal(net.ParseIP("127.0.0.1")) {
		t.Errorf("certificate SANs %v, want the bind address", cert.IPAddresses)
	}
	// An unpinned client (system roots) does not trust it.
	if _, err := http.Get("https://" + addr + "/"); err == nil {
		t.Error("a client with the system roots trusted the self-signed certificate")
	}
	// A client pinned to another fingerprint is refused.
	if _, err := pinnedClient(strings.Repeat("00", 32)).Get("https://" + addr + "/"); err == nil {
		t.Error("a client pinned to another fingerprint connected")
	}
}
