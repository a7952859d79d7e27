package tenants_test

import (
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
	"github.com/kvassert/kvassert/tenants"
)

// BenchmarkCheckCached: the cost of a tenant's report when its token is
// cached (the steady state of a health check), next to the bare cached
// GetToken it is built on. Neither signs nor sends anything.
func BenchmarkCheckCached(b *testing.B) {
	w := world(b, nil)
	want := &tenants.Want{Roles: map[string][]string{graph: {"Sites.Read.All"}}}
	opts := policy.TokenRequestOptions{TenantID: scenario.DemoContosoTenant, Scopes: []string{graph + "/.default"}}
	if _, err := w.Cred.GetToken(b.Context(), opts); err != nil {
		b.Fatal(err)
	}
	w.Emu.ResetCounts()
	b.Run("GetToken", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := w.Cred.GetToken(b.Context(), opts); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Check", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			r, err := tenants.Check(b.Context(), w.Cred, scenario.DemoContosoTenant, want)
			if err != nil || r.State != tenants.StateOK || !r.FromCache {
				b.Fatal(r, err)
			}
		}
	})
	if n := w.Emu.Count(kvasserttest.OpKeySign); n != 0 {
		b.Fatalf("%d signs", n)
	}
}
