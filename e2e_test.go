package kvassert_test

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/assertion"
	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/internal/rootaccess"
	"github.com/kvassert/kvassert/internal/testcert"
	"github.com/kvassert/kvassert/internal/testfixture"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

const graph = "https://graph.microsoft.com/.default"

// claimsOf decodes an access token's payload (test helper; tokens are not
// verified here, see kvasserttest for that).
func claimsOf(t testing.TB, tok string) map[string]any {
	t.Helper()
	var m map[string]any
	testfixture.DecodeJWT(t, tok, &m)
	return m
}

type demoEnv struct {
	emu  *kvasserttest.Emulator
	src  *kvassert.KeyVaultCertificateSource
	cred *kvassert.Credential
}

func newDemo(t testing.TB, allowed ...string) demoEnv {
	t.Helper()
	w := testfixture.NewWorld(t, &testfixture.WorldOptions{AllowedTenants: allowed})
	return demoEnv{emu: w.Emu, src: w.Src, cred: w.Cred}
}

func TestTokensForThreeTenants(t *testing.T) {
	d := newDemo(t)
	ctx := context.Background()
	for _, tenant := range []string{scenario.DemoContosoTenant, emuhook.DemoFabrikamTenant, emuhook.DemoNorthwindTenant} {
		tok, err := d.cred.GetToken(ctx, policy.TokenRequestOptions{TenantID: tenant, Scopes: []string{graph}})
		if err != nil {
			t.Fatalf("tenant %s: %v", tenant, err)
		}
		c := claimsOf(t, tok.Token)
		if c["tid"] != tenant || c["appid"] != scenario.DemoAppClientID || c["aud"] != "https://graph.microsoft.com" {
			t.Fatalf("tenant %s: claims %v", tenant, c)
		}
	}
	t.Logf("counts: %v", d.emu.Counts())
}

func TestTenantNotAllowedMakesNoCall(t *testing.T) {
	d := newDemo(t, scenario.DemoContosoTenant)
	_, err := d.cred.GetToken(context.Background(), policy.TokenRequestOptions{TenantID: emuhook.DemoFabrikamTenant, Scopes: []string{graph}})
	if err == nil || !strings.Contains(err.Error(), "AdditionallyAllowedTenants") {
		t.Fatalf("err = %v", err)
	}
	if n := len(d.emu.Counts()); n != 0 {
		t.Fatalf("a refused tenant caused requests: %v", d.emu.Counts())
	}
}

func TestTenantWithoutConsentGetsHint(t *testing.T) {
	d := newDemo(t)
	_, err := d.cred.GetToken(context.Background(), policy.TokenRequestOptions{TenantID: emuhook.DemoWingtipTenant, Scopes: []string{graph}})
	var ae *kvassert.AuthError
	if !errors.As(err, &ae) || ae.Code != 700016 {
		t.Fatalf("err = %v, want AuthError 700016", err)
	}
	for _, want := range []string{"AADSTS700016", "hint: the app is not registered or not consented", "adminconsent?client_id=" + scenario.DemoAppClientID} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	assertNoSecrets(t, err.Error())
	// Not a rotation case: the certificate is read once, not re-read.
	if n := d.emu.Count(kvasserttest.OpCertificateGet); n != 1 {
		t.Fatalf("certificate reads = %d, want 1", n)
	}
}

// assertNoSecrets fails if s looks like it holds a JWT or a client secret.
func assertNoSecrets(t testing.TB, s string) {
	t.Helper()
	if strings.Contains(s, "eyJ") || strings.Contains(s, emuhook.DemoWorkloadSecret) {
		t.Fatalf("output holds a token, assertion or secret:\n%s", s)
	}
}

