package tenants_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kvassert/kvassert/internal/credclock"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/internal/testfixture"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
	"github.com/kvassert/kvassert/tenants"
)

const graph = "https://graph.microsoft.com"

// TestCheckThousandTenants: 1,000 customer tenants, mixed: healthy,
// unconsented, disabled, missing a role (a third of those with tokens have
// one cached). Every report is classified right, and the Key Vault signs
// are exactly the tenants without a cached token; a second run signs
// nothing (tokens cached, refusals remembered).
func TestCheckThousandTenants(t *testing.T) {
	s, ids := testfixture.ManyTenants(1000)
	w := world(t, &testfixture.WorldOptions{Scenario: s})
	// The credential's clock stands still, so that the refusals it
	// remembers in the first run (5 s at first) still hold in the second,
	// however slow this machine is.
	start := time.Now()
	credclock.Set(w.Cred, func() time.Time { return start })
	want := map[string]string{}
	for i, id := range ids {
		var err error
		switch i % 5 {
		case 0:
			err = w.Emu.SetConsent(scenario.DemoAppClientID, id, false)
			want[id] = "app_not_found"
		case 1:
			err = w.Emu.SetServicePrincipalEnabled(scenario.DemoAppClientID, id, false)
			want[id] = "app_disabled"
		case 2:
			err = w.Emu.SetGrantedRoles(scenario.DemoAppClientID, id, "Organization.Read.All")
			want[id] = tenants.StateMissingRoles
		default:
			want[id] = tenants.StateOK
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	// A third of the healthy tenants already have a token.
	cached := map[string]bool{}
	for i, id := range ids {
		if (want[id] == tenants.StateOK || want[id] == tenants.StateMissingRoles) && i%3 == 0 {
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
			if len(r.Resources) != 1 || fmt.Sprint(r.Resources[0].Granted) != "[Organization.Read.All Sites.Read.All]" || r.Err != nil || r.ConsentURL != "" {
				t.Fatalf("%s: %+v", id, r)
			}
		case tenants.StateMissingRoles:
			if fmt.Sprint(r.Resources[0].Granted) != "[Organization.Read.All]" || fmt.Sprint(r.Resources[0].Missing) != "[Sites.Read.All]" || r.Err != nil ||
				!strings.Contains(r.ConsentURL, "/"+id+"/adminconsent?client_id=") { // no Want.RedirectURI: the v1 link
				t.Fatalf("%s: %+v", id, r)
			}
		default:
			code := map[string]int{"app_not_found": 700016, "app_disabled": 7000112}[r.State]
			var ae *kvassert.AuthError
			if !errors.As(r.Err, &ae) || ae.Code != code || r.Code != code || r.Hint == "" || (r.ConsentURL == "") != (code == 7000112) {
				t.Fatalf("%s: %+v", id, r)
			}
		}
	}
	if got, wantSigns := w.Emu.Count(kvasserttest.OpKeySign), int64(len(ids)-len(cached)); got != wantSigns {
		t.Fatalf("%d Key Vault signs, want %d (tenants without a cached token)", got, wantSigns)
	}
	// Second run: the tenants with a token have it cached, and the
	// credential remembers the refusals: no sign at all.
	w.Emu.ResetCounts()
	again, err := tenants.CheckAll(t.Context(), w.Cred, ids, &tenants.Want{Roles: map[string][]string{graph: {"Sites.Read.All"}}}, &tenants.CheckOptions{Concurrency: 32})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range again {
		id := ids[i]
		if r.State != want[id] {
			t.Fatalf("second run %s: %+v", id, r)
		}
		if ok := r.State == tenants.StateOK || r.State == tenants.StateMissingRoles; ok != r.FromCache || ok == !r.RefusedUntil.IsZero() {
			t.Fatalf("second run %s: from cache %v, refused until %v", id, r.FromCache, r.RefusedUntil)
		}
	}
	if got := w.Emu.Count(kvasserttest.OpKeySign); got != 0 {
		t.Fatalf("second run: %d signs, want 0", got)
	}
}
