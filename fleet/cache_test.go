package fleet

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/kvassert/kvassert/internal/redistest"
)

// TestReplicasShareOneAcquisition: 3 replicas (independent caches and
// clients) x 4 concurrent callers x 20 tenants acquire each token once.
func TestReplicasShareOneAcquisition(t *testing.T) {
	srv := redistest.Start(t)
	acq := newAcquirer("fleet")
	acq.delay = 30 * time.Millisecond // acquisitions overlap the waiters
	var caches []*Cache
	for range 3 {
		c, _ := newCache(t, srv, CacheOptions{})
		caches = append(caches, c)
	}
	const tenants, callers = 20, 4
	got := make([][]string, tenants)
	for i := range got {
		got[i] = make([]string, 3*callers)
	}
	var errs atomic.Int64
	parallel(3*callers*tenants, func(i int) {
		tenant, slot := i%tenants, i/tenants
		tok, err := caches[slot%3].Token(context.Background(), testKey(tenantN(tenant)), azcore.AccessToken{}, acq.acquire)
		if err != nil {
			errs.Add(1)
			return
		}
		got[tenant][slot] = tok.Token
	})
	if errs.Load() != 0 {
		t.Fatalf("%d caller errors", errs.Load())
	}
	if n := acq.n.Load(); n != tenants {
		t.Fatalf("acquire called %d times for %d tenants across 3 replicas, want %d; stats %+v %+v %+v", n, tenants, tenants, caches[0].Stats(), caches[1].Stats(), caches[2].Stats())
	}
	for tenant, toks := range got {
		for _, tok := range toks {
			if tok != toks[0] || tok == "" {
				t.Fatalf("tenant %d: replicas got different tokens %q and %q", tenant, toks[0], tok)
			}
		}
	}
	var s Stats
	var woken int64
	for _, c := range caches {
		woken += c.notify.woken.Load()
		cs := c.Stats()
		s.Hits += cs.Hits
		s.LockWaits += cs.LockWaits
		s.Acquired += cs.Acquired
		s.Fallbacks += cs.Fallbacks
		s.Errors += cs.Errors
	}
	if s.Acquired != tenants || s.Hits != 3*callers*tenants-tenants || s.Fallbacks != 0 || s.Errors != 0 {
		t.Fatalf("stats: %+v", s)
	}
	if woken == 0 {
		t.Fatalf("no waiter was woken by pub/sub (%d lock waits)", s.LockWaits)
	}
}

// TestRefreshIsFleetWide: replicas asking to replace the same stale token
// get one new token; a replica asking later picks it up.
func TestRefreshIsFleetWide(t *testing.T) {
	srv := redistest.Start(t)
	a, _ := newCache(t, srv, CacheOptions{})
	b, _ := newCache(t, srv, CacheOptions{})
	c, _ := newCache(t, srv, CacheOptions{})
	acq := newAcquirer("r")
	acq.delay = 30 * time.Millisecond
	key := testKey(tenantN(1))
	t1, err := a.Token(context.Background(), key, azcore.AccessToken{}, acq.acquire)
	if err != nil {
		t.Fatal(err)
	}
	var got [2]azcore.AccessToken
	parallel(2, func(i int) {
		got[i], _ = []*Cache{a, b}[i].Token(context.Background(), key, t1, acq.acquire)
	})
	if acq.n.Load() != 2 || got[0].Token != got[1].Token || got[0].Token == t1.Token {
		t.Fatalf("refresh: %d acquisitions, tokens %q %q (old %q)", acq.n.Load(), got[0].Token, got[1].Token, t1.Token)
	}
	t3, err := c.Token(context.Background(), key, t1, acq.acquire)
	if err != nil || t3.Token != got[0].Token || acq.n.Load() != 2 {
		t.Fatalf("late refresher: %v, %q, %d acquisitions", err, t3.Token, acq.n.Load())
	}
	// A plain miss takes the current token.
	t4, err := c.Token(context.Background(), key, azcore.AccessToken{}, acq.acquire)
	if err != nil || t4.Token != got[0].Token || acq.n.Load() != 2 {
		t.Fatalf("miss after refresh: %v, %q", err, t4.Token)
	}
}