func TestRotationRecoversWithoutRestart(t *testing.T) {
	d := newDemo(t)
	ctx := context.Background()
	if _, err := d.cred.GetToken(ctx, policy.TokenRequestOptions{TenantID: scenario.DemoContosoTenant, Scopes: []string{graph}}); err != nil {
		t.Fatal(err)
	}
	old, err := d.emu.Certificate(scenario.DemoVault, scenario.DemoCertificate)
	if err != nil {
		t.Fatal(err)
	}
	newCert := rotate(t, d.emu, scenario.DemoVault, scenario.DemoCertificate)
	if err := d.emu.RegisterCertificate(scenario.DemoAppClientID, newCert); err != nil {
		t.Fatal(err)
	}
	if err := d.emu.RemoveCertificate(scenario.DemoAppClientID, old); err != nil {
		t.Fatal(err)
	}
	// The source still holds the old version (TTL not reached): Entra answers
	// AADSTS700027, the source re-reads and the request is retried once.
	tok, err := d.cred.GetToken(ctx, policy.TokenRequestOptions{TenantID: emuhook.DemoFabrikamTenant, Scopes: []string{graph}})
	if err != nil {
		t.Fatalf("after rotation: %v", err)
	}
	if claimsOf(t, tok.Token)["tid"] != emuhook.DemoFabrikamTenant {
		t.Fatal("wrong tenant")
	}
	if n := d.emu.Count(kvasserttest.OpCertificateGet); n != 2 {
		t.Fatalf("certificate reads = %d, want 2 (initial + after 700027)", n)
	}
	cur, err := rootaccess.Cache(d.src).Certificate(ctx)
	if err != nil || !cur.Certificate.Equal(newCert) {
		t.Fatalf("source did not move to the new version: %v", err)
	}
}

// rotate creates a new version of a vault certificate with the SDK and
// returns it once the vault has completed it.
func rotate(t testing.TB, e *kvasserttest.Emulator, vault, name string) *x509.Certificate {
	t.Helper()
	return testfixture.Rotate(t, e, vault, name)
}

func TestExpiredCertificateRefusedLocally(t *testing.T) {
	d := newDemo(t)
	ctx := context.Background()
	testfixture.Import(t, d.emu, "expired", testcert.New(t, &testcert.Options{Serial: 7, CommonName: "expired",
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)}))
	src := testfixture.NewSource(t, d.emu, "expired", nil)
	c := testfixture.NewCredential(t, d.emu, src, func(o *kvassert.CredentialOptions) { o.AdditionallyAllowedTenants = nil })
	signs, posts := d.emu.Count(kvasserttest.OpKeySign), d.emu.Count(kvasserttest.OpToken)
	_, err := c.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{graph}})
	if !errors.Is(err, assertion.ErrCertificateNotValid) {
		t.Fatalf("err = %v, want ErrCertificateNotValid", err)
	}
	if d.emu.Count(kvasserttest.OpKeySign) != signs || d.emu.Count(kvasserttest.OpToken) != posts {
		t.Fatal("an expired certificate still caused a sign or a token request")
	}
}

func TestKeyVaultFaultsSurvived(t *testing.T) {
	for _, f := range []kvasserttest.Fault{
		{Status: 429, RetryAfter: time.Second, Times: 1},
		{Status: 429, Times: 1}, // real throttling answers carry no Retry-After
		{Status: 503, Times: 1},
		{Status: 500, Times: 1},
		{Drop: true, Times: 1},
	} {
		t.Run(fmt.Sprintf("status%d_drop%v_retryafter%v", f.Status, f.Drop, f.RetryAfter), func(t *testing.T) {
			d := newDemo(t)
			d.emu.InjectFault(kvasserttest.OpKeySign, f)
			tok, err := d.cred.GetToken(context.Background(), policy.TokenRequestOptions{TenantID: scenario.DemoContosoTenant, Scopes: []string{graph}})
			if err != nil {
				t.Fatal(err)
			}
			if claimsOf(t, tok.Token)["tid"] != scenario.DemoContosoTenant {
				t.Fatal("wrong tenant")
			}
			if n := d.emu.Count(kvasserttest.OpKeySign); n != 2 {
				t.Fatalf("signs = %d, want 2 (one faulted, one retried)", n)
			}
		})
	}
}

func TestCancelledContextReturnsPromptly(t *testing.T) {
	d := newDemo(t)
	d.emu.InjectFault(kvasserttest.OpKeySign, kvasserttest.Fault{Latency: 3 * time.Second, Times: 1})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := d.cred.GetToken(ctx, policy.TokenRequestOptions{TenantID: scenario.DemoContosoTenant, Scopes: []string{graph}})
		done <- err
	}()
	waitFor(t, func() bool { return d.emu.Count(kvasserttest.OpKeySign) == 1 }) // the sign is in flight
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	case <-time.After(2 * time.Second): // a hang guard, not a performance claim
		t.Fatal("GetToken did not return after its context was cancelled while Key Vault was still answering")
	}
}

