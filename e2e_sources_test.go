package kvassert_test

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/assertion"
	"github.com/kvassert/kvassert/internal/certfile"
	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/internal/jwtassert"
	"github.com/kvassert/kvassert/internal/rootaccess"
	"github.com/kvassert/kvassert/internal/testfixture"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// recorder keeps the assertions a Source makes.
type recorder struct {
	kvassert.Source
	mu   sync.Mutex
	jwts []string
	auds []string
}

func (r *recorder) Assertion(ctx context.Context, clientID, endpoint string) (string, error) {
	jwt, err := r.Source.Assertion(ctx, clientID, endpoint)
	r.mu.Lock()
	r.jwts, r.auds = append(r.jwts, jwt), append(r.auds, endpoint)
	r.mu.Unlock()
	return jwt, err
}

const signerOnlyClientID = "0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"

// sourcesScenario adds an identity that may only sign (keys/sign), to prove
// the key source needs nothing else.
func sourcesScenario() *scenario.Scenario {
	s := scenario.Demo()
	s.Apps = append(s.Apps, scenario.App{ClientID: signerOnlyClientID, HomeTenant: scenario.DemoHomeTenant, Secrets: []string{"signer-only-secret"}})
	s.Vaults[0].Access = append(s.Vaults[0].Access, scenario.Access{Principal: signerOnlyClientID, Permissions: []string{"keys/sign"}})
	return s
}

// checkAssertion verifies an assertion field by field.
func checkAssertion(t *testing.T, jwt, aud string, alg assertion.Algorithm, thumbField string) {
	t.Helper()
	tok, err := jwtassert.Parse(jwt)
	if err != nil {
		t.Fatal(err)
	}
	var header map[string]any
	_ = json.Unmarshal(tok.RawHeader, &header)
	if header["alg"] != string(alg) || header["typ"] != "JWT" || header[thumbField] == nil || len(header) != 3 {
		t.Fatalf("header = %v, want exactly alg=%s typ=JWT %s", header, alg, thumbField)
	}
	var claims map[string]any
	_ = json.Unmarshal(tok.RawClaims, &claims)
	if len(claims) != 7 || claims["aud"] != aud || claims["iss"] != scenario.DemoAppClientID || claims["sub"] != scenario.DemoAppClientID ||
		claims["nbf"] != claims["iat"] || claims["exp"].(float64)-claims["nbf"].(float64) != 600 || claims["jti"] == "" {
		t.Fatalf("claims = %v", claims)
	}
}

