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
	c.put(k, newEntry(azcore.AccessToken{Token: "one", ExpiresOn: time.Now().Add(time.Hour)}))
	c.put(k, newEntry(azcore.AccessToken{Token: "two", ExpiresOn: time.Now().Add(time.Hour)}))
	if e := c.get(k); e == nil || e.tok.Token != "two" || c.len() != 1 {
		t.Fatalf("replace failed: %+v len=%d", e, c.len())
	}
	for _, other := range []cacheKey{{tenant: "t", scope: "x/.default"}, {tenant: "u", scope: "s/.default"}, {tenant: "t", scope: "s/.default", claims: "c"}, {tenant: "t", scope: "s/.default", cae: true}} {
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
		c.put(k, newEntry(azcore.AccessToken{Token: fmt.Sprint(i), ExpiresOn: time.Now().Add(time.Hour)}))
	}
	c.put(keys[1], newEntry(azcore.AccessToken{Token: "1b", ExpiresOn: time.Now().Add(time.Hour)}))
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
				c.put(k, newEntry(azcore.AccessToken{Token: k.tenant, ExpiresOn: time.Now().Add(time.Hour)}))
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
	e := newEntry(azcore.AccessToken{ExpiresOn: now.Add(time.Hour)})
	if got := time.Unix(0, e.refreshAt); !got.Equal(now.Add(55 * time.Minute)) {
		t.Errorf("refreshAt = %v, want expiry - 5 min", got)
	}
	if got := time.Unix(0, e.useUntil); !got.Equal(now.Add(time.Hour - 30*time.Second)) {
		t.Errorf("useUntil = %v", got)
	}
	e = newEntry(azcore.AccessToken{ExpiresOn: now.Add(24 * time.Hour), RefreshOn: now.Add(12 * time.Hour)})
	if got := time.Unix(0, e.refreshAt); !got.Equal(now.Add(12 * time.Hour)) {
		t.Errorf("refreshAt with RefreshOn = %v", got)
	}
}
