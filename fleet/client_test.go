package fleet

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/redis/go-redis/v9"

	"github.com/kvassert/kvassert/internal/redistest"
)

func TestNewClientFromURL(t *testing.T) {
	c, err := NewClient("rediss://app-user:s3cret@cache.example.com:6380/2")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rc, ok := c.(*redis.Client)
	if !ok {
		t.Fatalf("%T", c)
	}
	o := rc.Options()
	if o.Addr != "cache.example.com:6380" || o.Username != "app-user" || o.Password != "s3cret" || o.DB != 2 || o.TLSConfig == nil || o.TLSConfig.ServerName != "cache.example.com" || !o.ContextTimeoutEnabled || o.MaxRetries > 0 {
		t.Fatalf("options %+v", o)
	}
	cl, err := NewClient("redis://a:7000,b:7001?cluster=true")
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	cc, ok := cl.(*redis.ClusterClient)
	if !ok || !cc.Options().ContextTimeoutEnabled || len(cc.Options().Addrs) != 2 {
		t.Fatalf("cluster: %T", cl)
	}
	sn, err := NewClient("redis://s1:26379,s2:26379?master_name=mymaster")
	if err != nil {
		t.Fatal(err)
	}
	sn.Close()
	for _, bad := range []string{"http://x:1", "redis://", "rediss://u:s3cret@h:1/x/y", "redis://h:1/0?cluster=true&db=3", "not a url\x7f"} {
		_, err := NewClient(bad)
		if err == nil {
			t.Errorf("%q accepted", bad)
		} else if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%q: the error shows the password: %v", bad, err)
		}
	}
}

// TestThroughSentinel: a client from a Sentinel URL finds the master and
// the cache shares tokens through it.
func TestThroughSentinel(t *testing.T) {
	srv := redistest.Start(t)
	sn := redistest.StartSentinel(t, srv, "mymaster")
	var caches []*Cache
	for range 2 {
		c, err := NewClient(sn.URL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		cache, err := NewCache(c, Options{Keyring: mustRing(t, mustKey(t, "k1", 1)), OpTimeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		caches = append(caches, cache)
	}
	acq := newAcquirer("sentinel")
	key := testKey(tenantN(1))
	ta, errA := caches[0].Token(context.Background(), key, azcore.AccessToken{}, acq.acquire)
	tb, errB := caches[1].Token(context.Background(), key, azcore.AccessToken{}, acq.acquire)
	if errA != nil || errB != nil || ta.Token != tb.Token || acq.n.Load() != 1 || caches[0].Stats().Fallbacks != 0 {
		t.Fatalf("%v %v, %d acquisitions, %+v", errA, errB, acq.n.Load(), caches[0].Stats())
	}
	// The token is on the master the sentinel named.
	if n, _ := srv.Client().DBSize(context.Background()).Result(); n != 1 {
		t.Fatalf("%d keys on the master", n)
	}
}
