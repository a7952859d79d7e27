package entra

// Tests with the real clients: MSAL Go's confidential client and azidentity.

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"
	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/internal/testcert"
	"github.com/kvassert/kvassert/kvasserttest/internal/emu"
)

// bypassMICache makes MSAL's managed identity client skip its process-wide
// token cache (tokens of an earlier test's emulator would not verify here).
const bypassMICache = `{"access_token":{"xms_cc":{"values":["cp1"]}}}`

func (f *fixture) msal(t *testing.T, authorityTenant, clientID string, cred confidential.Credential, opts ...confidential.Option) confidential.Client {
	t.Helper()
	opts = append([]confidential.Option{confidential.WithHTTPClient(f.client), confidential.WithInstanceDiscovery(false)}, opts...)
	c, err := confidential.New("https://login.microsoftonline.com/"+authorityTenant, clientID, cred, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestMSALCertificate(t *testing.T) {
	f := newFixture(t)
	cred, err := confidential.NewCredFromCert([]*x509.Certificate{f.appCert}, f.appKey)
	if err != nil {
		t.Fatal(err)
	}
	c := f.msal(t, home, demoApp, cred)
	ctx := context.Background()
	tenants := []string{contoso, emuhook.DemoFabrikamTenant, emuhook.DemoNorthwindTenant}
	for _, tid := range tenants {
		r, err := c.AcquireTokenByCredential(ctx, []string{vault}, confidential.WithTenantID(tid))
		if err != nil {
			t.Fatalf("%s: %v", tid, err)
		}
		claims, err := f.auth.Verify(r.AccessToken, "https://vault.azure.net")
		if err != nil {
			t.Fatal(err)
		}
		if claims.Tid != tid || claims.AppID != demoApp || claims.Oid != f.e.ServicePrincipalID(demoApp, tid) {
			t.Errorf("%s: claims %+v", tid, claims)
		}
	}
	if n := f.faults.Count(emu.OpDiscovery); n != 3 {
		t.Errorf("discovery GETs = %d, want one per tenant (3)", n)
	}
	// Not consented: Entra's 700016 through MSAL's error.
	_, err = c.AcquireTokenByCredential(ctx, []string{vault}, confidential.WithTenantID(emuhook.DemoWingtipTenant))
	if err == nil || !strings.Contains(err.Error(), "AADSTS700016") {
		t.Errorf("wingtip: err = %v, want AADSTS700016", err)
	}
	// Revoked: 7000277 (a new tenant, so MSAL's cache does not answer).
	if err := f.e.RevokeCertificate(demoApp, f.appCert); err != nil {
		t.Fatal(err)
	}
	_, err = c.AcquireTokenByCredential(ctx, []string{vault}, confidential.WithTenantID(home))
	if err == nil || !strings.Contains(err.Error(), "AADSTS7000277") {
		t.Errorf("revoked: err = %v, want AADSTS7000277", err)
	}
}

func TestMSALTenantByName(t *testing.T) {
	f := newFixture(t)
	cred, err := confidential.NewCredFromCert([]*x509.Certificate{f.appCert}, f.appKey)
	if err != nil {
		t.Fatal(err)
	}
	c := f.msal(t, "contoso.onmicrosoft.com", demoApp, cred)
	r, err := c.AcquireTokenByCredential(context.Background(), []string{vault})
	if err != nil {
		t.Fatal(err)
	}
	if tid := decodeClaims(t, r.AccessToken).Tid; tid != contoso {
		t.Errorf("tid = %s", tid)
	}
}

func TestMSALInstanceDiscovery(t *testing.T) {
	f := newFixture(t)
	cred, _ := confidential.NewCredFromSecret(emuhook.DemoWorkloadSecret)
	c, err := confidential.New("https://login.microsoftonline.com/"+home, emuhook.DemoWorkloadClientID, cred, confidential.WithHTTPClient(f.client))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AcquireTokenByCredential(context.Background(), []string{vault}); err != nil {
		t.Fatal(err)
	}
	if n := f.faults.Count(emu.OpInstance); n == 0 {
		t.Error("MSAL with instance discovery made no instance discovery request")
	}
	resp, err := f.client.Get("https://login.microsoftonline.com/common/discovery/instance?api-version=1.1&authorization_endpoint=https://login.microsoftonline.com/" + home + "/oauth2/v2.0/authorize")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		TenantDiscoveryEndpoint string `json:"tenant_discovery_endpoint"`
		Metadata                []struct{ Aliases []string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if doc.TenantDiscoveryEndpoint != "https://login.microsoftonline.com/"+home+"/v2.0/.well-known/openid-configuration" || len(doc.Metadata) == 0 {
		t.Errorf("instance discovery = %+v", doc)
	}
	resp2, err := f.client.Get("https://login.microsoftonline.com/common/discovery/instance?api-version=1.1&authorization_endpoint=https://evil.example/x/oauth2/v2.0/authorize")
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != 400 {
		t.Errorf("unknown instance: status %d", resp2.StatusCode)
	}
}

// rs256Callback builds RS256 + x5t assertions by hand, as the .NET original
// and ADFS-era clients do.
func rs256Callback(t *testing.T, f *fixture, mutate func(map[string]any)) func(context.Context, confidential.AssertionRequestOptions) (string, error) {
	return func(_ context.Context, o confidential.AssertionRequestOptions) (string, error) {
		c := claims(o.ClientID, o.TokenEndpoint, f.auth.Now())
		if mutate != nil {
			mutate(c)
		}
		return testcert.SignJWT(t, f.appKey, map[string]any{"alg": "RS256", "typ": "JWT", "x5t": x5t(f.appCert)}, c), nil
	}
}

func TestMSALAssertionCallback(t *testing.T) {
	f := newFixture(t)
	c := f.msal(t, home, demoApp, confidential.NewCredFromAssertionCallback(rs256Callback(t, f, nil)))
	for _, tid := range []string{contoso, emuhook.DemoFabrikamTenant, emuhook.DemoNorthwindTenant} {
		r, err := c.AcquireTokenByCredential(context.Background(), []string{vault}, confidential.WithTenantID(tid))
		if err != nil {
			t.Fatal(err)
		}
		if got := decodeClaims(t, r.AccessToken).Tid; got != tid {
			t.Errorf("tid = %s, want %s", got, tid)
		}
	}
	// Rejections through MSAL's error.
	for _, tc := range []struct {
		code   string
		mutate func(map[string]any)
	}{
		{"AADSTS700024", func(c map[string]any) { c["exp"] = f.auth.Now().Add(-time.Hour).Unix() }},
		{"AADSTS700023", func(c map[string]any) { c["aud"] = tokenURL(contoso) }},
		{"AADSTS700021", func(c map[string]any) { c["iss"], c["sub"] = otherAppID, otherAppID }},
	} {
		c := f.msal(t, home, demoApp, confidential.NewCredFromAssertionCallback(rs256Callback(t, f, tc.mutate)))
		_, err := c.AcquireTokenByCredential(context.Background(), []string{vault})
		if err == nil || !strings.Contains(err.Error(), tc.code) {
			t.Errorf("err = %v, want %s", err, tc.code)
		}
	}
}

func TestMSALSecret(t *testing.T) {
	f := newFixture(t)
	cred, err := confidential.NewCredFromSecret(emuhook.DemoWorkloadSecret)
	if err != nil {
		t.Fatal(err)
	}
	r, err := f.msal(t, home, emuhook.DemoWorkloadClientID, cred).AcquireTokenByCredential(context.Background(), []string{vault})
	if err != nil {
		t.Fatal(err)
	}
	if c := decodeClaims(t, r.AccessToken); c.Tid != home || c.AppID != emuhook.DemoWorkloadClientID || len(c.Roles) != 0 {
		t.Errorf("claims %+v", c)
	}
	bad, _ := confidential.NewCredFromSecret("wrong")
	_, err = f.msal(t, home, emuhook.DemoWorkloadClientID, bad).AcquireTokenByCredential(context.Background(), []string{vault})
	if err == nil || !strings.Contains(err.Error(), "AADSTS7000215") || strings.Contains(err.Error(), emuhook.DemoWorkloadSecret) {
		t.Errorf("err = %v, want AADSTS7000215", err)
	}
}

func TestAzidentityClientCredentials(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	co := azcore.ClientOptions{Transport: f.client}
	t.Run("ClientSecretCredential", func(t *testing.T) {
		cred, err := azidentity.NewClientSecretCredential(home, emuhook.DemoWorkloadClientID, emuhook.DemoWorkloadSecret,
			&azidentity.ClientSecretCredentialOptions{ClientOptions: co, DisableInstanceDiscovery: true})
		if err != nil {
			t.Fatal(err)
		}
		tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{vault}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.auth.Verify(tok.Token, "https://vault.azure.net"); err != nil {
			t.Fatal(err)
		}
		if d := time.Until(tok.ExpiresOn); d < 55*time.Minute || d > time.Hour {
			t.Errorf("ExpiresOn in %v", d)
		}
	})
	for _, chain := range []bool{false, true} {
		t.Run("ClientCertificateCredential/x5c="+map[bool]string{false: "no", true: "yes"}[chain], func(t *testing.T) {
			cred, err := azidentity.NewClientCertificateCredential(contoso, demoApp, []*x509.Certificate{f.appCert}, f.appKey,
				&azidentity.ClientCertificateCredentialOptions{ClientOptions: co, DisableInstanceDiscovery: true, SendCertificateChain: chain,
					AdditionallyAllowedTenants: []string{"*"}})
			if err != nil {
				t.Fatal(err)
			}
			for _, tid := range []string{contoso, emuhook.DemoFabrikamTenant} {
				tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{vault}, TenantID: tid})
				if err != nil {
					t.Fatal(err)
				}
				if got := decodeClaims(t, tok.Token).Tid; got != tid {
					t.Errorf("tid %s, want %s", got, tid)
				}
			}
		})
	}
	t.Run("ClientCertificateCredential/PEM app", func(t *testing.T) {
		// Single-tenant in fabrikam: a token there, 700016 in contoso.
		cred, err := azidentity.NewClientCertificateCredential(emuhook.DemoFabrikamTenant, pemAppID, []*x509.Certificate{f.pemCert}, f.pemKey,
			&azidentity.ClientCertificateCredentialOptions{ClientOptions: co, DisableInstanceDiscovery: true, AdditionallyAllowedTenants: []string{"*"}})
		if err != nil {
			t.Fatal(err)
		}
		tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{vault}})
		if err != nil {
			t.Fatal(err)
		}
		if c := decodeClaims(t, tok.Token); len(c.Roles) != 0 || c.Tid != emuhook.DemoFabrikamTenant { // its roles are Graph's, not the vault's
			t.Errorf("claims %+v", c)
		}
		_, err = cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{vault}, TenantID: contoso})
		wantAuthFailed(t, err, 400, "AADSTS700016")
	})
	t.Run("ClientAssertionCredential/bad signature", func(t *testing.T) {
		cred, err := azidentity.NewClientAssertionCredential(contoso, demoApp, func(context.Context) (string, error) {
			return testcert.SignJWT(t, f.pemKey, map[string]any{"alg": "PS256", "x5t#S256": x5tS256(f.appCert)}, claims(demoApp, tokenURL(contoso), time.Now())), nil
		}, &azidentity.ClientAssertionCredentialOptions{ClientOptions: co, DisableInstanceDiscovery: true})
		if err != nil {
			t.Fatal(err)
		}
		_, err = cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{vault}})
		wantAuthFailed(t, err, 401, "AADSTS7000274")
	})
}

