package kvassert

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
)

func TestTokenCacheGetPutReplace(t *testing.T) {
	c := newTokenCache()
	k := cacheKey{tenant: "t", scope: "s/.default"}
	if c.get(k) != nil {
		t.Fatal("empty cache returned an entry")
	}
	c.put(k, newEntry(azcore.AccessToken{Token: "one", ExpiresOn: time.Now().Add(time.Hour)}, time.Now()), time.Now().UnixNano())
	c.put(k, newEntry(azcore.AccessToken{Token: "two", ExpiresOn: time.Now().Add(time.Hour)}, time.Now()), time.Now().UnixNano())
	if e := c.get(k); e == nil || e.tok.Token != "two" || c.len() != 1 {
		t.Fatalf("replace failed: %+v len=%d", e, c.len())
	}
	for _, other := range []cacheKey{{tenant: "t", scope: "x/.default"}, {tenant: "u", scope: "s/.default"}, {tenant: "t", scope: "s/.default", cae: true}} {
		if c.get(other) != nil {
			t.Fatalf("key %+v found an entry of another key", other)
		}
	}
}

// Keys that collide on the 64-bit hash stay apart through put, replace and get.
func TestTokenCacheCollisionChains(t *testing.T) {
	c := newTokenCache()
	c.collide = true
	keys := []cacheKey{{tenant: "a", scope: "s"}, {tenant: "b", scope: "s"}, {tenant: "c", scope: "s"}}
	for i, k := range keys {
		c.put(k, newEntry(azcore.AccessToken{Token: fmt.Sprint(i), ExpiresOn: time.Now().Add(time.Hour)}, time.Now()), time.Now().UnixNano())
	}
	c.put(keys[1], newEntry(azcore.AccessToken{Token: "1b", ExpiresOn: time.Now().Add(time.Hour)}, time.Now()), time.Now().UnixNano())
	for i, want := range []string{"0", "1b", "2"} {
		if e := c.get(keys[i]); e == nil || e.tok.Token != want {
			t.Fatalf("key %d: got %+v, want token %q", i, e, want)
		}
	}
	if c.len() != 3 {
		t.Fatalf("len = %d, want 3", c.len())
	}
	if c.get(cacheKey{tenant: "d", scope: "s"}) != nil {
		t.Fatal("an absent colliding key was found")
	}
}

func TestTokenCacheConcurrentReadersAndWriters(t *testing.T) {
	c := newTokenCache()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				k := cacheKey{tenant: fmt.Sprintf("t%d-%d", w, i), scope: "s/.default"}
				c.put(k, newEntry(azcore.AccessToken{Token: k.tenant, ExpiresOn: time.Now().Add(time.Hour)}, time.Now()), time.Now().UnixNano())
			}
		}()
	}
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				k := cacheKey{tenant: fmt.Sprintf("t%d-%d", i%4, i%500), scope: "s/.default"}
				if e := c.get(k); e != nil && e.tok.Token != k.tenant {
					t.Errorf("key %v returned token of %q", k, e.tok.Token)
					return
				}
			}
		}()
	}
	wg.Wait()
	if c.len() != 2000 {
		t.Fatalf("len = %d, want 2000", c.len())
	}
}

func TestNewEntryTimes(t *testing.T) {
	now := time.Now()
	for _, c := range []struct {
		name             string
		expires, refresh time.Duration // from now; refresh 0 = no RefreshOn
		wantRefreshAt    time.Duration
	}{
		{"1 h token: 5 min before expiry", time.Hour, 0, 55 * time.Minute},
		{"RefreshOn earlier than the margin", 24 * time.Hour, 12 * time.Hour, 12 * time.Hour},
		{"RefreshOn later than the margin", time.Hour, 58 * time.Minute, 55 * time.Minute},
		{"RefreshOn before half-life", 24 * time.Hour, time.Second, 12 * time.Hour},
		{"RefreshOn passed", 24 * time.Hour, -time.Minute, 12 * time.Hour},
		{"4-minute token: half-life", 4 * time.Minute, 0, 2 * time.Minute},
		{"8-minute token: half-life", 8 * time.Minute, 0, 4 * time.Minute},
		{"12-minute token: margin", 12 * time.Minute, 0, 7 * time.Minute},
	} {
		tok := azcore.AccessToken{ExpiresOn: now.Add(c.expires)}
		if c.refresh != 0 {
			tok.RefreshOn = now.Add(c.refresh)
		}
		e := newEntry(tok, now)
		if got := time.Unix(0, e.refreshAt); !got.Equal(now.Add(c.wantRefreshAt)) {
			t.Errorf("%s: refreshAt = now + %v, want now + %v", c.name, got.Sub(now), c.wantRefreshAt)
		}
		if got := time.Unix(0, e.useUntil); !got.Equal(now.Add(c.expires - 30*time.Second)) {
			t.Errorf("%s: useUntil = now + %v", c.name, got.Sub(now))
		}
	}
}

// Eviction through put: entries that can no longer be handed out leave the
// shard that gets the put, and, one shard per put, the others; live ones and
// collision chains survive.
func TestTokenCacheEvictsOnPut(t *testing.T) {
	now := time.Now()
	c := newTokenCache()
	short := func(i int) (cacheKey, *entry) {
		return cacheKey{tenant: fmt.Sprint("short", i), scope: "s"}, newEntry(azcore.AccessToken{Token: "s", ExpiresOn: now.Add(time.Minute)}, now)
	}
	for i := range 500 {
		k, e := short(i)
		c.put(k, e, now.UnixNano())
	}
	long := cacheKey{tenant: "long", scope: "s"}
	c.put(long, newEntry(azcore.AccessToken{Token: "l", ExpiresOn: now.Add(time.Hour)}, now), now.UnixNano())
	if c.len() != 501 {
		t.Fatalf("len = %d", c.len())
	}
	later := now.Add(2 * time.Minute)
	for i := range shardCount {
		k := cacheKey{tenant: fmt.Sprint("new", i%3), scope: "s"}
		c.put(k, newEntry(azcore.AccessToken{Token: "n", ExpiresOn: later.Add(time.Hour)}, later), later.UnixNano())
	}
	if n := c.len(); n != 4 {
		t.Fatalf("after %d puts past the short tokens' expiry len = %d, want 4 (long + 3 new)", shardCount, n)
	}
	if e := c.get(long); e == nil || e.tok.Token != "l" {
		t.Fatal("a live entry was evicted")
	}
	for i := range shardCount {
		if at := c.shards[i].expiresAt.Load(); at <= later.UnixNano() {
			t.Fatalf("shard %d still holds an entry due for eviction", i)
		}
	}

	// Collision chains: the expired member goes, the live ones stay.
	c = newTokenCache()
	c.collide = true
	a, b, d := cacheKey{tenant: "a", scope: "s"}, cacheKey{tenant: "b", scope: "s"}, cacheKey{tenant: "d", scope: "s"}
	c.put(a, newEntry(azcore.AccessToken{Token: "a", ExpiresOn: now.Add(time.Minute)}, now), now.UnixNano())
	c.put(b, newEntry(azcore.AccessToken{Token: "b", ExpiresOn: now.Add(time.Hour)}, now), now.UnixNano())
	c.put(d, newEntry(azcore.AccessToken{Token: "d", ExpiresOn: later.Add(time.Hour)}, later), later.UnixNano())
	if c.get(a) != nil || c.get(b) == nil || c.get(d) == nil || c.len() != 2 {
		t.Fatalf("chain after eviction: a=%v b=%v d=%v len=%d", c.get(a) != nil, c.get(b) != nil, c.get(d) != nil, c.len())
	}
}
