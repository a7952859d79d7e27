package tenants_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/internal/testfixture"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
	"github.com/kvassert/kvassert/tenants"
)

const graph = "https://graph.microsoft.com"

// TestCheckThousandTenants: 1,000 customer tenants, mixed: healthy (some
// with a cached token), unconsented. Every report is classified right, and
// the Key Vault signs are exactly the tenants without a cached token.
func TestCheckThousandTenants(t *testing.T) {
	s, ids := testfixture.ManyTenants(1000)
	w := world(t, &testfixture.WorldOptions{Scenario: s})
	want := map[string]string{}
	for i, id := range ids {
		switch i % 4 {
		case 0:
			if err := w.Emu.SetConsent(scenario.DemoAppClientID, id, false); err != nil {
				t.Fatal(err)
			}
			want[id] = "app_not_found"
		default:
			want[id] = tenants.StateOK
		}
	}
	// A third of the healthy tenants already have a token.
	cached := map[string]bool{}
	for i, id := range ids {
		if want[id] == tenants.StateOK && i%3 == 0 {
			if _, err := w.Cred.GetToken(t.Context(), policy.TokenRequestOptions{TenantID: id, Scopes: []string{graph + "/.default"}}); err != nil {
				t.Fatal(err)
			}
			cached[id] = true
		}
	}
	w.Emu.ResetCounts()
	reports, err := tenants.CheckAll(t.Context(), w.Cred, ids, &tenants.Want{Roles: map[string][]string{graph: {"Sites.Read.All"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range reports {
		id := ids[i]
		if r.Tenant != id || r.State != want[id] || r.FromCache != cached[id] {
			t.Fatalf("%s: %+v, want state %s, from cache %v", id, r, want[id], cached[id])
		}
		switch r.State {
		case tenants.StateOK:
			if len(r.Resources) != 1 || len(r.Resources[0].Granted) != 2 || r.Err != nil || r.ConsentURL != "" {
				t.Fatalf("%s: %+v", id, r)
			}
		default:
			var ae *kvassert.AuthError
			if !errors.As(r.Err, &ae) || ae.Code != 700016 || r.Code != 700016 || r.Hint == "" || r.ConsentURL == "" {
				t.Fatalf("%s: %+v", id, r)
			}
		}
	}
	if got, wantSigns := w.Emu.Count(kvasserttest.OpKeySign), int64(len(ids)-len(cached)); got != wantSigns {
		t.Fatalf("%d Key Vault signs, want %d (tenants without a cached token)", got, wantSigns)
	}
	// Second run: the healthy tenants are all cached now.
	w.Emu.ResetCounts()
	again, err := tenants.CheckAll(t.Context(), w.Cred, ids, nil, &tenants.CheckOptions{Concurrency: 32})
	if err != nil {
		t.Fatal(err)
	}
	refused := 0
	for i, r := range again {
		if r.State != want[ids[i]] {
			t.Fatalf("second run %s: %+v", ids[i], r)
		}
		if r.State == tenants.StateOK && !r.FromCache {
			t.Fatalf("second run %s: not from cache", ids[i])
		}
		if r.State != tenants.StateOK {
			refused++
		}
	}
	if got := w.Emu.Count(kvasserttest.OpKeySign); got > int64(refused) {
		t.Fatalf("second run: %d signs, want at most %d (the refused tenants)", got, refused)
	}
	t.Logf("second run: %d signs for %d refused tenants", w.Emu.Count(kvasserttest.OpKeySign), refused)
}

// TestCheckStates: missing roles, a tenant not allowed, an unreachable
// tenant, and a panicking ConsentURL func.
func TestCheckStates(t *testing.T) {
	w := world(t, &testfixture.WorldOptions{AllowedTenants: []string{scenario.DemoContosoTenant, "wingtip.onmicrosoft.com"}})
	want := &tenants.Want{Roles: map[string][]string{graph + "/": {"User.Read.All", "Sites.Read.All"}},
		ConsentURL: func(tenant string) (string, error) { return "https://app.example.com/onboard?tenant=" + tenant, nil }}
	r, err := tenants.Check(t.Context(), w.Cred, scenario.DemoContosoTenant, want)
	if err != nil {
		t.Fatal(err)
	}
	if r.State != tenants.StateMissingRoles || fmt.Sprint(r.Resources[0].Missing) != "[User.Read.All]" || r.ConsentURL != "https://app.example.com/onboard?tenant="+scenario.DemoContosoTenant || r.FromCache {
		t.Fatalf("%+v", r)
	}
	r, err = tenants.Check(t.Context(), w.Cred, "fabrikam.onmicrosoft.com", nil)
	if err != nil || r.State != "not_allowed" || r.Hint == "" {
		t.Fatalf("%+v %v", r, err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	r, err = tenants.Check(ctx, w.Cred, "wingtip.onmicrosoft.com", nil)
	if err != nil || r.State != tenants.StateUnreachable || r.Error == "" {
		t.Fatalf("%+v %v", r, err)
	}
	reports, err := tenants.CheckAll(t.Context(), w.Cred, []string{"wingtip.onmicrosoft.com"}, &tenants.Want{ConsentURL: func(string) (string, error) { panic(secret) }}, nil)
	if err != nil || reports[0].State != tenants.StateUnreachable || reports[0].Error != "tenants: the check panicked" {
		t.Fatalf("%+v %v", reports, err)
	}
}