// wantAuthFailed checks an azidentity AuthenticationFailedError's response.
func wantAuthFailed(t *testing.T, err error, status int, code string) {
	t.Helper()
	var afe *azidentity.AuthenticationFailedError
	if !errors.As(err, &afe) || afe.RawResponse == nil {
		t.Fatalf("err = %v, want an AuthenticationFailedError with a response", err)
	}
	if afe.RawResponse.StatusCode != status || !strings.Contains(err.Error(), code) {
		t.Errorf("status %d, err %v; want %d %s", afe.RawResponse.StatusCode, err, status, code)
	}
}

func (f *fixture) setAppService(t *testing.T, header string) {
	t.Setenv("IDENTITY_ENDPOINT", f.msiURL())
	t.Setenv("IDENTITY_HEADER", header)
	t.Setenv("MSI_ENDPOINT", "")
	t.Setenv("IDENTITY_SERVER_THUMBPRINT", "")
	t.Setenv("IMDS_ENDPOINT", "")
}

func TestManagedIdentityAppService(t *testing.T) {
	f := newFixture(t)
	f.setAppService(t, f.idHeader)
	ctx := context.Background()
	opts := &azidentity.ManagedIdentityCredentialOptions{ClientOptions: azcore.ClientOptions{Transport: f.client}}
	for name, id := range map[string]azidentity.ManagedIDKind{
		"default":   nil,
		"client ID": azidentity.ClientID(emuhook.DemoIdentityClientID),
		"object ID": azidentity.ObjectID(emuhook.DemoIdentityObjectID),
		"resource":  azidentity.ResourceID("/subscriptions/x/resourceGroups/y/providers/Microsoft.ManagedIdentity/userAssignedIdentities/kvassert-demo-identity"),
	} {
		t.Run(name, func(t *testing.T) {
			o := *opts
			o.ID = id
			cred, err := azidentity.NewManagedIdentityCredential(&o)
			if err != nil {
				t.Fatal(err)
			}
			tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://vault.azure.net/.default"}, Claims: bypassMICache})
			if err != nil {
				t.Fatal(err)
			}
			c, err := f.auth.Verify(tok.Token, "https://vault.azure.net")
			if err != nil {
				t.Fatal(err)
			}
			if c.Tid != home || c.AppID != emuhook.DemoIdentityClientID || c.Oid != emuhook.DemoIdentityObjectID ||
				c.Sub != emuhook.DemoIdentityObjectID || c.Iss != "https://login.microsoftonline.com/"+home+"/v2.0" {
				t.Errorf("claims %+v", c)
			}
			if d := time.Until(tok.ExpiresOn); d < 55*time.Minute || d > time.Hour {
				t.Errorf("ExpiresOn in %v", d)
			}
		})
	}
	t.Run("unknown identity", func(t *testing.T) {
		o := *opts
		o.ID = azidentity.ClientID("9e9e9e9e-0000-4000-8000-000000000000")
		cred, _ := azidentity.NewManagedIdentityCredential(&o)
		_, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://vault.azure.net/.default"}, Claims: bypassMICache})
		if err == nil || !strings.Contains(err.Error(), "Unable to load the proper Managed Identity") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("wrong identity header", func(t *testing.T) {
		f.setAppService(t, "not-the-header")
		cred, _ := azidentity.NewManagedIdentityCredential(opts)
		_, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://vault.azure.net/.default"}, Claims: bypassMICache})
		wantAuthFailed(t, err, 401, "X-IDENTITY-HEADER")
	})
}

func TestManagedIdentityCloudShell(t *testing.T) {
	// azidentity (through MSAL) selects Cloud Shell from MSI_ENDPOINT, POSTs
	// through the ClientOptions.Transport, so an https emulator works.
	f := newFixture(t)
	t.Setenv("IDENTITY_ENDPOINT", "")
	t.Setenv("IDENTITY_HEADER", "")
	t.Setenv("IMDS_ENDPOINT", "")
	t.Setenv("MSI_SECRET", "")
	t.Setenv("MSI_ENDPOINT", f.msiURL())
	cred, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{ClientOptions: azcore.ClientOptions{Transport: f.client}})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{"https://management.azure.com/.default"}, Claims: bypassMICache})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.auth.Verify(tok.Token, "https://management.azure.com"); err != nil {
		t.Fatal(err)
	}
	// The raw protocol: Metadata header required; answer has expires_in.
	resp, err := f.client.Post(f.msiURL(), "application/x-www-form-urlencoded", strings.NewReader("resource=https://vault.azure.net"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("without Metadata: status %d", resp.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodPost, f.msiURL(), strings.NewReader("resource=https://vault.azure.net"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Metadata", "true")
	resp, err = f.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]string
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if body["expires_in"] != "3599" || body["token_type"] != "Bearer" || body["resource"] != "https://vault.azure.net" || body["expires_on"] == "" {
		t.Errorf("body %v", body)
	}
}

func TestManagedIdentityRaw(t *testing.T) {
	f := newFixture(t)
	get := func(query string, header string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, f.msiURL()+"?"+query, nil)
		if header != "" {
			req.Header.Set("X-IDENTITY-HEADER", header)
		}
		resp, err := f.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, tc := range []struct {
		query, header string
		status        int
	}{
		{"api-version=2019-08-01&resource=https://vault.azure.net", "", 401},
		{"api-version=2019-08-01&resource=https://vault.azure.net", f.idHeader + "x", 401},
		{"api-version=2017-09-01&resource=https://vault.azure.net", f.idHeader, 400},
		{"api-version=2019-08-01", f.idHeader, 400},
		{"api-version=2019-08-01&resource=r&client_id=" + emuhook.DemoIdentityClientID + "&object_id=" + emuhook.DemoIdentityObjectID, f.idHeader, 400},
		{"api-version=2019-08-01&resource=https://vault.azure.net&principal_id=" + emuhook.DemoIdentityObjectID, f.idHeader, 200},
	} {
		status, body := get(tc.query, tc.header)
		if status != tc.status {
			t.Errorf("%s: status %d, want %d: %s", tc.query, status, tc.status, body)
		}
		if status == 200 {
			var m map[string]any
			_ = json.Unmarshal([]byte(body), &m)
			exp, _ := m["expires_on"].(string)
			if _, ok := new(big.Int).SetString(exp, 10); !ok || m["client_id"] != emuhook.DemoIdentityClientID || m["token_type"] != "Bearer" {
				t.Errorf("body %s", body)
			}
		}
	}
}

// miToken gets a managed identity token for api://AzureADTokenExchange.
func (f *fixture) miToken(t *testing.T) string {
	t.Helper()
	f.setAppService(t, f.idHeader)
	cred, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{
		ClientOptions: azcore.ClientOptions{Transport: f.client}, ID: azidentity.ClientID(emuhook.DemoIdentityClientID)})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{"api://AzureADTokenExchange/.default"}, Claims: bypassMICache})
	if err != nil {
		t.Fatal(err)
	}
	return tok.Token
}

