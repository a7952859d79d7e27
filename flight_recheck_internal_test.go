package kvassert

import (
	"context"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// A caller that missed the cache just before the acquisition it would have
// joined stored its token reaches the single flight after that flight
// ended. It must take the stored token, not start a second acquisition:
// 1,000 concurrent cold callers otherwise made, now and then, two signs and
// two tokens (TestConcurrentMissesShareOneAcquisition: "callers got
// different tokens"). The window is replayed here deterministically by
// calling shared, what GetToken calls after its miss, once the first
// acquisition has cached its token.
func TestMissAfterTheFlightStoredJoinsItsToken(t *testing.T) {
	e := kvasserttest.NewTB(t, scenario.Demo(), nil)
	vaultCred, err := e.ClientSecretCredential(emuhook.DemoWorkloadClientID)
	if err != nil {
		t.Fatal(err)
	}
	src, err := NewKeyVaultCertificateSource(e.VaultURL(scenario.DemoVault), scenario.DemoCertificate, vaultCred, nil)
	if err != nil {
		t.Fatal(err)
	}
	cred, err := NewCredential(scenario.DemoHomeTenant, scenario.DemoAppClientID, src,
		&CredentialOptions{ClientOptions: e.ClientOptions(), AdditionallyAllowedTenants: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const scope = "https://graph.microsoft.com/.default"
	first, err := cred.GetToken(ctx, policy.TokenRequestOptions{TenantID: scenario.DemoContosoTenant, Scopes: []string{scope}})
	if err != nil {
		t.Fatal(err)
	}
	signs, posts := e.Count(kvasserttest.OpKeySign), e.Count(kvasserttest.OpToken)
	late, err := cred.shared(ctx, flightKey{cacheKey: cacheKey{tenant: scenario.DemoContosoTenant, scope: scope}})
	if err != nil {
		t.Fatal(err)
	}
	if late.Token != first.Token {
		t.Error("the late caller got another token than the one the flight stored")
	}
	if s, p := e.Count(kvasserttest.OpKeySign)-signs, e.Count(kvasserttest.OpToken)-posts; s != 0 || p != 0 {
		t.Errorf("the late caller made %d signs and %d token requests, want 0 and 0", s, p)
	}
}
