package kvassert

import (
	"testing"
	"time"
)

// TestSupersededEntryIsNotRefreshedAgain: a caller that read a cache entry
// before a background refresh replaced it, and won the entry's refresh flag
// after that refresh finished (and reset it), must not start a second
// refresh of the superseded entry: that is a second Key Vault sign and token
// request for nothing (seen under load as 21 signs for 20 tenants in
// internal/reliability's refresh-ahead test). The late caller is replayed
// here step by step, without timing.
func TestSupersededEntryIsNotRefreshedAgain(t *testing.T) {
	v := newLifecycleEnv(t, 3600, 0)
	v.get(t, testOther)
	key := cacheKey{tenant: testOther, scope: testScope}
	old := v.c.cache.get(key)
	v.advance(56 * time.Minute)
	v.get(t, testOther) // starts the refresh and waits for it to finish
	if v.c.cache.get(key) == old {
		t.Fatal("the refresh did not replace the cached entry")
	}
	requests, refreshes := v.entra.requests.Load(), v.c.refreshes.Load()
	// The late caller still holds old, past its refresh time, with the flag
	// free again: it wins the flag and starts a refresh, as GetToken does.
	if !old.refreshing.CompareAndSwap(false, true) {
		t.Fatal("the finished refresh left the flag set")
	}
	v.c.refresh(key, old)
	if n := v.entra.requests.Load() - requests; n != 0 {
		t.Errorf("%d token requests for a superseded entry, want none", n)
	}
	if n := v.c.refreshes.Load() - refreshes; n != 0 {
		t.Errorf("%d refreshes counted for a superseded entry, want none", n)
	}
	if old.refreshing.Load() {
		t.Error("the skipped refresh left the flag set")
	}
}