// waitFor polls cond for up to 10 s.
func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10 s")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// A cold token for a new tenant costs one Key Vault call and one token
// request: the certificate is read once per process and the tenant's OpenID
// configuration is derived, not fetched.
func TestColdTokenCostsOneSignAndOneRoundTrip(t *testing.T) {
	d := newDemo(t)
	ctx := context.Background()
	// Once per process: the certificate read and each SDK client's challenge.
	if _, err := d.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{graph}}); err != nil {
		t.Fatal(err)
	}
	for _, tenant := range []string{scenario.DemoContosoTenant, emuhook.DemoFabrikamTenant} {
		d.emu.ResetCounts()
		if _, err := d.cred.GetToken(ctx, policy.TokenRequestOptions{TenantID: tenant, Scopes: []string{graph}}); err != nil {
			t.Fatal(err)
		}
		want := map[kvasserttest.Op]int64{kvasserttest.OpKeySign: 1, kvasserttest.OpToken: 1}
		if got := d.emu.Counts(); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("cold token for %s made %v, want %v", tenant, got, want)
		}
	}
	// Unknown tenants are still reported, by the token endpoint.
	_, err := d.cred.GetToken(ctx, policy.TokenRequestOptions{TenantID: "00000000-0000-4000-8000-000000000000", Scopes: []string{graph}})
	var ae *kvassert.AuthError
	if !errors.As(err, &ae) || ae.Code != 90002 {
		t.Fatalf("unknown tenant: %v, want AADSTS90002", err)
	}
	// With FetchOpenIDConfiguration MSAL fetches it: two round trips.
	c2, _ := kvassert.NewCredential(scenario.DemoHomeTenant, scenario.DemoAppClientID, d.src,
		&kvassert.CredentialOptions{ClientOptions: d.emu.ClientOptions(), AdditionallyAllowedTenants: []string{"*"}, FetchOpenIDConfiguration: true})
	d.emu.ResetCounts()
	if _, err := c2.GetToken(ctx, policy.TokenRequestOptions{TenantID: emuhook.DemoNorthwindTenant, Scopes: []string{graph}}); err != nil {
		t.Fatal(err)
	}
	if d.emu.Count(kvasserttest.Op("entra/discovery")) != 1 || d.emu.Count(kvasserttest.OpToken) != 1 {
		t.Fatalf("FetchOpenIDConfiguration: %v", d.emu.Counts())
	}
}

func TestForTenantPinsTheTenant(t *testing.T) {
	d := newDemo(t, scenario.DemoContosoTenant)
	view, err := kvassert.ForTenant(d.cred, scenario.DemoContosoTenant)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := view.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{graph}}) // as the Graph SDK asks
	if err != nil {
		t.Fatal(err)
	}
	if claimsOf(t, tok.Token)["tid"] != scenario.DemoContosoTenant {
		t.Fatal("the view did not pin its tenant")
	}
	if _, err := kvassert.ForTenant(d.cred, emuhook.DemoFabrikamTenant); err == nil {
		t.Fatal("a view on a tenant the credential does not allow was created")
	}
}

// A caller whose deadline passes while Key Vault throttles is told so.
func TestCallerLearnsOfThrottling(t *testing.T) {
	d := newDemo(t)
	ctx := context.Background()
	if _, err := d.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{graph}}); err != nil { // warm: certificate read
		t.Fatal(err)
	}
	d.emu.InjectFault(kvasserttest.OpKeySign, kvasserttest.Fault{Status: 429, RetryAfter: time.Second, Times: 3})
	short, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
	defer cancel()
	_, err := d.cred.GetToken(short, policy.TokenRequestOptions{TenantID: scenario.DemoContosoTenant, Scopes: []string{graph}})
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "Key Vault has been throttling signs") {
		t.Fatalf("err = %v, want the deadline and the throttling named", err)
	}
	// The acquisition went on: once the vault stops throttling the token is there.
	waitFor(t, func() bool {
		_, err := d.cred.GetToken(ctx, policy.TokenRequestOptions{TenantID: scenario.DemoContosoTenant, Scopes: []string{graph}})
		return err == nil
	})
	c, err := rootaccess.Cache(d.src).Certificate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, throttled := c.Signer.ThrottledSince(); throttled {
		t.Fatal("still reported as throttled after a successful sign")
	}
}