func TestFederatedCredential(t *testing.T) {
	f := newFixture(t)
	mi := f.miToken(t)
	ctx := context.Background()

	t.Run("MSAL with the managed identity token, three tenants", func(t *testing.T) {
		cred := confidential.NewCredFromAssertionCallback(func(context.Context, confidential.AssertionRequestOptions) (string, error) { return mi, nil })
		c := f.msal(t, home, demoApp, cred)
		for _, tid := range []string{contoso, emuhook.DemoFabrikamTenant, emuhook.DemoNorthwindTenant, home} {
			r, err := c.AcquireTokenByCredential(ctx, []string{vault}, confidential.WithTenantID(tid))
			if err != nil {
				t.Fatal(err)
			}
			if got := decodeClaims(t, r.AccessToken).Tid; got != tid {
				t.Errorf("tid %s, want %s", got, tid)
			}
		}
	})
	t.Run("azidentity ClientAssertionCredential", func(t *testing.T) {
		cred, err := azidentity.NewClientAssertionCredential(contoso, demoApp, func(context.Context) (string, error) { return mi, nil },
			&azidentity.ClientAssertionCredentialOptions{ClientOptions: azcore.ClientOptions{Transport: f.client}, DisableInstanceDiscovery: true})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{vault}}); err != nil {
			t.Fatal(err)
		}
	})

	user, err := f.auth.Issue(emu.AccessClaims{Aud: "api://AzureADTokenExchange", Iss: "https://login.microsoftonline.com/" + home + "/v2.0",
		Tid: home, Sub: emuhook.DemoIdentityObjectID, Oid: emuhook.DemoIdentityObjectID, Iat: time.Now().Unix(), Nbf: time.Now().Unix(),
		Exp: time.Now().Add(time.Hour).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	expired, _ := f.auth.Issue(emu.AccessClaims{Aud: "api://AzureADTokenExchange", Iss: "https://login.microsoftonline.com/" + home + "/v2.0",
		Tid: home, Sub: emuhook.DemoIdentityObjectID, IdTyp: "app", Iat: time.Now().Add(-2 * time.Hour).Unix(),
		Nbf: time.Now().Add(-2 * time.Hour).Unix(), Exp: time.Now().Add(-time.Hour).Unix()})
	foreign := func() string {
		// Signed with another key but claiming this emulator's kid.
		parts := strings.Split(mi, ".")
		other, _ := emu.NewAuthority()
		tok, _ := other.Issue(decodeClaims(t, mi))
		return parts[0] + "." + strings.Split(tok, ".")[1] + "." + strings.Split(tok, ".")[2]
	}()
	github := testcert.SignJWT(t, f.appKey, map[string]any{"alg": "RS256", "kid": "gh"}, map[string]any{"iss": "https://token.actions.githubusercontent.com",
		"sub": "repo:x/y:ref:refs/heads/main", "aud": "api://AzureADTokenExchange", "exp": time.Now().Add(time.Hour).Unix()})
	for _, tc := range []struct {
		name, client, tenant, assertion string
		status                          int
		err                             string
		code                            int
	}{
		{"FIC on an app of another tenant", otherAppID, home, mi, 400, "invalid_request", 700236},
		{"subject mismatch", ficSubjectApp, home, mi, 400, "invalid_request", 700213},
		{"audience mismatch", ficAudApp, home, mi, 400, "invalid_request", 700212},
		{"no FIC at all", emuhook.DemoWorkloadClientID, home, mi, 400, "invalid_request", 700211},
		{"user token", demoApp, contoso, user, 400, "invalid_request", 700229},
		{"expired", demoApp, contoso, expired, 401, "invalid_client", 700024},
		{"forged signature", demoApp, contoso, foreign, 400, "invalid_request", 50027},
		{"external issuer", demoApp, contoso, github, 400, "invalid_request", 700211},
		{"not consented", demoApp, emuhook.DemoWingtipTenant, mi, 400, "unauthorized_client", 700016},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body, raw := f.post(t, tc.tenant, assertionForm(tc.client, tc.assertion, vault))
			wantAADSTS(t, status, body, raw, tc.status, tc.err, tc.code)
		})
	}
	t.Run("managed identity token reused", func(t *testing.T) {
		for range 3 {
			if status, _, raw := f.post(t, contoso, assertionForm(demoApp, mi, vault)); status != 200 {
				t.Fatalf("%d %s", status, raw)
			}
		}
	})
}

