package rotation_test

import (
	"context"
	"crypto/x509"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azcertificates"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/internal/credclock"
	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/internal/rootaccess"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
	"github.com/kvassert/kvassert/rotation"
)

// emuClockCred reaches the vault on the emulator's clock, which the test
// moves by hours while azidentity and azcore cache tokens by the real one:
// it keeps the token until shortly before it expires on the emulator's
// clock, and reports it to azcore as due for refresh, so that azcore asks
// it again for every request.
type emuClockCred struct {
	w   *world
	mu  *sync.Mutex
	tok *azcore.AccessToken // ExpiresOn on the emulator's clock
}

func newEmuClockCred(w *world) emuClockCred {
	return emuClockCred{w: w, mu: &sync.Mutex{}, tok: &azcore.AccessToken{}}
}

func (c emuClockCred) GetToken(ctx context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tok.Token == "" || c.w.now().After(c.tok.ExpiresOn.Add(-5*time.Minute)) {
		cred, err := c.w.e.ClientSecretCredential(emuhook.DemoWorkloadClientID)
		if err != nil {
			return azcore.AccessToken{}, err
		}
		tok, err := cred.GetToken(ctx, o)
		if err != nil {
			return azcore.AccessToken{}, err
		}
		// MSAL dated it on the real clock: move it to the emulator's.
		tok.ExpiresOn = tok.ExpiresOn.Add(c.w.now().Sub(time.Now()))
		*c.tok = tok
	}
	out := *c.tok
	out.ExpiresOn = time.Now().Add(time.Second)
	return out, nil
}

const yearCert = "year-cert"

