package benchmarks_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/internal/testfixture"
	"github.com/kvassert/kvassert/kvasserttest"
)

// BenchmarkRefusedTenants: one op is one round of GetToken over 1,000
// tenants of which 100 refuse the app (never consented: AADSTS700016),
// after a warm-up round that cached the 900 tokens. "remembered" is the
// credential as it is (refused tenants remembered, back-off from 5 s to an
// hour); "not-remembered" is RefusedTenantRetry negative, the behaviour
// before issue 21: every call for a refusing tenant signs an assertion in
// Key Vault and sends a token request. Metrics: Key Vault signs and token
// requests per round.
func BenchmarkRefusedTenants(b *testing.B) {
	const n, refusing = 1000, 100
	s, tenants := testfixture.ManyTenants(n)
	s.Apps[0].ConsentedTenants = s.Apps[0].ConsentedTenants[:len(s.Apps[0].ConsentedTenants)-refusing]
	e := kvasserttest.NewTB(b, s, nil)
	opts := testfixture.Opts("")
	for _, arm := range []struct {
		name  string
		retry time.Duration
	}{{"remembered", 0}, {"not-remembered", -1}} {
		cred, _ := testfixture.Credential(b, e, func(o *kvassert.CredentialOptions) { o.RefusedTenantRetry = arm.retry })
		ctx := context.Background()
		round := func(b *testing.B) {
			failed := 0
			for _, t := range tenants {
				opts.TenantID = t
				if _, err := cred.GetToken(ctx, opts); err != nil {
					var ae *kvassert.AuthError
					if !errors.As(err, &ae) || ae.Code != 700016 {
						b.Fatal(err)
					}
					failed++
				}
			}
			if failed != refusing {
				b.Fatalf("%d tenants failed, want %d", failed, refusing)
			}
		}
		b.Run(arm.name, func(b *testing.B) {
			round(b) // warm: the 900 tokens, and the 100 refusals once
			signs := e.Count(kvasserttest.OpKeySign)
			reqs := e.Count(kvasserttest.OpToken)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				round(b)
			}
			b.StopTimer()
			b.ReportMetric(float64(e.Count(kvasserttest.OpKeySign)-signs)/float64(b.N), "signs/op")
			b.ReportMetric(float64(e.Count(kvasserttest.OpToken)-reqs)/float64(b.N), "token-requests/op")
		})
	}
}
