package fleet

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/internal/redistest"
)

// realisticToken is as long as an Entra app-only access token for Graph
// (about 1,800 characters of JWT).
var realisticToken = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9." + strings.Repeat("a", 1700) + ".sig"

// BenchmarkRedisServedMiss is a local miss served by Redis (warm): one
// round trip and one AES-GCM open. It reports the p50/p99 latency and the
// bytes one token takes in Redis (MEMORY USAGE of its entry).
func BenchmarkRedisServedMiss(b *testing.B) {
	srv := redistest.Start(b)
	cache, _ := newCache(b, srv, CacheOptions{OpTimeout: 100 * time.Millisecond})
	ctx := context.Background()
	key := testKey(tenantN(1))
	tok := azcore.AccessToken{Token: realisticToken, ExpiresOn: time.Now().Add(time.Hour)}
	if _, err := cache.Token(ctx, key, azcore.AccessToken{}, func(context.Context) (azcore.AccessToken, error) { return tok, nil }); err != nil {
		b.Fatal(err)
	}
	tk, _ := keysFor(DefaultPrefix, testNameKey, key)
	mem, err := rawClient(srv).MemoryUsage(ctx, tk.value).Result()
	if err != nil {
		b.Fatal(err)
	}
	fail := func(context.Context) (azcore.AccessToken, error) {
		return azcore.AccessToken{}, errors.New("not served from Redis")
	}
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		begin := time.Now()
		if _, err := cache.Token(ctx, key, azcore.AccessToken{}, fail); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(begin))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(mem), "redis-bytes/token")
	b.ReportMetric(float64(len(realisticToken)), "token-chars")
}

// BenchmarkFleetAcquire is a fleet-wide cold miss by the lock owner: read,
// lock, acquire (free here), store with release and publish.
func BenchmarkFleetAcquire(b *testing.B) {
	srv := redistest.Start(b)
	cache, _ := newCache(b, srv, CacheOptions{OpTimeout: 100 * time.Millisecond})
	ctx := context.Background()
	tok := azcore.AccessToken{Token: realisticToken, ExpiresOn: time.Now().Add(time.Hour)}
	acquire := func(context.Context) (azcore.AccessToken, error) { return tok, nil }
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		i++
		if _, err := cache.Token(ctx, testKey(tenantN(i)), azcore.AccessToken{}, acquire); err != nil {
			b.Fatal(err)
		}
	}
	if s := cache.Stats(); s.Fallbacks != 0 || s.Acquired != int64(i) {
		b.Fatalf("stats %+v after %d", s, i)
	}
}

// BenchmarkRefusalRead is a Refusal for a tenant with no refusal in force:
// one round trip (a credential pays it when it consults the fleet before
// acquiring). The Refuse sub-benchmark moves the epoch and stores a
// refusal: one round trip and one AES-GCM seal.
func BenchmarkRefusalRead(b *testing.B) {
	srv := redistest.Start(b)
	cache, _ := newCache(b, srv, CacheOptions{OpTimeout: 100 * time.Millisecond})
	ctx := context.Background()
	key := tenantOf(testKey(tenantN(1)))
	b.Run("none", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok, err := cache.Refusal(ctx, key); ok || err != nil {
				b.Fatal(ok, err)
			}
		}
	})
	b.Run("Refuse", func(b *testing.B) {
		r := kvassert.TenantRefusal{Code: 700016, Until: time.Now().Add(time.Hour), Failures: 1}
		b.ReportAllocs()
		for b.Loop() {
			if err := cache.Refuse(ctx, key, r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("in-force", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok, err := cache.Refusal(ctx, key); !ok || err != nil {
				b.Fatal(ok, err)
			}
		}
	})
}
