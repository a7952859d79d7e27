package kvasserttest_test

// Full-stack tests of the Entra ID half of the emulator: the real MSAL Go
// and azidentity clients, reaching the emulator through Emulator.Client,
// with assertions signed by the non-exportable vault key (keys/sign) as
// kvassert does it.

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"

	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/internal/testcert"
	"github.com/kvassert/kvassert/internal/testfixture"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// entraClaims is what these tests read from an access token.
type entraClaims struct {
	Aud, Iss, Tid, AppID, Oid, Sub, IdTyp string
	Roles                                 []string
	Exp                                   int64
}

func entraDecode(t *testing.T, tok string) entraClaims {
	t.Helper()
	var c entraClaims
	testfixture.DecodeJWT(t, tok, &c)
	return c
}

// entraVerifyJWKS verifies tok's RS256 signature with the JWKS that the
// tenant serves at /{tenant}/discovery/v2.0/keys.
func entraVerifyJWKS(t *testing.T, e *kvasserttest.Emulator, tenant, tok string) {
	t.Helper()
	resp, err := e.Client().Get(emuhook.AuthorityHost + tenant + "/discovery/v2.0/keys")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set struct{ Keys []struct{ Kid, N, E string } }
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok, ".")
	hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
	var h struct{ Kid, Alg string }
	_ = json.Unmarshal(hb, &h)
	for _, k := range set.Keys {
		if k.Kid != h.Kid || h.Alg != "RS256" {
			continue
		}
		nb, _ := base64.RawURLEncoding.DecodeString(k.N)
		eb, _ := base64.RawURLEncoding.DecodeString(k.E)
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(nb), E: int(new(big.Int).SetBytes(eb).Int64())}
		sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
		d := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
		if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, d[:], sig); err != nil {
			t.Fatalf("token does not verify with the JWKS: %v", err)
		}
		return
	}
	t.Fatalf("no JWKS key for kid %q alg %q", h.Kid, h.Alg)
}

// vaultAssertion builds PS256 + x5t#S256 client assertions whose signature
// comes from the vault's keys/sign (the certificate's key never leaves it).
type vaultAssertion struct {
	keys *azkeys.Client
	cert *x509.Certificate
	now  func() time.Time
}

func newVaultAssertion(t *testing.T, e *kvasserttest.Emulator) *vaultAssertion {
	t.Helper()
	kc := testfixture.Keys(t, e, scenario.DemoVault)
	cert, err := e.Certificate(scenario.DemoVault, scenario.DemoCertificate)
	if err != nil {
		t.Fatal(err)
	}
	return &vaultAssertion{keys: kc, cert: cert, now: time.Now}
}

