package entra

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
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

// Keys are expensive: generate a few once and share them.
var (
	keysOnce sync.Once
	keys     []*rsa.PrivateKey
)

func testKey(t testing.TB, i int) *rsa.PrivateKey {
	keysOnce.Do(func() {
		for range 4 {
			keys = append(keys, testcert.RSAKey(t, 0))
		}
	})
	return keys[i]
}

func makeCert(t testing.TB, key *rsa.PrivateKey, cn string, notBefore, notAfter time.Time) *x509.Certificate {
	t.Helper()
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	return testcert.New(t, &testcert.Options{Key: key, Serial: serial.Int64(), CommonName: cn, NotBefore: notBefore, NotAfter: notAfter}).Cert
}

// Extra fixtures beyond the demo scenario.
const (
	otherAppID    = "0b1c2d3e-4f50-4617-8283-949596979899" // multi-tenant, home contoso, FIC naming the home tenant's identity
	ficSubjectApp = "1c2d3e4f-5061-4728-9394-a5a6a7a8a9aa" // home tenant, FIC with another subject
	ficAudApp     = "2d3e4f50-6172-4839-a4a5-b6b7b8b9babb" // home tenant, FIC with another audience
	pemAppID      = "3e4f5061-7283-494a-b5b6-c7c8c9cacbcc" // single-tenant, PEM certificate, home fabrikam
)

