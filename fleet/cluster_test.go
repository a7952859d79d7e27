package fleet

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/kvassert/kvassert/internal/redistest"
)

// TestOnRedisCluster runs the cache and the throttle on a real 3-master
// Redis Cluster: every script's keys share a slot (hash tags), tokens spread
// over the masters, and two replicas still acquire each token once.
func TestOnRedisCluster(t *testing.T) {
	cl := redistest.StartCluster(t, 3)
	var caches []*Cache
	for range 2 {
		c, err := NewClient(cl.URL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		cache, err := NewCache(c, mustKey(t, "k1", 1), &CacheOptions{OpTimeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cache.Close() })
		caches = append(caches, cache)
	}
	acq := newAcquirer("cluster")
	acq.delay = 30 * time.Millisecond
	const tenants = 12
	var errs atomic.Int64
	parallel(4*tenants, func(i int) {
		if _, err := caches[i%2].Token(context.Background(), testKey(tenantN(i%tenants)), azcore.AccessToken{}, acq.acquire); err != nil {
			errs.Add(1)
		}
	})
	if errs.Load() != 0 || acq.n.Load() != tenants {
		t.Fatalf("%d errors, %d acquisitions for %d tenants", errs.Load(), acq.n.Load(), tenants)
	}
	// Pub/sub works across the cluster's nodes: waiters were woken.
	if w := caches[0].notify.woken.Load() + caches[1].notify.woken.Load(); w == 0 {
		t.Fatalf("no waiter woken by pub/sub on the cluster (lock waits %d, %d)", caches[0].Stats().LockWaits, caches[1].Stats().LockWaits)
	}
	holding := 0
	for _, n := range cl.Nodes {
		if k, _ := rawClient(n).DBSize(context.Background()).Result(); k > 0 {
			holding++
		}
	}
	if holding < 2 {
		t.Fatalf("tokens on %d masters; want them spread", holding)
	}
	// A tenant's epoch and refusal live in the slot of its tokens: Refuse
	// on one replica stops the tokens the other was served.
	gone := testKey(tenantN(0))
	before, err := caches[1].Token(context.Background(), gone, azcore.AccessToken{}, acq.acquire)
	if err != nil {
		t.Fatal(err)
	}
	if err := caches[0].Refuse(context.Background(), tenantOf(gone), refusal(700016, time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := caches[1].Refusal(context.Background(), tenantOf(gone)); !ok || err != nil {
		t.Fatalf("refusal on the cluster: %v, %v", ok, err)
	}
	if tok, err := caches[1].Token(context.Background(), gone, azcore.AccessToken{}, acq.acquire); err != nil || tok.Token == before.Token {
		t.Fatalf("a token stored before Refuse was served on the cluster (%v)", err)
	}
	if err := caches[1].Forget(context.Background(), tenantOf(gone)); err != nil {
		t.Fatal(err)
	}
	if s := caches[0].Stats(); s.Errors != 0 {
		t.Fatalf("Redis errors on the cluster: %+v", s)
	}
	c, err := NewClient(cl.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	th, err := NewThrottle(c, "v.vault.azure.net", &ThrottleOptions{Budget: 2, Window: time.Minute, OpTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := th.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := th.Wait(ctx); err == nil || th.Stats().Errors != 0 {
		t.Fatalf("budget on a cluster: %v, %+v", err, th.Stats())
	}
}