func TestDiscovery(t *testing.T) {
	f := newFixture(t)
	get := func(url string) (int, map[string]any) {
		resp, err := f.client.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	for _, seg := range []string{contoso, strings.ToUpper(contoso), "contoso.onmicrosoft.com", "Contoso.OnMicrosoft.com"} {
		status, doc := get("https://login.microsoftonline.com/" + seg + "/v2.0/.well-known/openid-configuration")
		if status != 200 || doc["issuer"] != "https://login.microsoftonline.com/"+contoso+"/v2.0" ||
			doc["token_endpoint"] != tokenURL(contoso) ||
			doc["jwks_uri"] != "https://login.microsoftonline.com/"+contoso+"/discovery/v2.0/keys" ||
			doc["authorization_endpoint"] != "https://login.microsoftonline.com/"+contoso+"/oauth2/v2.0/authorize" {
			t.Errorf("%s: %d %v", seg, status, doc)
		}
	}
	// The issuer follows the request host (the bare loopback address).
	status, doc := get(f.srv.URL + "/" + home + "/v2.0/.well-known/openid-configuration")
	if status != 200 || doc["issuer"] != f.srv.URL+"/"+home+"/v2.0" {
		t.Errorf("loopback: %v", doc)
	}
	status, doc = get("https://login.microsoftonline.com/common/v2.0/.well-known/openid-configuration")
	if status != 200 || doc["issuer"] != "https://login.microsoftonline.com/{tenantid}/v2.0" {
		t.Errorf("common: %v", doc)
	}
	resp, err := f.client.Get("https://login.microsoftonline.com/nope.onmicrosoft.com/v2.0/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var body map[string]any
	_ = json.Unmarshal(raw, &body)
	wantAADSTS(t, resp.StatusCode, body, string(raw), 400, "invalid_tenant", 90002)
	if !strings.Contains(string(raw), "Tenant 'nope.onmicrosoft.com' not found.") {
		t.Errorf("wording: %s", raw)
	}
}

// TestTokensVerifyAgainstJWKS checks an issued token with nothing but the
// JWKS document the tenant serves (as a resource server would).
func TestTokensVerifyAgainstJWKS(t *testing.T) {
	f := newFixture(t)
	cred, _ := confidential.NewCredFromSecret(emuhook.DemoWorkloadSecret)
	r, err := f.msal(t, home, emuhook.DemoWorkloadClientID, cred).AcquireTokenByCredential(context.Background(), []string{vault})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := f.client.Get("https://login.microsoftonline.com/" + home + "/discovery/v2.0/keys")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set struct {
		Keys []struct{ Kty, Kid, N, E, Alg string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(r.AccessToken, ".")
	hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
	var h struct{ Kid, Alg string }
	_ = json.Unmarshal(hb, &h)
	for _, k := range set.Keys {
		if k.Kid != h.Kid {
			continue
		}
		if err := verifyRS256(parts, k.N, k.E); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatalf("kid %q not in the JWKS %+v", h.Kid, set)
}
