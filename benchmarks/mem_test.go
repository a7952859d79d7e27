package benchmarks_test

import (
	"context"
	"runtime"
	"testing"

	"github.com/kvassert/kvassert/internal/testfixture"
)

// BenchmarkMemoryPerTenant: heap retained per cached tenant (metric
// B/tenant) after 2,000 tenants were fetched, for kvassert, azidentity's
// ClientCertificateCredential and one MSAL Go client: HeapAlloc with the
// credential alive minus after dropping it, both after runtime.GC. Run with
// -benchtime=1x; skipped in -short.
func BenchmarkMemoryPerTenant(b *testing.B) {
	const n = 2000
	e, tenants := manyTenantWorld(b, n, "warms 2,000 tenants per alternative")
	alts := []struct {
		name string
		make func() (getter, any)
	}{
		{"kvassert", func() (getter, any) { c, _ := testfixture.Credential(b, e, nil); return credGetter(c), c }},
		{"azidentity-cert", func() (getter, any) { c := testfixture.AzidentityLocal(b, e); return credGetter(c), c }},
		{"msal", func() (getter, any) { c := testfixture.MSALLocal(b, e); return msalGetter(c), &c }},
	}
	for _, a := range alts {
		b.Run(a.name, func(b *testing.B) {
			get, keep := a.make()
			warm(b, get, tenants, 32)
			runtime.GC()
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			alive := m.HeapAlloc
			if _, err := get(context.Background(), tenants[0], ""); err != nil {
				b.Fatal(err)
			}
			runtime.KeepAlive(keep)
			get, keep = nil, nil
			runtime.GC()
			runtime.GC()
			runtime.ReadMemStats(&m)
			b.ReportMetric(float64(int64(alive)-int64(m.HeapAlloc))/n, "B/tenant")
		})
	}
}