// TestOneYearOfAutoRenewalsWithNoHuman drives a year on the emulator's
// clock, hour by hour: the vault auto-renews a 6-month certificate at 80 %
// of its lifetime (twice in the year), a daily roll registers each new
// version through Graph with a proof signed in Key Vault, the service's
// source switches to it, and the superseded key is removed after the grace
// period. Tokens in three tenants are asked for every simulated hour and
// never fail, and the app never holds fewer than one valid key of the
// certificate.
func TestOneYearOfAutoRenewalsWithNoHuman(t *testing.T) {
	if testing.Short() {
		t.Skip("a simulated year")
	}
	w := newWorld(t, &kvasserttest.Options{TokenLifetime: 24 * time.Hour})
	ctx := context.Background()
	vaultCred := newEmuClockCred(w)

	// A 6-month certificate that renews itself at 80 %; its first version is
	// registered on the app by a person, who also lets the app read its own
	// keys (so kvassert may retire that first key too). The scenario's other
	// certificate is taken off the app: only this one authenticates.
	v1 := createAutoRenewing(t, w, vaultCred)
	for _, k := range w.keys() {
		if err := w.e.RemoveCertificate(scenario.DemoAppClientID, k.Certificate); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.e.RegisterCertificate(scenario.DemoAppClientID, v1); err != nil {
		t.Fatal(err)
	}
	if err := w.e.GrantAppRoles(scenario.DemoAppClientID, "Application.Read.All"); err != nil {
		t.Fatal(err)
	}

	// The service: one source and one credential for the whole year.
	co := w.e.ClientOptions()
	src, err := kvassert.NewKeyVaultCertificateSource(w.e.VaultURL(scenario.DemoVault), yearCert, vaultCred, &kvassert.KeyVaultCertificateOptions{
		ClientOptions: co, TTL: 24 * time.Hour, Clock: w.now, Logger: discard(),
	})
	if err != nil {
		t.Fatal(err)
	}
	tenants := []string{scenario.DemoContosoTenant, emuhook.DemoFabrikamTenant, emuhook.DemoNorthwindTenant}
	cred, err := kvassert.NewCredential(scenario.DemoHomeTenant, scenario.DemoAppClientID, src, &kvassert.CredentialOptions{
		ClientOptions: co, AdditionallyAllowedTenants: tenants, Logger: discard(),
	})
	if err != nil {
		t.Fatal(err)
	}
	credclock.Set(cred, w.now)

	roller := func() *rotation.Roller {
		return w.roller(func(c *config) {
			c.certificate, c.cred, c.Source, c.Logger = yearCert, vaultCred, src, discard()
		})
	}

	var callerErrors, hours, rolls int
	versionsSeen := map[string]bool{}
	signedWith := map[string]bool{}
	minValidKeys := 99
	for day := 0; day < 365; day++ {
		if _, err := roller().Roll(ctx); err != nil {
			t.Errorf("day %d: roll: %v", day, err)
		}
		rolls++
		for h := 0; h < 24; h++ {
			w.advance(time.Hour)
			hours++
			for _, tenant := range tenants {
				if _, err := cred.GetToken(ctx, policy.TokenRequestOptions{TenantID: tenant, Scopes: []string{"https://graph.microsoft.com/.default"}}); err != nil {
					callerErrors++
					if callerErrors <= 3 {
						t.Errorf("day %d hour %d, tenant %s: %v", day, h, tenant, err)
					}
				}
			}
			if n := w.validKeysOf(yearCert); n < minValidKeys {
				minValidKeys = n
			}
		}
		if c, err := rootaccess.Cache(src).Certificate(ctx); err == nil {
			signedWith[c.Version] = true
		}
	}
	st, err := roller().Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st {
		versionsSeen[s.Version] = true
	}
	t.Logf("%d simulated hours, %d token calls (%d token requests, %d keys/sign in all), %d caller errors, %d rolls, %d versions, signed with %d, addKey %d, removeKey %d, min valid keys %d",
		hours, hours*len(tenants), w.e.Count(kvasserttest.OpToken), w.e.Count(kvasserttest.OpKeySign), callerErrors, rolls, len(versionsSeen), len(signedWith),
		w.e.Count(kvasserttest.OpGraphAddKey), w.e.Count(kvasserttest.OpGraphRemoveKey), minValidKeys)
	if callerErrors != 0 {
		t.Errorf("%d caller errors over the year, want 0", callerErrors)
	}
	if len(versionsSeen) != 3 || len(signedWith) != 3 {
		t.Errorf("%d versions in the vault, %d used to sign; want 3 and 3 (two renewals)", len(versionsSeen), len(signedWith))
	}
	if a, r := w.e.Count(kvasserttest.OpGraphAddKey), w.e.Count(kvasserttest.OpGraphRemoveKey); a != 2 || r != 2 {
		t.Errorf("addKey %d, removeKey %d; want 2 and 2", a, r)
	}
	if minValidKeys < 1 {
		t.Error("the app was left without a valid key of the certificate")
	}
	if keys := w.keysOf(yearCert); len(keys) != 1 || !keys[0].Certificate.Equal(st[0].Certificate) {
		t.Errorf("the app holds %d keys of the certificate at the end, want only the newest", len(keys))
	}
}

func createAutoRenewing(t *testing.T, w *world, cred azcore.TokenCredential) *x509.Certificate {
	t.Helper()
	c, err := azcertificates.NewClient(w.e.VaultURL(scenario.DemoVault), cred, &azcertificates.ClientOptions{ClientOptions: w.e.ClientOptions()})
	if err != nil {
		t.Fatal(err)
	}
	f, months, pct, size := false, int32(6), int32(80), int32(2048)
	self, subject, rsa := "Self", "CN=kvassert year", azcertificates.KeyTypeRSA
	auto := azcertificates.CertificatePolicyActionAutoRenew
	_, err = c.CreateCertificate(context.Background(), yearCert, azcertificates.CreateCertificateParameters{CertificatePolicy: &azcertificates.CertificatePolicy{
		IssuerParameters: &azcertificates.IssuerParameters{Name: &self},
		KeyProperties:    &azcertificates.KeyProperties{Exportable: &f, KeyType: &rsa, KeySize: &size},
		X509CertificateProperties: &azcertificates.X509CertificateProperties{Subject: &subject, ValidityInMonths: &months,
			KeyUsage: []*azcertificates.KeyUsageType{ptr(azcertificates.KeyUsageTypeDigitalSignature)}},
		LifetimeActions: []*azcertificates.LifetimeAction{{Action: &azcertificates.LifetimeActionType{ActionType: &auto},
			Trigger: &azcertificates.LifetimeActionTrigger{LifetimePercentage: &pct}}},
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.GetCertificate(context.Background(), yearCert, "", nil)
	if err != nil || len(got.CER) == 0 {
		t.Fatalf("reading the new certificate: %v", err)
	}
	cert, err := x509.ParseCertificate(got.CER)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func ptr[T any](v T) *T { return &v }

// keysOf returns the app's keys whose certificate has the subject of
// yearCert.
func (w *world) keysOf(string) []kvasserttest.KeyCredential {
	var out []kvasserttest.KeyCredential
	for _, k := range w.keys() {
		if strings.Contains(k.Certificate.Subject.String(), "kvassert year") {
			out = append(out, k)
		}
	}
	return out
}

// validKeysOf counts keysOf whose certificate is valid now.
func (w *world) validKeysOf(name string) int {
	n := 0
	now := w.now()
	for _, k := range w.keysOf(name) {
		if !k.Revoked && !now.Before(k.Certificate.NotBefore) && !now.After(k.Certificate.NotAfter) {
			n++
		}
	}
	return n
}
