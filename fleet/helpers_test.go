package fleet

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/redis/go-redis/v9"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/internal/redistest"
)

const (
	testClientID = "6d2f4a8b-1c3e-4f5a-9b7d-2e4f6a8c0b16"
	testScope    = "https://graph.microsoft.com/.default"
)

func testKey(tenant string) kvassert.SharedKey {
	return kvassert.SharedKey{ClientID: testClientID, Authority: "login.microsoftonline.com", Tenant: tenant, Scope: testScope, Source: "test-source"}
}

func tenantN(i int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", i) }

// mustKey makes a key whose secret is 32 copies of b.
func mustKey(t testing.TB, id string, b byte) *Key {
	t.Helper()
	secret := make([]byte, KeySize)
	for i := range secret {
		secret[i] = b
	}
	k, err := NewKey(id, secret)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustRing(t testing.TB, active *Key, older ...*Key) *keyring {
	t.Helper()
	r, err := newKeyring(active, older...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// newClient makes a client as NewClient does, closed when the test ends.
func newClient(t testing.TB, srv *redistest.Server) redis.UniversalClient {
	t.Helper()
	c, err := NewClient(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// newCache is one replica: its own client and cache. keys[0] encrypts (key
// "k1", 32 bytes of 1, when none), the others only decrypt.
func newCache(t testing.TB, srv *redistest.Server, o CacheOptions, keys ...*Key) (*Cache, redis.UniversalClient) {
	t.Helper()
	if len(keys) == 0 {
		keys = []*Key{mustKey(t, "k1", 1)}
	}
	o.OlderKeys = keys[1:]
	if o.OpTimeout == 0 {
		// Generous: -race on two cores shared with other jobs (load
		// average above 10) is slow, and a burst of first operations
		// queues for pooled connections. Fault tests set their own.
		o.OpTimeout = 5 * time.Second
	}
	c := newClient(t, srv)
	cache, err := NewCache(c, keys[0], &o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cache.Close() })
	return cache, c
}

// acquirer counts and answers acquisitions with unique tokens.
type acquirer struct {
	n     atomic.Int64
	life  time.Duration
	delay time.Duration
	name  string
}

func newAcquirer(name string) *acquirer { return &acquirer{life: time.Hour, name: name} }

func (a *acquirer) acquire(ctx context.Context) (azcore.AccessToken, error) {
	n := a.n.Add(1)
	if a.delay > 0 {
		select {
		case <-time.After(a.delay):
		case <-ctx.Done():
			return azcore.AccessToken{}, ctx.Err()
		}
	}
	return azcore.AccessToken{Token: fmt.Sprintf("token-%s-%d-%d", a.name, n, time.Now().UnixNano()), ExpiresOn: time.Now().Add(a.life).Truncate(time.Millisecond)}, nil
}

// parallel runs f(i) for i in [0, n) at once and waits.
func parallel(n int, f func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			f(i)
		}()
	}
	close(start)
	wg.Wait()
}

func newUnboundedClient(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{Addr: addr})
}

// testNameKey names entries as a cache with the default test keyring
// (newCache: key "k1", 32 bytes of 1) does.
var testNameKey = func() []byte {
	secret := make([]byte, KeySize)
	for i := range secret {
		secret[i] = 1
	}
	k, err := NewKey("k1", secret)
	if err != nil {
		panic(err)
	}
	return k.names
}()

func redisZ(score float64, member string) redis.Z { return redis.Z{Score: score, Member: member} }