func TestEverySourceMakesAcceptedAssertions(t *testing.T) {
	e := kvasserttest.NewTB(t, sourcesScenario(), nil)
	ctx := context.Background()
	cert, err := e.Certificate(scenario.DemoVault, scenario.DemoCertificate)
	if err != nil {
		t.Fatal(err)
	}
	signerOnly, _ := e.ClientSecretCredential(signerOnlyClientID)
	certSrc := func(alg assertion.Algorithm) kvassert.Source {
		return testfixture.NewSource(t, e, scenario.DemoCertificate, func(o *kvassert.KeyVaultCertificateOptions) { o.Algorithm = alg })
	}
	// The certificate's kid: what an operator pins for the key source.
	kvc, _ := rootaccess.Cache(certSrc("")).Certificate(ctx)
	keySrc, err := kvassert.NewKeyVaultKeySource(kvc.KeyID, cert, signerOnly, &kvassert.KeyVaultKeyOptions{ClientOptions: e.ClientOptions()})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha1.Sum(cert.Raw)
	e.Grant(scenario.DemoVault, signerOnlyClientID, "keys/get") // the thumbprint variant reads the public key once
	thumbSrc, err := kvassert.NewKeyVaultKeySource(kvc.KeyID, nil, signerOnly,
		&kvassert.KeyVaultKeyOptions{ClientOptions: e.ClientOptions(), Thumbprint: strings.ToUpper(hex.EncodeToString(sum[:])), Algorithm: assertion.RS256})
	if err != nil {
		t.Fatal(err)
	}
	e.Revoke(scenario.DemoVault, signerOnlyClientID, "keys/get")

	cases := []struct {
		name  string
		src   kvassert.Source
		alg   assertion.Algorithm
		thumb string
	}{
		{"KeyVaultCertificate/PS256", certSrc(""), assertion.PS256, "x5t#S256"},
		{"KeyVaultCertificate/RS256", certSrc(assertion.RS256), assertion.RS256, "x5t"},
		{"KeyVaultKey/PS256", keySrc, assertion.PS256, "x5t#S256"},
		{"KeyVaultKeyThumbprint/RS256", thumbSrc, assertion.RS256, "x5t"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := &recorder{Source: c.src}
			cred := testfixture.NewCredential(t, e, rec, nil)
			gets := e.Count(kvasserttest.OpKeyGet) + e.Count(kvasserttest.OpCertificateGet)
			tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{TenantID: emuhook.DemoNorthwindTenant, Scopes: []string{graph}})
			if err != nil {
				t.Fatal(err)
			}
			if claimsOf(t, tok.Token)["tid"] != emuhook.DemoNorthwindTenant {
				t.Fatal("wrong tenant")
			}
			if len(rec.jwts) != 1 {
				t.Fatalf("%d assertions made, want 1", len(rec.jwts))
			}
			wantAud := "https://login.microsoftonline.com/" + emuhook.DemoNorthwindTenant + "/oauth2/v2.0/token"
			if rec.auds[0] != wantAud {
				t.Fatalf("MSAL passed aud %q, want %q", rec.auds[0], wantAud)
			}
			checkAssertion(t, rec.jwts[0], wantAud, c.alg, c.thumb)
			parsed, _ := jwtassert.Parse(rec.jwts[0])
			if p := parsed.Check(jwtassert.CheckOptions{Certificate: cert, ClientID: scenario.DemoAppClientID, Audience: wantAud}); len(p) > 0 {
				t.Fatalf("problems: %v", p)
			}
			if strings.HasPrefix(c.name, "KeyVaultKey") {
				if after := e.Count(kvasserttest.OpKeyGet) + e.Count(kvasserttest.OpCertificateGet); after != gets {
					t.Fatalf("the key source made %d lookups; it must only sign", after-gets)
				}
			}
		})
	}
}