// TestStoredWithTokenLife: the entry's PX is the token's remaining life,
// and tokens too short-lived are not stored at all.
func TestStoredWithTokenLife(t *testing.T) {
	srv, raw := startRaw(t)
	c, _ := newCache(t, srv, CacheOptions{})
	acq := newAcquirer("px")
	key := testKey(tenantN(1))
	tok, err := c.Token(context.Background(), key, azcore.AccessToken{}, acq.acquire)
	if err != nil {
		t.Fatal(err)
	}
	tk, _ := keysFor(DefaultPrefix, testNameKey, key)
	pttl, err := raw.PTTL(context.Background(), tk.value).Result()
	if err != nil {
		t.Fatal(err)
	}
	life := time.Until(tok.ExpiresOn)
	if d := pttl - life; d > time.Second || d < -5*time.Second {
		t.Fatalf("PTTL %s, token life %s", pttl, life)
	}
	if n, _ := raw.Exists(context.Background(), tk.lock).Result(); n != 0 {
		t.Fatal("the lock outlived the acquisition")
	}
	short := newAcquirer("short")
	short.life = 30 * time.Second // under MinRemaining (1 min)
	key2 := testKey(tenantN(2))
	if _, err := c.Token(context.Background(), key2, azcore.AccessToken{}, short.acquire); err != nil {
		t.Fatal(err)
	}
	tk2, _ := keysFor(DefaultPrefix, testNameKey, key2)
	if n, _ := raw.Exists(context.Background(), tk2.value, tk2.lock).Result(); n != 0 {
		t.Fatalf("a 30 s token was stored (%d keys)", n)
	}
	// Keys are namespaced by prefix and app, and hash-tagged per token.
	if !strings.HasPrefix(tk.value, "kvassert:"+testClientID+"@login.microsoftonline.com:{") || strings.Contains(tk.value, tenantN(1)) {
		t.Fatalf("key name %q", tk.value)
	}
}