// fixture is an Entra emulator behind a TLS server, with a client that dials
// it for every host name (as the composer's transport does).
type fixture struct {
	e        *Entra
	auth     *emu.Authority
	faults   *emu.Faults
	srv      *httptest.Server
	client   *http.Client
	appKey   *rsa.PrivateKey
	appCert  *x509.Certificate // the demo app's vault certificate
	pemKey   *rsa.PrivateKey
	pemCert  *x509.Certificate
	idHeader string
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{appKey: testKey(t, 0), pemKey: testKey(t, 1), idHeader: "test-identity-header-0123456789"}
	now := time.Now()
	f.appCert = makeCert(t, f.appKey, "kvassert demo SaaS", now.Add(-time.Hour), now.AddDate(1, 0, 0))
	f.pemCert = makeCert(t, f.pemKey, "pem app", now.Add(-time.Hour), now.AddDate(1, 0, 0))

	s := scenario.Demo()
	home := "https://login.microsoftonline.com/" + scenario.DemoHomeTenant + "/v2.0"
	s.Apps = append(s.Apps,
		scenario.App{
			ClientID: otherAppID, HomeTenant: scenario.DemoContosoTenant, MultiTenant: true,
			ConsentedTenants: []string{scenario.DemoHomeTenant},
			FederatedCredentials: []scenario.FederatedCredential{{
				Issuer: home, Subject: emuhook.DemoIdentityObjectID, Audiences: []string{"api://AzureADTokenExchange"},
			}},
		},
		scenario.App{
			ClientID: ficSubjectApp, HomeTenant: scenario.DemoHomeTenant,
			FederatedCredentials: []scenario.FederatedCredential{{
				Issuer: home, Subject: "00000000-1111-2222-3333-444444444444", Audiences: []string{"api://AzureADTokenExchange"},
			}},
		},
		scenario.App{
			ClientID: ficAudApp, HomeTenant: scenario.DemoHomeTenant,
			FederatedCredentials: []scenario.FederatedCredential{{
				Issuer: home, Subject: emuhook.DemoIdentityObjectID, Audiences: []string{"api://SomethingElse"},
			}},
		},
		scenario.App{
			ClientID: pemAppID, HomeTenant: emuhook.DemoFabrikamTenant,
			Certificates: []scenario.CertificateRef{{PEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.pemCert.Raw}))}},
			Roles:        []string{"Files.Read.All", "Sites.Read.All"},
		},
	)
	auth, err := emu.NewAuthority()
	if err != nil {
		t.Fatal(err)
	}
	f.auth = auth
	f.faults = &emu.Faults{}
	f.e, err = New(Config{
		Scenario:  s,
		Authority: auth,
		Faults:    f.faults,
		CertificateDER: func(vault, name string) ([]byte, error) {
			if vault == scenario.DemoVault && name == scenario.DemoCertificate {
				return f.appCert.Raw, nil
			}
			return nil, fmt.Errorf("no certificate %s/%s", vault, name)
		},
		IdentityHeader: f.idHeader,
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/msi/token", f.e.ServeManagedIdentity)
	mux.Handle("/", f.e)
	f.srv = httptest.NewUnstartedServer(mux)
	f.srv.EnableHTTP2 = true
	f.srv.StartTLS()
	t.Cleanup(f.srv.Close)

	pool := x509.NewCertPool()
	pool.AddCert(f.srv.Certificate())
	addr := f.srv.Listener.Addr().String()
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
		// httptest's certificate names example.com; every host is the emulator.
		TLSClientConfig:   &tls.Config{RootCAs: pool, ServerName: "example.com", MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2: true,
	}
	f.client = &http.Client{Transport: tr, Timeout: 30 * time.Second}
	t.Cleanup(tr.CloseIdleConnections)
	return f
}

// tokenURL is the token endpoint on the real host name (re-routed).
func tokenURL(tenant string) string {
	return "https://login.microsoftonline.com/" + tenant + "/oauth2/v2.0/token"
}

func (f *fixture) msiURL() string { return f.srv.URL + "/msi/token" }

// post sends a form to the token endpoint of tenant and returns status and body.
func (f *fixture) post(t testing.TB, tenant string, form url.Values) (int, map[string]any, string) {
	t.Helper()
	resp, err := f.client.PostForm(tokenURL(tenant), form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var body map[string]any
	_ = json.Unmarshal(raw, &body)
	return resp.StatusCode, body, string(raw)
}

// assertionForm is a client-credentials request with a client assertion.
func assertionForm(clientID, assertion, scope string) url.Values {
	return url.Values{
		"grant_type":            {"client_credentials"},
		"client_id":             {clientID},
		"client_assertion_type": {jwtBearer},
		"client_assertion":      {assertion},
		"scope":                 {scope + " openid offline_access profile"},
		"client_info":           {"1"},
	}
}

func x5tS256(c *x509.Certificate) string {
	s := sha256.Sum256(c.Raw)
	return base64.RawURLEncoding.EncodeToString(s[:])
}

func x5t(c *x509.Certificate) string {
	s := sha1.Sum(c.Raw) //nolint:gosec
	return base64.RawURLEncoding.EncodeToString(s[:])
}

// claims are the claims of a valid assertion for clientID at aud.
func claims(clientID, aud string, now time.Time) map[string]any {
	return map[string]any{
		"aud": aud, "iss": clientID, "sub": clientID, "jti": newGUID(),
		"nbf": now.Unix(), "iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(),
	}
}

// decodeClaims decodes a JWT payload without verifying it.
func decodeClaims(t testing.TB, tok string) emu.AccessClaims {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %d parts", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c emu.AccessClaims
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// wantAADSTS checks an error answer: status, error, the code in error_codes
// and the description, and Entra's other fields.
func wantAADSTS(t testing.TB, status int, body map[string]any, raw string, wantStatus int, wantErr string, code int) {
	t.Helper()
	if status != wantStatus {
		t.Errorf("status = %d, want %d; body %s", status, wantStatus, raw)
	}
	if body["error"] != wantErr {
		t.Errorf("error = %v, want %s; body %s", body["error"], wantErr, raw)
	}
	codes, _ := body["error_codes"].([]any)
	if len(codes) != 1 || codes[0] != float64(code) {
		t.Errorf("error_codes = %v, want [%d]; body %s", body["error_codes"], code, raw)
	}
	desc, _ := body["error_description"].(string)
	if !strings.HasPrefix(desc, fmt.Sprintf("AADSTS%d: ", code)) {
		t.Errorf("error_description = %q, want prefix AADSTS%d", desc, code)
	}
	for _, line := range []string{"\r\nTrace ID: ", "\r\nCorrelation ID: ", "\r\nTimestamp: "} {
		if !strings.Contains(desc, line) {
			t.Errorf("error_description lacks %q: %q", line, desc)
		}
	}
	for _, k := range []string{"timestamp", "trace_id", "correlation_id"} {
		if s, _ := body[k].(string); s == "" {
			t.Errorf("%s missing; body %s", k, raw)
		}
	}
	if body["error_uri"] != fmt.Sprintf("https://login.microsoftonline.com/error?code=%d", code) {
		t.Errorf("error_uri = %v", body["error_uri"])
	}
}

// verifyRS256 checks a JWT's RS256 signature with a JWK's n and e.
func verifyRS256(parts []string, n, e string) error {
	nb, err := base64.RawURLEncoding.DecodeString(n)
	if err != nil {
		return err
	}
	eb, err := base64.RawURLEncoding.DecodeString(e)
	if err != nil {
		return err
	}
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(nb), E: int(new(big.Int).SetBytes(eb).Int64())}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return err
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	return rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig)
}
