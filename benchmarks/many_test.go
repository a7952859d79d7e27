package benchmarks_test

import (
	"context"
	"io"
	"log/slog"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/internal/rootaccess"
	fixture "github.com/kvassert/kvassert/internal/testfixture"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// BenchmarkManyTenantsCold: 10,000 tenants, none cached, fetched by 256
// concurrent callers that retry a failed GetToken after 1 s until it
// succeeds, under the vault's sign limit (4,000 per 10 s, answered 429
// without Retry-After as the real service does) and, for comparison, with no
// limit (what this machine and the emulator manage by themselves); then
// 2,000 tenants under a quarter of the limit, which binds on this machine.
//
// Metrics: s-to-all (wall time until every tenant has a token), floor-s (the
// least time the limit allows: floor((n-1)/4000) windows of 10 s), 429s (sign
// requests the vault refused: sign requests minus token POSTs, as every
// admitted sign leads to exactly one POST), caller-errors (GetToken calls
// that failed and were retried by the caller), signs/token, posts/token and
// B/tenant (heap the credential retains per cached tenant: HeapAlloc with
// the credential alive minus after dropping it, both after runtime.GC).
//
// Takes about a minute per sub-benchmark; run with -benchtime=1x. Skipped in
// -short.
func BenchmarkManyTenantsCold(b *testing.B) {
	if testing.Short() {
		b.Skip("10,000 cold tenants take about a minute")
	}
	const callers = 256
	cases := []struct {
		name   string
		n      int
		limit  int
		window time.Duration
	}{
		{"tenants=10000/limit=4000per10s", 10000, 4000, 10 * time.Second},
		{"tenants=10000/nolimit", 10000, 0, 0},
		// This machine and the emulator make fewer than 400 tokens a second,
		// so the real limit never binds here; a quarter of it does.
		{"tenants=2000/limit=100per1s", 2000, 100, time.Second},
	}
	for _, c := range cases {
		n, limit, window := c.n, c.limit, c.window
		s, tenants := fixture.ManyTenants(n)
		b.Run(c.name, func(b *testing.B) {
			if b.N != 1 {
				b.Fatal("run with -benchtime=1x: each run needs 10,000 new tenants")
			}
			e := kvasserttest.NewTB(b, s, nil)
			logger := slog.New(slog.NewTextHandler(io.Discard, nil))
			cred, src := fixture.Credential(b, e, func(o *kvassert.CredentialOptions) { o.Logger = logger })
			if _, err := rootaccess.Cache(src).Certificate(context.Background()); err != nil { // certificate read and vault token, once
				b.Fatal(err)
			}
			if limit > 0 {
				if err := e.SetSignLimit(scenario.DemoVault, limit, window); err != nil {
					b.Fatal(err)
				}
			}
			e.ResetCounts()
			goroutinesBefore := runtime.NumGoroutine()

			var callerErrors atomic.Int64
			start := time.Now()
			b.ResetTimer()
			fixture.Spread(n, callers, func(i int) bool {
				if tid := fixture.TokenRetrying(context.Background(), cred, tenants[i], func() { callerErrors.Add(1) }); tid != tenants[i] {
					b.Errorf("asked %s, got tid %s", tenants[i], tid)
				}
				return true
			})
			elapsed := time.Since(start)
			b.StopTimer()

			signs, posts := e.Count(kvasserttest.OpKeySign), e.Count(kvasserttest.OpToken)
			b.ReportMetric(elapsed.Seconds(), "s-to-all")
			if limit > 0 {
				b.ReportMetric(float64((n-1)/limit)*window.Seconds(), "floor-s")
			}
			b.ReportMetric(float64(signs-posts), "429s")
			b.ReportMetric(float64(callerErrors.Load()), "caller-errors")
			b.ReportMetric(float64(signs)/float64(n), "signs/token")
			b.ReportMetric(float64(posts)/float64(n), "posts/token")
			b.ReportMetric(float64(e.Count(kvasserttest.Op("entra/discovery")))/float64(n), "discovery/token")
			if got := rootaccess.CredentialStats(cred).CachedTokens; got != n {
				b.Errorf("%d tokens cached, want %d", got, n)
			}

			// Memory the credential retains per cached tenant.
			runtime.GC()
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			withCred := m.HeapAlloc
			if _, err := cred.GetToken(context.Background(), fixture.Opts(tenants[0])); err != nil { // keep cred alive until here
				b.Fatal(err)
			}
			cred, src = nil, nil
			runtime.GC()
			runtime.GC()
			runtime.ReadMemStats(&m)
			b.ReportMetric(float64(int64(withCred)-int64(m.HeapAlloc))/float64(n), "B/tenant")
			b.Logf("%s: %v to all, %d signs (%d refused), %d token POSTs, %d caller errors, goroutines %d -> %d",
				c.name, elapsed.Round(time.Millisecond), signs, signs-posts, posts, callerErrors.Load(), goroutinesBefore, runtime.NumGoroutine())
		})
	}
}