// TestLockOwnerDies: the owner's process dies mid-acquisition (its client
// is gone, so its lock is no longer renewed); another replica takes over
// once the lock expires.
func TestLockOwnerDies(t *testing.T) {
	srv, raw := startRaw(t)
	const lockTTL = 600 * time.Millisecond
	a, ca := newCache(t, srv, CacheOptions{LockTTL: lockTTL})
	b, _ := newCache(t, srv, CacheOptions{LockTTL: lockTTL})
	key := testKey(tenantN(1))
	tk, _ := keysFor(DefaultPrefix, testNameKey, key)
	started := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go a.Token(ctx, key, azcore.AccessToken{}, func(ctx context.Context) (azcore.AccessToken, error) {
		close(started)
		<-ctx.Done() // hangs, as a dying process would
		return azcore.AccessToken{}, ctx.Err()
	})
	<-started
	if n, _ := raw.Exists(context.Background(), tk.lock).Result(); n != 1 {
		t.Fatal("the owner holds no lock")
	}
	ca.Close() // the owner's connection to Redis dies with it
	acq := newAcquirer("b")
	begin := time.Now()
	tok, err := b.Token(context.Background(), key, azcore.AccessToken{}, acq.acquire)
	took := time.Since(begin)
	if err != nil || tok.Token == "" || acq.n.Load() != 1 {
		t.Fatalf("takeover: %v, %d acquisitions", err, acq.n.Load())
	}
	if took > lockTTL+3*time.Second {
		t.Fatalf("takeover took %s with a lock TTL of %s", took, lockTTL)
	}
	if s := b.Stats(); s.LockWaits != 1 || s.Takeovers != 1 || s.Fallbacks != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// TestOwnerRenewsItsLock: an acquisition longer than the lock TTL keeps
// the lock (renewed), so the waiting replica does not acquire too.
func TestOwnerRenewsItsLock(t *testing.T) {
	srv := redistest.Start(t)
	// Renewal every second; a scheduling stall of 2 s would be needed to
	// lose the lock (600 ms, with a 900 ms TTL, was seen under -race on a
	// busy 2-core machine).
	a, _ := newCache(t, srv, CacheOptions{LockTTL: 3 * time.Second})
	b, _ := newCache(t, srv, CacheOptions{LockTTL: 3 * time.Second})
	acq := newAcquirer("slow")
	acq.delay = 6500 * time.Millisecond // more than 2 lock TTLs
	key := testKey(tenantN(1))
	var toks [2]azcore.AccessToken
	parallel(2, func(i int) {
		if i == 1 {
			time.Sleep(100 * time.Millisecond) // a first
		}
		toks[i], _ = []*Cache{a, b}[i].Token(context.Background(), key, azcore.AccessToken{}, acq.acquire)
	})
	if acq.n.Load() != 1 || toks[0].Token != toks[1].Token {
		t.Fatalf("%d acquisitions (want 1), tokens %q %q", acq.n.Load(), toks[0].Token, toks[1].Token)
	}
}

// TestFailedAcquisitionIsNotShared: the owner's error goes to its caller;
// a waiting replica then tries itself.
func TestFailedAcquisitionIsNotShared(t *testing.T) {
	srv := redistest.Start(t)
	a, _ := newCache(t, srv, CacheOptions{})
	b, _ := newCache(t, srv, CacheOptions{})
	key := testKey(tenantN(1))
	boom := errors.New("AADSTS700016: not consented")
	var errA, errB error
	var calls atomic.Int64
	parallel(2, func(i int) {
		_, err := []*Cache{a, b}[i].Token(context.Background(), key, azcore.AccessToken{}, func(context.Context) (azcore.AccessToken, error) {
			calls.Add(1)
			time.Sleep(50 * time.Millisecond)
			return azcore.AccessToken{}, boom
		})
		if i == 0 {
			errA = err
		} else {
			errB = err
		}
	})
	if !errors.Is(errA, boom) || !errors.Is(errB, boom) || calls.Load() != 2 {
		t.Fatalf("errors %v / %v, %d calls", errA, errB, calls.Load())
	}
}

// TestClaimsTokensAreNotShared: a claims challenge's token is acquired
// locally each time and never written to Redis.
func TestClaimsTokensAreNotShared(t *testing.T) {
	srv, raw := startRaw(t)
	a, _ := newCache(t, srv, CacheOptions{})
	acq := newAcquirer("claims")
	key := testKey(tenantN(1))
	key.Claims = `{"access_token":{"nbf":{"essential":true,"value":"1"}}}`
	for range 2 {
		if _, err := a.Token(context.Background(), key, azcore.AccessToken{}, acq.acquire); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := raw.DBSize(context.Background()).Result(); n != 0 || acq.n.Load() != 2 || a.Stats().Bypassed != 2 {
		t.Fatalf("%d keys in Redis, %d acquisitions, stats %+v", n, acq.n.Load(), a.Stats())
	}
}

// TestWaitHonoursContext: a waiter whose context ends gets its error.
func TestWaitHonoursContext(t *testing.T) {
	srv, raw := startRaw(t)
	b, _ := newCache(t, srv, CacheOptions{})
	key := testKey(tenantN(1))
	tk, _ := keysFor(DefaultPrefix, testNameKey, key)
	raw.Set(context.Background(), tk.lock, "someone-else", 10*time.Second) // a live owner's (LockTTL)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	acq := newAcquirer("b")
	_, err := b.Token(ctx, key, azcore.AccessToken{}, acq.acquire)
	if !errors.Is(err, context.DeadlineExceeded) || acq.n.Load() != 0 {
		t.Fatalf("got %v, %d acquisitions", err, acq.n.Load())
	}
	// With a short WaitTimeout it acquires locally instead.
	c, _ := newCache(t, srv, CacheOptions{WaitTimeout: 100 * time.Millisecond})
	if _, err := c.Token(context.Background(), key, azcore.AccessToken{}, acq.acquire); err != nil || acq.n.Load() != 1 || c.Stats().Fallbacks != 1 {
		t.Fatalf("wait timeout: %v, %d acquisitions, %+v", err, acq.n.Load(), c.Stats())
	}
}

// TestPanickingAcquireStopsRenewing: a panic in acquire reaches the caller,
// and the lock is no longer renewed, so another replica takes over.
func TestPanickingAcquireStopsRenewing(t *testing.T) {
	srv := redistest.Start(t)
	a, _ := newCache(t, srv, CacheOptions{LockTTL: 300 * time.Millisecond})
	b, _ := newCache(t, srv, CacheOptions{LockTTL: 300 * time.Millisecond})
	key := testKey(tenantN(1))
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("the panic did not reach the caller")
			}
		}()
		a.Token(context.Background(), key, azcore.AccessToken{}, func(context.Context) (azcore.AccessToken, error) { panic("boom") })
	}()
	acq := newAcquirer("b")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := b.Token(ctx, key, azcore.AccessToken{}, acq.acquire); err != nil || acq.n.Load() != 1 || b.Stats().Takeovers != 1 {
		t.Fatalf("after a panicking owner: %v, %d acquisitions, %+v", err, acq.n.Load(), b.Stats())
	}
}

