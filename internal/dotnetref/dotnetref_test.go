package dotnetref_test

import (
	"context"
	"testing"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"

	"github.com/kvassert/kvassert/internal/dotnetref"
	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/internal/jwtassert"
	"github.com/kvassert/kvassert/internal/testfixture"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// Each strategy gets a token through MSAL Go for a customer tenant with
// exactly the Key Vault calls the .NET library makes, and its assertion has
// the .NET library's header and aud.
func TestStrategiesCallForCall(t *testing.T) {
	e := kvasserttest.NewTB(t, scenario.Demo(), nil)
	vault := func(op kvasserttest.Op) int64 { return e.Count(op) }
	cases := []struct {
		name                string
		src                 func() dotnetref.Source
		certGets, keyGets   int64
		signs, vaultCallsPA int64
	}{
		{"certificate", func() dotnetref.Source { return testfixture.DotnetCertificate(t, e, false) }, 1, 1, 1, 3},
		{"certificate/no-probe", func() dotnetref.Source { return testfixture.DotnetCertificate(t, e, true) }, 1, 0, 1, 2},
		{"key", func() dotnetref.Source { return testfixture.DotnetKey(t, e, false) }, 0, 1, 1, 2},
		{"key/no-probe", func() dotnetref.Source { return testfixture.DotnetKey(t, e, true) }, 0, 0, 1, 1},
	}
	ctx := context.Background()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := c.src()
			// Warm the vault client (challenge + vault token) once.
			if _, err := src.Assertion(ctx, scenario.DemoAppClientID, emuhook.TokenEndpoint(scenario.DemoHomeTenant)); err != nil {
				t.Fatal(err)
			}
			e.ResetCounts()
			a, err := src.Assertion(ctx, scenario.DemoAppClientID, emuhook.TokenEndpoint(scenario.DemoContosoTenant))
			if err != nil {
				t.Fatal(err)
			}
			if g, k, s := vault(kvasserttest.OpCertificateGet), vault(kvasserttest.OpKeyGet), vault(kvasserttest.OpKeySign); g != c.certGets || k != c.keyGets || s != c.signs {
				t.Fatalf("per assertion: %d certificate GETs, %d key GETs, %d signs; want %d, %d, %d", g, k, s, c.certGets, c.keyGets, c.signs)
			}
			if n := testfixture.Sum(e, testfixture.VaultOps); n != c.vaultCallsPA {
				t.Fatalf("%d Key Vault calls per assertion, want %d (%v)", n, c.vaultCallsPA, e.Counts())
			}
			tok, err := jwtassert.Parse(a)
			if err != nil {
				t.Fatal(err)
			}
			cert, err := e.Certificate(scenario.DemoVault, scenario.DemoCertificate)
			if err != nil {
				t.Fatal(err)
			}
			if tok.Header.Alg != "RS256" || tok.Header.X5t != testfixture.X5T(cert) || tok.Header.X5tS256 != "" {
				t.Fatalf("header %+v, want RS256 with the SHA-1 x5t only", tok.Header)
			}
			if len(tok.Claims.Aud) != 1 || tok.Claims.Aud[0] != emuhook.TokenEndpoint(scenario.DemoContosoTenant) {
				t.Fatalf("aud %v", tok.Claims.Aud)
			}
			if got := tok.Claims.Exp - tok.Claims.Nbf; got != int64(dotnetref.Lifetime.Seconds()) {
				t.Fatalf("lifetime %d s, want 300", got)
			}

			// Through MSAL: one token request, the callback's calls once.
			client := testfixture.MSAL(t, e, dotnetref.Credential(src))
			e.ResetCounts()
			res, err := client.AcquireTokenByCredential(ctx, []string{testfixture.Graph}, confidential.WithTenantID(emuhook.DemoFabrikamTenant))
			if err != nil {
				t.Fatal(err)
			}
			if tid, _ := testfixture.TenantOf(res.AccessToken); tid != emuhook.DemoFabrikamTenant {
				t.Fatalf("tid %q", tid)
			}
			if n, p := testfixture.Sum(e, testfixture.VaultOps), e.Count(kvasserttest.OpToken); n != c.vaultCallsPA || p != 1 {
				t.Fatalf("token: %d vault calls, %d token POSTs (%v)", n, p, e.Counts())
			}
		})
	}
}
