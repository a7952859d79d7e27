package benchmarks_test

import (
	"crypto/rand"
	"testing"
	"time"

	"github.com/kvassert/kvassert/fleet"
	"github.com/kvassert/kvassert/internal/redistest"
)

// sharedCache is a fleet cache on a real redis-server started for b.
func sharedCache(b *testing.B) *fleet.Cache {
	b.Helper()
	srv := redistest.Start(b)
	client, err := fleet.NewClient(srv.URL())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { client.Close() })
	secret := make([]byte, 32)
	rand.Read(secret)
	key, err := fleet.NewKey("k1", secret)
	if err != nil {
		b.Fatal(err)
	}
	cache, err := fleet.NewCache(client, key, &fleet.CacheOptions{OpTimeout: 2 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cache.Close() })
	return cache
}