func TestLocalSourceFromFiles(t *testing.T) {
	s := scenario.Demo()
	certPEM, keyPEM, cert := localCertificate(t)
	s.Apps[0].Certificates = append(s.Apps[0].Certificates, scenario.CertificateRef{PEM: string(certPEM)})
	e := kvasserttest.NewTB(t, s, nil)
	dir := t.TempDir()
	writeFile(t, dir+"/app.pem", certPEM)
	writeFile(t, dir+"/app.key", keyPEM)
	c, signer, err := certfile.Load(dir+"/app.pem", dir+"/app.key", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Equal(cert) {
		t.Fatal("loaded another certificate")
	}
	src, err := kvassert.NewLocalSource(c, signer, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{Source: src}
	cred := testfixture.NewCredential(t, e, rec, nil)
	tok, err := cred.GetToken(context.Background(), policy.TokenRequestOptions{TenantID: scenario.DemoContosoTenant, Scopes: []string{graph}})
	if err != nil {
		t.Fatal(err)
	}
	if claimsOf(t, tok.Token)["tid"] != scenario.DemoContosoTenant {
		t.Fatal("wrong tenant")
	}
	checkAssertion(t, rec.jwts[0], rec.auds[0], assertion.PS256, "x5t#S256")
	for _, bad := range [][2]string{{dir + "/missing.pem", ""}, {dir, ""}, {dir + "/app.key", ""}} {
		if _, _, err := certfile.Load(bad[0], bad[1], nil); err == nil {
			t.Errorf("LoadCertificateFiles(%q) accepted", bad[0])
		}
	}
}

// The MSAL Go integration: MSAL's per-request TokenEndpoint becomes aud, so
// WithTenantID works for each tenant.
func TestMSALCredentialPerTenant(t *testing.T) {
	w := testfixture.NewWorld(t, nil)
	e, src := w.Emu, w.Src
	mc, err := kvassert.NewMSALCredential(src)
	if err != nil {
		t.Fatal(err)
	}
	app, err := confidential.New("https://login.microsoftonline.com/"+scenario.DemoHomeTenant, scenario.DemoAppClientID, mc,
		confidential.WithHTTPClient(e.Client()), confidential.WithInstanceDiscovery(false))
	if err != nil {
		t.Fatal(err)
	}
	for _, tenant := range []string{scenario.DemoContosoTenant, emuhook.DemoFabrikamTenant, emuhook.DemoNorthwindTenant} {
		res, err := app.AcquireTokenByCredential(context.Background(), []string{graph}, confidential.WithTenantID(tenant))
		if err != nil {
			t.Fatalf("%s: %v", tenant, err)
		}
		if claimsOf(t, res.AccessToken)["tid"] != tenant {
			t.Fatalf("asked %s, got %v", tenant, claimsOf(t, res.AccessToken)["tid"])
		}
	}
	if _, err := kvassert.NewMSALCredential(nil); err == nil {
		t.Fatal("nil source accepted")
	}
}

// An Azure SDK client with the credential: the vault's challenge names the
// vault's tenant (here a customer tenant), and azcore asks the credential
// for a token in that tenant.
func TestAzureSDKClientAcrossTenants(t *testing.T) {
	s := scenario.Demo()
	s.Vaults = append(s.Vaults, scenario.Vault{Name: "contoso-vault", Tenant: scenario.DemoContosoTenant,
		Keys:   []scenario.VaultKey{{Name: "customer-key"}},
		Access: []scenario.Access{{Principal: scenario.DemoAppClientID, Permissions: []string{"keys/get"}}}})
	e := kvasserttest.NewTB(t, s, nil)
	cred, _ := newCredentialOn(t, e)
	client, err := azkeys.NewClient(e.VaultURL("contoso-vault"), cred, &azkeys.ClientOptions{ClientOptions: e.ClientOptions()})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.GetKey(context.Background(), "customer-key", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Key == nil || resp.Key.KID == nil || resp.Key.KID.Name() != "customer-key" {
		t.Fatalf("GetKey = %+v", resp)
	}
}

// freshMI asks for managed identity tokens with a claims value, which makes
// MSAL Go skip its process-wide managed identity token cache.
type freshMI struct{ azcore.TokenCredential }

func (f freshMI) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	opts.Claims = `{"access_token":{"xms_cc":{"values":["cp1"]}}}`
	return f.TokenCredential.GetToken(ctx, opts)
}

// Managed identity as a federated credential: no certificate at all.
func TestManagedIdentityFederatedCredential(t *testing.T) {
	e := kvasserttest.NewTB(t, scenario.Demo(), nil)
	t.Setenv("IDENTITY_ENDPOINT", e.ManagedIdentityEndpoint())
	t.Setenv("IDENTITY_HEADER", e.IdentityHeader())
	mi, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{
		ClientOptions: e.ClientOptions(), ID: azidentity.ClientID(emuhook.DemoIdentityClientID)})
	if err != nil {
		t.Fatal(err)
	}
	// MSAL Go caches managed identity tokens process-wide: a token from an
	// earlier emulator of this test binary (-count=N) would not verify here.
	// A claims value makes MSAL skip that cache.
	src, err := kvassert.NewManagedIdentitySource(&kvassert.ManagedIdentityOptions{Credential: freshMI{mi}})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{Source: src}
	cred := testfixture.NewCredential(t, e, rec, nil)
	for _, tenant := range []string{scenario.DemoContosoTenant, emuhook.DemoFabrikamTenant} {
		tok, err := cred.GetToken(context.Background(), policy.TokenRequestOptions{TenantID: tenant, Scopes: []string{graph}})
		if err != nil {
			t.Fatalf("%s: %v", tenant, err)
		}
		if c := claimsOf(t, tok.Token); c["tid"] != tenant || c["appid"] != scenario.DemoAppClientID {
			t.Fatalf("claims %v", c)
		}
	}
	fic := claimsOf(t, rec.jwts[0])
	if fic["aud"] != "api://AzureADTokenExchange" || fic["oid"] != emuhook.DemoIdentityObjectID {
		t.Fatalf("federated assertion claims %v", fic)
	}
	if rec.jwts[0] != rec.jwts[1] {
		t.Fatal("the managed identity token was not reused for the second tenant")
	}
	if n := e.Count(kvasserttest.OpManagedIdentity); n != 1 {
		t.Fatalf("managed identity endpoint called %d times, want 1", n)
	}
}
