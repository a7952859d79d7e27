package fleet

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/kvassert/kvassert/internal/obs"
	"github.com/kvassert/kvassert/internal/obs/obsrec"
	"github.com/kvassert/kvassert/internal/redistest"
)

func pointOf(rm obsrec.Metrics, name, attrs string) (float64, bool) {
	for _, p := range obsrec.Points(rm, name) {
		if obsrec.Attrs(p.Attrs) == attrs {
			return p.Value, true
		}
	}
	return 0, false
}

func dumpPoints(rm obsrec.Metrics, names ...string) string {
	var s string
	for _, n := range names {
		for _, p := range obsrec.Points(rm, n) {
			s += fmt.Sprintf("\n  %s {%s} = %v", n, obsrec.Attrs(p.Attrs), p.Value)
		}
	}
	return s
}

// TestTelemetryLookupsWaitsFallbacks: a miss then a hit are counted as
// lookups; a replica that waits for another's acquisition records its lock
// wait; with Redis gone the lookups fail and the fallbacks are counted.
func TestTelemetryLookupsWaitsFallbacks(t *testing.T) {
	srv := redistest.Start(t)
	r := obsrec.New(t)
	a, _ := newCache(t, srv, CacheOptions{Telemetry: r.Options, OpTimeout: time.Second})
	b, _ := newCache(t, srv, CacheOptions{Telemetry: r.Options, OpTimeout: time.Second})
	acq := newAcquirer("tel")
	ctx := context.Background()
	key := testKey(tenantN(1))
	if _, err := a.Token(ctx, key, azcore.AccessToken{}, acq.acquire); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Token(ctx, key, azcore.AccessToken{}, acq.acquire); err != nil {
		t.Fatal(err)
	}
	// b waits while a holds the lock of tenant 2: a's acquisition ends
	// only once b is waiting.
	started, release := make(chan struct{}), make(chan struct{})
	slow := func(ctx context.Context) (azcore.AccessToken, error) {
		close(started)
		<-release
		return acq.acquire(ctx)
	}
	done := make(chan error, 1)
	go func() {
		_, err := a.Token(ctx, testKey(tenantN(2)), azcore.AccessToken{}, slow)
		done <- err
	}()
	<-started
	go func() {
		for b.Stats().LockWaits == 0 {
			time.Sleep(5 * time.Millisecond)
		}
		close(release)
	}()
	if _, err := b.Token(ctx, testKey(tenantN(2)), azcore.AccessToken{}, acq.acquire); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	rm := r.Collect(t)
	names := []string{obs.MetricSharedCacheLookups, obs.MetricSharedCacheLockWaitDuration, obs.MetricSharedCacheFallbacks}
	if n, _ := pointOf(rm, obs.MetricSharedCacheLookups, "kvassert.shared_cache.outcome=miss"); n != 3 {
		t.Errorf("want 3 misses (tenant 1 by a, tenant 2 by a and b):%s", dumpPoints(rm, names...))
	}
	if n, _ := pointOf(rm, obs.MetricSharedCacheLookups, "kvassert.shared_cache.outcome=hit"); n != 1 {
		t.Errorf("want 1 hit (tenant 1 by b):%s", dumpPoints(rm, names...))
	}
	if n, _ := pointOf(rm, obs.MetricSharedCacheLockWaitDuration, ""); n != 1 {
		t.Errorf("want 1 lock wait (b on tenant 2):%s", dumpPoints(rm, names...))
	}

	srv.Stop()
	if _, err := a.Token(ctx, testKey(tenantN(3)), azcore.AccessToken{}, acq.acquire); err != nil {
		t.Fatalf("with Redis down the token is acquired locally: %v", err)
	}
	rm = r.Collect(t)
	var errLookups, fallbacks float64
	for _, p := range obsrec.Points(rm, obs.MetricSharedCacheLookups) {
		if v, ok := p.Attrs.Value(obs.AttrSharedCacheOutcome); ok && v.AsString() == obs.SharedCacheError {
			if v, ok := p.Attrs.Value(obs.AttrErrorType); !ok || v.AsString() == "" {
				t.Errorf("failed lookup without error.type: {%s}", obsrec.Attrs(p.Attrs))
			}
			errLookups += p.Value
		}
	}
	for _, p := range obsrec.Points(rm, obs.MetricSharedCacheFallbacks) {
		fallbacks += p.Value
	}
	if errLookups != 1 || fallbacks != 1 {
		t.Errorf("Redis down: %v failed lookups, %v fallbacks, want 1 and 1:%s", errLookups, fallbacks, dumpPoints(rm, names...))
	}
}