func (v *vaultAssertion) callback(ctx context.Context, o confidential.AssertionRequestOptions) (string, error) {
	th := sha256.Sum256(v.cert.Raw)
	hb, _ := json.Marshal(map[string]string{"alg": "PS256", "typ": "JWT", "x5t#S256": base64.RawURLEncoding.EncodeToString(th[:])})
	now := v.now()
	cb, _ := json.Marshal(map[string]any{"aud": o.TokenEndpoint, "iss": o.ClientID, "sub": o.ClientID, "jti": entraJTI(),
		"nbf": now.Unix(), "iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix()})
	in := base64.RawURLEncoding.EncodeToString(hb) + "." + base64.RawURLEncoding.EncodeToString(cb)
	d := sha256.Sum256([]byte(in))
	alg := azkeys.SignatureAlgorithmPS256
	r, err := v.keys.Sign(ctx, scenario.DemoCertificate, "", azkeys.SignParameters{Algorithm: &alg, Value: d[:]}, nil)
	if err != nil {
		return "", err
	}
	return in + "." + base64.RawURLEncoding.EncodeToString(r.Result), nil
}

func entraJTI() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func entraMSAL(t *testing.T, e *kvasserttest.Emulator, clientID string, cred confidential.Credential) confidential.Client {
	t.Helper()
	c, err := confidential.New(emuhook.AuthorityHost+scenario.DemoHomeTenant, clientID, cred,
		confidential.WithHTTPClient(e.Client()), confidential.WithInstanceDiscovery(false))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const entraVaultScope = "https://vault.azure.net/.default"

// TestEntraVaultSignedAssertionManyTenants is kvassert's main flow: MSAL's
// assertion callback signs with the vault key, one client gets tokens in
// three customer tenants, and each token verifies against the JWKS.
func TestEntraVaultSignedAssertionManyTenants(t *testing.T) {
	e := kvasserttest.NewTB(t, scenario.Demo(), nil)
	va := newVaultAssertion(t, e)
	c := entraMSAL(t, e, scenario.DemoAppClientID, confidential.NewCredFromAssertionCallback(va.callback))
	ctx := context.Background()
	for _, tid := range []string{scenario.DemoContosoTenant, emuhook.DemoFabrikamTenant, emuhook.DemoNorthwindTenant} {
		r, err := c.AcquireTokenByCredential(ctx, []string{entraVaultScope}, confidential.WithTenantID(tid))
		if err != nil {
			t.Fatalf("%s: %v", tid, err)
		}
		cl := entraDecode(t, r.AccessToken)
		if cl.Tid != tid || cl.AppID != scenario.DemoAppClientID || cl.Aud != "https://vault.azure.net" || cl.IdTyp != "app" ||
			cl.Roles != nil || cl.Iss != "https://login.microsoftonline.com/"+tid+"/v2.0" || cl.Oid == "" || cl.Oid != cl.Sub {
			t.Errorf("%s: claims %+v", tid, cl)
		}
		entraVerifyJWKS(t, e, tid, r.AccessToken)
	}
	if n := e.Count(kvasserttest.OpKeySign); n != 3 {
		t.Errorf("keys/sign calls = %d, want 3 (one per token request)", n)
	}
	// Cached by MSAL: no new sign, no new token POST.
	before := e.Count(kvasserttest.OpToken)
	if _, err := c.AcquireTokenByCredential(ctx, []string{entraVaultScope}, confidential.WithTenantID(scenario.DemoContosoTenant)); err != nil {
		t.Fatal(err)
	}
	if e.Count(kvasserttest.OpToken) != before || e.Count(kvasserttest.OpKeySign) != 3 {
		t.Error("a cached token request reached the token endpoint or the vault")
	}
	// Never consented.
	_, err := c.AcquireTokenByCredential(ctx, []string{entraVaultScope}, confidential.WithTenantID(emuhook.DemoWingtipTenant))
	if err == nil || !strings.Contains(err.Error(), "AADSTS700016") {
		t.Errorf("wingtip: %v, want AADSTS700016", err)
	}
	// Revoked in Entra: 7000277.
	if err := e.RevokeCertificate(scenario.DemoAppClientID, va.cert); err != nil {
		t.Fatal(err)
	}
	_, err = c.AcquireTokenByCredential(ctx, []string{entraVaultScope}, confidential.WithTenantID(scenario.DemoHomeTenant))
	if err == nil || !strings.Contains(err.Error(), "AADSTS7000277") {
		t.Errorf("revoked: %v, want AADSTS7000277", err)
	}
	// Removed: 700027.
	if err := e.RemoveCertificate(scenario.DemoAppClientID, va.cert); err != nil {
		t.Fatal(err)
	}
	c2 := entraMSAL(t, e, scenario.DemoAppClientID, confidential.NewCredFromAssertionCallback(va.callback))
	_, err = c2.AcquireTokenByCredential(ctx, []string{entraVaultScope}, confidential.WithTenantID(scenario.DemoContosoTenant))
	if err == nil || !strings.Contains(err.Error(), "AADSTS700027") {
		t.Errorf("removed: %v, want AADSTS700027", err)
	}
}

func entraLocalCert(t *testing.T, notBefore, notAfter time.Time) (*rsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	c := testcert.New(t, &testcert.Options{Serial: 7, CommonName: "local", NotBefore: notBefore, NotAfter: notAfter})
	return c.RSA(t), c.Cert
}

// TestEntraAzidentity runs azidentity's secret and certificate credentials
// against the emulator, and the clock-dependent rejections.
func TestEntraAzidentity(t *testing.T) {
	e := kvasserttest.NewTB(t, scenario.Demo(), nil)
	ctx := context.Background()
	sec, err := e.ClientSecretCredential(emuhook.DemoWorkloadClientID)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := sec.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{entraVaultScope}})
	if err != nil {
		t.Fatal(err)
	}
	entraVerifyJWKS(t, e, scenario.DemoHomeTenant, tok.Token)

	now := time.Now()
	key, cert := entraLocalCert(t, now.Add(-time.Hour), now.Add(30*24*time.Hour))
	if err := e.RegisterCertificate(scenario.DemoAppClientID, cert); err != nil {
		t.Fatal(err)
	}
	newCred := func() *azidentity.ClientCertificateCredential {
		cc, err := azidentity.NewClientCertificateCredential(scenario.DemoContosoTenant, scenario.DemoAppClientID, []*x509.Certificate{cert}, key,
			&azidentity.ClientCertificateCredentialOptions{ClientOptions: e.ClientOptions(), DisableInstanceDiscovery: true,
				AdditionallyAllowedTenants: []string{"*"}})
		if err != nil {
			t.Fatal(err)
		}
		return cc
	}
	for _, tid := range []string{scenario.DemoContosoTenant, emuhook.DemoFabrikamTenant, emuhook.DemoNorthwindTenant} {
		tok, err := newCred().GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{entraVaultScope}, TenantID: tid})
		if err != nil {
			t.Fatal(err)
		}
		if got := entraDecode(t, tok.Token).Tid; got != tid {
			t.Errorf("tid %s, want %s", got, tid)
		}
	}
	// The certificate expires (the emulator's clock moves past NotAfter).
	e.SetClock(func() time.Time { return now.Add(31 * 24 * time.Hour) })
	defer e.SetClock(nil)
	// MSAL builds its assertion with the process clock, so build it by hand
	// with the emulator's.
	th := sha256.Sum256(cert.Raw)
	later := now.Add(31 * 24 * time.Hour)
	assertion := testcert.SignJWT(t, key, map[string]any{"alg": "PS256", "x5t#S256": base64.RawURLEncoding.EncodeToString(th[:])},
		map[string]any{"aud": emuhook.TokenEndpoint(scenario.DemoContosoTenant), "iss": scenario.DemoAppClientID, "sub": scenario.DemoAppClientID,
			"jti": entraJTI(), "nbf": later.Unix(), "exp": later.Add(5 * time.Minute).Unix()})
	status, body := entraPost(t, e, scenario.DemoContosoTenant, url.Values{"grant_type": {"client_credentials"}, "client_id": {scenario.DemoAppClientID},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {assertion}, "scope": {entraVaultScope}})
	if status != 401 || !strings.HasPrefix(body["error_description"].(string), "AADSTS1000502: ") {
		t.Errorf("expired certificate: %d %v", status, body)
	}
	// And MSAL's own assertion is now in the past: 700024.
	_, err = newCred().GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{entraVaultScope}})
	var afe *azidentity.AuthenticationFailedError
	if !errors.As(err, &afe) || afe.RawResponse == nil || afe.RawResponse.StatusCode != 401 || !strings.Contains(err.Error(), "AADSTS700024") {
		t.Errorf("clock skew: %v, want a 401 AADSTS700024", err)
	}
}

