package fleet

import (
	"context"
	"log/slog"
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
		cache, err := NewCache(c, mustKey(t, "k1", 1), &CacheOptions{OpTimeout: 5 * time.Second})
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
	if n, _ := rawClient(srv).DBSize(context.Background()).Result(); n != 1 {
		t.Fatalf("%d keys on the master", n)
	}
}

// fleetACL is the least an ACL user needs for the cache and the throttle
// under the default prefix (documented in the README).
const fleetACL = "+@connection +get +set +del +pttl +pexpire +strlen +eval +evalsha +publish +subscribe +time +zadd +zcard +zrange +zremrangebyscore ~kvassert:* &kvassert:*"

// TestACLUser: an ACL user limited to the fleet's keys, channels and
// commands runs the cache and the throttle; a wrong password degrades to
// local acquisition without showing the password.
func TestACLUser(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	args := []any{"ACL", "SETUSER", "fleet", "reset", "on", ">fleet-pw"}
	for _, r := range strings.Fields(fleetACL) {
		args = append(args, r)
	}
	if err := rawClient(srv).Do(ctx, args...).Err(); err != nil {
		t.Fatal(err)
	}
	c, err := NewClient("redis://fleet:fleet-pw@" + srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cache, err := NewCache(c, mustKey(t, "k1", 1), &CacheOptions{OpTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	acq := newAcquirer("acl")
	key := testKey(tenantN(1))
	// A second caller waits on the lock: pub/sub and polling under the ACL.
	acq.delay = 50 * time.Millisecond
	parallel(3, func(int) {
		if _, err := cache.Token(ctx, key, azcore.AccessToken{}, acq.acquire); err != nil {
			t.Error(err)
		}
	})
	if s := cache.Stats(); acq.n.Load() != 1 || s.Errors != 0 || s.Fallbacks != 0 {
		t.Fatalf("under the ACL: %d acquisitions, %+v", acq.n.Load(), s)
	}
	th, err := NewThrottle(c, "v.vault.azure.net", &ThrottleOptions{Budget: 10, OpTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	th.Throttled(10 * time.Millisecond)
	if err := th.Wait(ctx); err != nil || th.Stats().Errors != 0 {
		t.Fatalf("throttle under the ACL: %v, %+v", err, th.Stats())
	}
	// Consent states: SET NX PXAT needs nothing beyond +set.
	if fresh, err := cache.StateStore().Use(ctx, strings.Repeat("ab", 16), time.Now().Add(time.Minute)); err != nil || !fresh {
		t.Fatalf("state store under the ACL: %v, %v", fresh, err)
	}
	// The ACL really limits: another prefix is refused.
	if _, err := c.Set(ctx, "other:key", "x", time.Minute).Result(); err == nil || !strings.Contains(err.Error(), "NOPERM") {
		t.Fatalf("the ACL does not restrict keys: %v", err)
	}
	// A wrong password: local acquisition, no error, no password in the log.
	var logs syncBuffer
	bad, err := NewClient("redis://fleet:wrong-pw-123@" + srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	badCache, err := NewCache(bad, mustKey(t, "k1", 1), &CacheOptions{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer badCache.Close()
	if _, err := badCache.Token(ctx, testKey(tenantN(2)), azcore.AccessToken{}, acq.acquire); err != nil || badCache.Stats().Fallbacks != 1 {
		t.Fatalf("wrong password: %v, %+v", err, badCache.Stats())
	}
	if strings.Contains(logs.String(), "wrong-pw-123") || !strings.Contains(logs.String(), "fleet:") {
		t.Fatalf("log: %q", logs.String())
	}
}