// TestOnlyTheOwnerReleases: a replica whose lock expired and was taken
// over neither releases nor renews the new owner's lock, even when it
// stores its token.
func TestOnlyTheOwnerReleases(t *testing.T) {
	srv, raw := startRaw(t)
	ctx := context.Background()
	a, _ := newCache(t, srv, CacheOptions{})
	tk, _ := keysFor(DefaultPrefix, testNameKey, testKey(tenantN(1)))
	raw.Set(ctx, tk.lock, "new-owner", 5*time.Second)
	a.release(ctx, tk, "old-owner")
	// own() stores and releases; the acquire stands in for a slow one
	// whose lock was taken over.
	if _, err := a.own(ctx, tk, "old-owner", "", newAcquirer("old").acquire); err != nil {
		t.Fatal(err)
	}
	if err := renewScript.Run(ctx, raw, []string{tk.lock}, "old-owner", 60_000).Err(); err != nil {
		t.Fatal(err)
	}
	owner, err := raw.Get(ctx, tk.lock).Result()
	if err != nil || owner != "new-owner" {
		t.Fatalf("the lock is now %q (%v); the old owner released it", owner, err)
	}
	if pttl, _ := raw.PTTL(ctx, tk.lock).Result(); pttl > 5*time.Second {
		t.Fatalf("the old owner renewed the new owner's lock to %s", pttl)
	}
	a.release(ctx, tk, "new-owner")
	if n, _ := raw.Exists(ctx, tk.lock).Result(); n != 0 {
		t.Fatal("the owner could not release its lock")
	}
}

// TestCallerThatGaveUpDoesNotAcquire: when the caller's context has ended
// (which also ends its Redis call), the cache returns the context's error
// instead of acquiring locally for nobody, and Redis is not blamed.
func TestCallerThatGaveUpDoesNotAcquire(t *testing.T) {
	srv := redistest.Start(t)
	c, _ := newCache(t, srv, CacheOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	acq := newAcquirer("gave-up")
	_, err := c.Token(ctx, testKey(tenantN(1)), azcore.AccessToken{}, acq.acquire)
	if !errors.Is(err, context.Canceled) || acq.n.Load() != 0 || c.Stats().Errors != 0 {
		t.Fatalf("got %v, %d acquisitions, stats %+v; want context.Canceled, none, no Redis error", err, acq.n.Load(), c.Stats())
	}
}