func entraPost(t *testing.T, e *kvasserttest.Emulator, tenant string, form url.Values) (int, map[string]any) {
	t.Helper()
	resp, err := e.Client().PostForm(emuhook.TokenEndpoint(tenant), form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("body %q: %v", raw, err)
	}
	return resp.StatusCode, m
}

// TestEntraManagedIdentityAsFederatedCredential: the managed identity (App
// Service protocol, through azidentity) gets an api://AzureADTokenExchange
// token, which is the client assertion of the multi-tenant app.
func TestEntraManagedIdentityAsFederatedCredential(t *testing.T) {
	e := kvasserttest.NewTB(t, scenario.Demo(), nil)
	t.Setenv("IDENTITY_ENDPOINT", e.ManagedIdentityEndpoint())
	t.Setenv("IDENTITY_HEADER", e.IdentityHeader())
	t.Setenv("MSI_ENDPOINT", "")
	t.Setenv("IMDS_ENDPOINT", "")
	t.Setenv("IDENTITY_SERVER_THUMBPRINT", "")
	ctx := context.Background()
	mi, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{
		ClientOptions: e.ClientOptions(), ID: azidentity.ClientID(emuhook.DemoIdentityClientID)})
	if err != nil {
		t.Fatal(err)
	}
	// Claims make MSAL skip its process-wide managed identity token cache,
	// which may hold a token of another emulator of this test binary.
	const noCache = `{"access_token":{"xms_cc":{"values":["cp1"]}}}`
	fic, err := mi.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"api://AzureADTokenExchange/.default"}, Claims: noCache})
	if err != nil {
		t.Fatal(err)
	}
	cl := entraDecode(t, fic.Token)
	if cl.Aud != "api://AzureADTokenExchange" || cl.Sub != emuhook.DemoIdentityObjectID || cl.Tid != scenario.DemoHomeTenant {
		t.Errorf("managed identity token claims %+v", cl)
	}
	c := entraMSAL(t, e, scenario.DemoAppClientID, confidential.NewCredFromAssertionCallback(
		func(ctx context.Context, _ confidential.AssertionRequestOptions) (string, error) {
			tok, err := mi.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"api://AzureADTokenExchange/.default"}})
			return tok.Token, err
		}))
	for _, tid := range []string{scenario.DemoContosoTenant, emuhook.DemoFabrikamTenant, emuhook.DemoNorthwindTenant} {
		r, err := c.AcquireTokenByCredential(ctx, []string{entraVaultScope}, confidential.WithTenantID(tid))
		if err != nil {
			t.Fatalf("%s: %v", tid, err)
		}
		if got := entraDecode(t, r.AccessToken).Tid; got != tid {
			t.Errorf("tid %s, want %s", got, tid)
		}
	}
	// The workload app has no federated credential.
	status, body := entraPost(t, e, scenario.DemoHomeTenant, url.Values{"grant_type": {"client_credentials"}, "client_id": {emuhook.DemoWorkloadClientID},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {fic.Token}, "scope": {entraVaultScope}})
	if status != 400 || !strings.HasPrefix(body["error_description"].(string), "AADSTS700211: ") {
		t.Errorf("no FIC: %d %v", status, body)
	}
	// A wrong identity header is refused.
	t.Setenv("IDENTITY_HEADER", "wrong")
	bad, _ := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{ClientOptions: e.ClientOptions()})
	_, err = bad.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{entraVaultScope}, Claims: noCache})
	var afe *azidentity.AuthenticationFailedError
	if !errors.As(err, &afe) || afe.RawResponse == nil || afe.RawResponse.StatusCode != http.StatusUnauthorized {
		t.Errorf("wrong identity header: %v, want a 401", err)
	}
}

// TestEntraFaults: an injected 503 on the token endpoint is retried by
// azcore's pipeline (azidentity) and counted.
func TestEntraFaults(t *testing.T) {
	e := kvasserttest.NewTB(t, scenario.Demo(), nil)
	e.InjectFault(kvasserttest.OpToken, kvasserttest.Fault{Status: http.StatusServiceUnavailable, Times: 1})
	cred, err := azidentity.NewClientSecretCredential(scenario.DemoHomeTenant, emuhook.DemoWorkloadClientID, emuhook.DemoWorkloadSecret,
		&azidentity.ClientSecretCredentialOptions{ClientOptions: azcore.ClientOptions{Transport: e.Client(),
			Retry: policy.RetryOptions{RetryDelay: time.Millisecond, MaxRetryDelay: 10 * time.Millisecond}}, DisableInstanceDiscovery: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{entraVaultScope}}); err != nil {
		t.Fatal(err)
	}
	if n := e.Count(kvasserttest.OpToken); n != 2 {
		t.Errorf("token requests = %d, want 2 (the 503, then the retry)", n)
	}
}
