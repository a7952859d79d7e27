package kvasserttest_test

// The emulator side of zero-touch rotation, end to end with the real SDKs and
// the vault's non-exportable key: the vault auto-renews the certificate on
// the emulator's clock, the app (token from an assertion signed in the vault)
// registers the new version through Graph's addKey with a proof signed in the
// vault, Entra accepts the new key after the propagation delay, and removeKey
// retires the old one.

import (
	"context"
	"crypto/sha1" //nolint:gosec // x5t
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azcertificates"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"

	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/internal/testfixture"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// vaultVersion is one version of the vault certificate.
type vaultVersion struct {
	version string
	cert    *x509.Certificate
}

type rotation struct {
	t      *testing.T
	e      *kvasserttest.Emulator
	offset atomic.Int64
}

func (r *rotation) now() time.Time { return time.Now().Add(time.Duration(r.offset.Load())) }

// workload is a fresh credential of the workload app (which may sign with
// and read the vault certificate): fresh so that no token cached on the
// process clock outlives the emulator's.
func (r *rotation) workload() azcore.TokenCredential {
	return testfixture.NewVaultCredential(r.t, r.e)
}

func (r *rotation) versions() []vaultVersion {
	r.t.Helper()
	c, err := azcertificates.NewClient(r.e.VaultURL(scenario.DemoVault), r.workload(), &azcertificates.ClientOptions{ClientOptions: r.e.ClientOptions()})
	if err != nil {
		r.t.Fatal(err)
	}
	var out []vaultVersion
	pager := c.NewListCertificatePropertiesVersionsPager(scenario.DemoCertificate, nil)
	for pager.More() {
		p, err := pager.NextPage(context.Background())
		if err != nil {
			r.t.Fatal(err)
		}
		for _, v := range p.Value {
			got, err := c.GetCertificate(context.Background(), scenario.DemoCertificate, v.ID.Version(), nil)
			if err != nil {
				r.t.Fatal(err)
			}
			cert, _ := x509.ParseCertificate(got.CER)
			out = append(out, vaultVersion{version: v.ID.Version(), cert: cert})
		}
	}
	return out
}

// sign signs a JWS with a given key version in the vault.
func (r *rotation) sign(v vaultVersion, alg azkeys.SignatureAlgorithm, header, claims map[string]any) string {
	r.t.Helper()
	kc, err := azkeys.NewClient(r.e.VaultURL(scenario.DemoVault), r.workload(), &azkeys.ClientOptions{ClientOptions: r.e.ClientOptions()})
	if err != nil {
		r.t.Fatal(err)
	}
	header["alg"] = string(alg)
	hb, _ := json.Marshal(header)
	cb, _ := json.Marshal(claims)
	in := base64.RawURLEncoding.EncodeToString(hb) + "." + base64.RawURLEncoding.EncodeToString(cb)
	d := sha256.Sum256([]byte(in))
	res, err := kc.Sign(context.Background(), scenario.DemoCertificate, v.version, azkeys.SignParameters{Algorithm: &alg, Value: d[:]}, nil)
	if err != nil {
		r.t.Fatal(err)
	}
	return in + "." + base64.RawURLEncoding.EncodeToString(res.Result)
}

// assertion is a client assertion for the SaaS app signed with version v,
// on the emulator's clock.
func (r *rotation) assertion(v vaultVersion, tenant string) string {
	th := sha256.Sum256(v.cert.Raw)
	now := r.now()
	return r.sign(v, azkeys.SignatureAlgorithmPS256, map[string]any{"typ": "JWT", "x5t#S256": base64.RawURLEncoding.EncodeToString(th[:])},
		map[string]any{"aud": emuhook.TokenEndpoint(tenant), "iss": scenario.DemoAppClientID, "sub": scenario.DemoAppClientID,
			"jti": entraJTI(), "nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix()})
}

// tokenWith posts a client-credentials request signed with version v and
// returns the status and the AADSTS description.
func (r *rotation) tokenWith(v vaultVersion, tenant, scope string) (int, map[string]any) {
	return entraPost(r.t, r.e, tenant, url.Values{"grant_type": {"client_credentials"}, "client_id": {scenario.DemoAppClientID},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion":      {r.assertion(v, tenant)}, "scope": {scope}})
}

// proof is a Graph proof of possession signed in the vault with version v.
func (r *rotation) proof(v vaultVersion, objectID string) string {
	sum := sha1.Sum(v.cert.Raw) //nolint:gosec
	now := r.now()
	return r.sign(v, azkeys.SignatureAlgorithmRS256, map[string]any{"typ": "JWT", "x5t": base64.RawURLEncoding.EncodeToString(sum[:])},
		map[string]any{"aud": "00000002-0000-0000-c000-000000000000", "iss": objectID, "nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix()})
}

func TestRotationOnEmulatorClock(t *testing.T) {
	r := &rotation{t: t, e: kvasserttest.NewTB(t, scenario.Demo(), nil)}
	r.e.SetClock(r.now)
	emuhook.Of(r.e).SetGraphPropagationDelay(45 * time.Second)
	objectID, err := emuhook.Of(r.e).AppObjectID(scenario.DemoAppClientID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := emuhook.Of(r.e).AppObjectID("00000000-0000-4000-8000-000000000000"); err == nil {
		t.Fatal("AppObjectID of an unknown app")
	}
	vs := r.versions()
	if len(vs) != 1 {
		t.Fatalf("%d versions at start", len(vs))
	}
	old := vs[0]

	// 300 days later (past 80 % of 12 months) the vault has renewed.
	r.offset.Store(int64(300 * 24 * time.Hour))
	vs = r.versions()
	if len(vs) != 2 {
		t.Fatalf("%d versions after 300 days, want 2", len(vs))
	}
	renewed := vs[1]
	if status, body := r.tokenWith(renewed, scenario.DemoContosoTenant, entraVaultScope); status != 401 || !strings.HasPrefix(body["error_description"].(string), "AADSTS700027") {
		t.Fatalf("renewed version before registration: %d %v", status, body["error_description"])
	}

	// The app's Graph token, from an assertion signed with the old version.
	c, err := confidential.New(emuhook.AuthorityHost+scenario.DemoHomeTenant, scenario.DemoAppClientID,
		confidential.NewCredFromAssertionCallback(func(ctx context.Context, o confidential.AssertionRequestOptions) (string, error) {
			return r.assertion(old, scenario.DemoHomeTenant), nil
		}), confidential.WithHTTPClient(r.e.Client()), confidential.WithInstanceDiscovery(false))
	if err != nil {
		t.Fatal(err)
	}
	ar, err := c.AcquireTokenByCredential(context.Background(), []string{emuhook.GraphScope})
	if err != nil {
		t.Fatal(err)
	}
	g := &rollEnv{t: t, e: r.e}
	status, raw, ge, _ := g.call("POST", emuhook.GraphURL+"applications/"+objectID+"/addKey", ar.AccessToken, addKeyBody(renewed.cert, r.proof(old, objectID)))
	if status != 200 {
		t.Fatalf("addKey with a vault-signed proof: %d %+v", status, ge)
	}
	var added struct{ KeyID string }
	_ = json.Unmarshal(raw, &added)

	// Not yet propagated; then accepted in every tenant.
	if status, body := r.tokenWith(renewed, scenario.DemoContosoTenant, entraVaultScope); status != 401 || !strings.HasPrefix(body["error_description"].(string), "AADSTS700027") {
		t.Fatalf("before propagation: %d %v", status, body["error_description"])
	}
	r.offset.Add(int64(46 * time.Second))
	for _, tenant := range []string{scenario.DemoHomeTenant, scenario.DemoContosoTenant, emuhook.DemoFabrikamTenant} {
		if status, body := r.tokenWith(renewed, tenant, entraVaultScope); status != 200 {
			t.Fatalf("after propagation in %s: %d %v", tenant, status, body["error_description"])
		}
	}

	// Retire the old key with a proof from the new one.
	creds, _ := r.e.AppKeyCredentials(scenario.DemoAppClientID)
	if len(creds) != 2 || creds[1].KeyID != added.KeyID || !creds[0].Certificate.Equal(old.cert) {
		t.Fatalf("keys before removeKey: %+v", creds)
	}
	status, _, ge, _ = g.call("POST", emuhook.GraphURL+"applications/"+objectID+"/removeKey", ar.AccessToken,
		map[string]any{"keyId": creds[0].KeyID, "proof": r.proof(renewed, objectID)})
	if status != 204 {
		t.Fatalf("removeKey: %d %+v", status, ge)
	}
	if status, body := r.tokenWith(old, scenario.DemoContosoTenant, entraVaultScope); status != 401 || !strings.HasPrefix(body["error_description"].(string), "AADSTS700027") {
		t.Fatalf("old version after removeKey: %d %v", status, body["error_description"])
	}
	if creds, _ := r.e.AppKeyCredentials(scenario.DemoAppClientID); len(creds) != 1 || !creds[0].Certificate.Equal(renewed.cert) {
		t.Fatalf("keys after removeKey: %+v", creds)
	}
}
