package fleet

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/internal/redistest"
)

var zeroToken azcore.AccessToken

// keysFor names k's Redis keys as c does.
func (c *Cache) keysFor(t *testing.T, k kvassert.SharedKey) tokenKeys {
	t.Helper()
	tk, err := keysFor(c.prefix, c.ring.nameKey(), k)
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

// TestPoisonedHoldOffIsBoundedAndReleased (issue 18, defect 4): a hold-off
// key written with a 720 h TTL (whatever its value or type) holds signers
// off for at most MaxHoldOff, and deleting it releases a waiting signer at
// once (it re-reads Redis instead of trusting a copied deadline).
func TestPoisonedHoldOffIsBoundedAndReleased(t *testing.T) {
	srv, raw := startRaw(t)
	ctx := context.Background()
	a := newThrottle(t, srv, ThrottleOptions{MaxHoldOff: 2 * time.Second})
	month := 720 * time.Hour
	poisons := []func() error{
		func() error { return raw.Set(ctx, a.holdKey, "1", month).Err() },
		func() error {
			return raw.Set(ctx, a.holdKey, strconv.FormatInt(time.Now().Add(month).UnixMilli(), 10), month).Err()
		},
		func() error {
			if err := raw.HSet(ctx, a.holdKey, "until", "99999999999999").Err(); err != nil {
				return err
			}
			return raw.PExpire(ctx, a.holdKey, month).Err()
		},
		func() error { return raw.Set(ctx, a.holdKey, "garbage\x00\xff", 0).Err() }, // no expiry at all
	}
	for i, poison := range poisons {
		raw.Del(ctx, a.holdKey)
		if err := poison(); err != nil {
			t.Fatal(err)
		}
		// A deadline far beyond the bound, far below the poison.
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := a.Wait(wctx)
		cancel()
		if err != nil {
			t.Fatalf("poison %d: Wait with a hold-off key of TTL %v: %v; want a sign after at most the 2s bound", i, month, err)
		}
		if ttl := raw.PTTL(ctx, a.holdKey).Val(); ttl > 2*time.Second {
			t.Fatalf("poison %d: the hold-off key still lives %v; want it cut to the bound", i, ttl)
		}
	}

	// Deleting the key releases a waiting signer, even with a long bound.
	b := newThrottle(t, srv, ThrottleOptions{MaxHoldOff: time.Minute})
	if err := raw.Set(ctx, b.holdKey, "1", month).Err(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- b.Wait(ctx) }()
	for deadline := time.Now().Add(30 * time.Second); b.Stats().HoldOffs == 0; {
		if time.Now().After(deadline) {
			t.Fatal("b never saw the hold-off")
		}
		time.Sleep(10 * time.Millisecond)
	}
	raw.Del(ctx, b.holdKey)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second): // safety bound; the re-check interval is about 1 s
		t.Fatal("the hold-off key was deleted, and the waiting signer was still held off 20 s later: it trusts a copied deadline")
	}
}

// TestLockWithoutExpiryIsTakenOver (issue 18, defect 6): a lock key with no
// expiry, or with a TTL far beyond LockTTL, is taken over (compare-and-delete)
// instead of stalling the acquisition for WaitTimeout, and the token is
// stored for the other replicas.
func TestLockWithoutExpiryIsTakenOver(t *testing.T) {
	srv, raw := startRaw(t)
	ctx := context.Background()
	o := CacheOptions{LockTTL: time.Second, WaitTimeout: 10 * time.Second}
	a, _ := newCache(t, srv, o)
	b, _ := newCache(t, srv, o)
	for i, ttl := range []time.Duration{0, 720 * time.Hour} {
		k := testKey(tenantN(i))
		tk := a.keysFor(t, k)
		if err := raw.Set(ctx, tk.lock, "someone-long-gone", ttl).Err(); err != nil {
			t.Fatal(err)
		}
		acqA := newAcquirer("a")
		if _, err := a.Token(ctx, k, zeroToken, acqA.acquire); err != nil {
			t.Fatal(err)
		}
		if s := a.Stats(); s.Fallbacks != 0 {
			t.Fatalf("lock TTL %v: %d fallbacks (the wait for a dead lock ran out); want the lock taken over", ttl, s.Fallbacks)
		}
		acqB := newAcquirer("b")
		if _, err := b.Token(ctx, k, zeroToken, acqB.acquire); err != nil {
			t.Fatal(err)
		}
		if n := acqB.n.Load(); n != 0 {
			t.Fatalf("lock TTL %v: the other replica acquired %d times; want the taken-over token stored and shared", ttl, n)
		}
	}
}

// TestWaitTimeoutTokenIsStored (issue 18, defect 6): a replica that waited
// WaitTimeout for a lock that stays alive acquires on its own and stores the
// token, so that the other replicas do not each wait and acquire too.
func TestWaitTimeoutTokenIsStored(t *testing.T) {
	srv, raw := startRaw(t)
	ctx := context.Background()
	o := CacheOptions{LockTTL: 5 * time.Second, WaitTimeout: 300 * time.Millisecond}
	a, _ := newCache(t, srv, o)
	b, _ := newCache(t, srv, o)
	k := testKey(tenantN(7))
	tk := a.keysFor(t, k)
	// A live owner's lock (within LockTTL), kept alive for the test.
	if err := raw.Set(ctx, tk.lock, "hung-owner", 9*time.Second).Err(); err != nil {
		t.Fatal(err)
	}
	acqA := newAcquirer("a")
	if _, err := a.Token(ctx, k, zeroToken, acqA.acquire); err != nil {
		t.Fatal(err)
	}
	if s := a.Stats(); s.Fallbacks != 1 {
		t.Fatalf("stats %+v; want one fallback after the wait timeout", s)
	}
	acqB := newAcquirer("b")
	if _, err := b.Token(ctx, k, zeroToken, acqB.acquire); err != nil {
		t.Fatal(err)
	}
	if n := acqB.n.Load(); n != 0 {
		t.Fatalf("the other replica acquired %d times; want the token acquired after the wait timeout stored and shared", n)
	}
}

// TestKeyWithoutSourceIsNotShared (issue 18, defect 3): a key that names no
// Source is never shared: each replica acquires its own token and nothing
// is written to Redis.
func TestKeyWithoutSourceIsNotShared(t *testing.T) {
	srv := redistest.Start(t)
	a, _ := newCache(t, srv, CacheOptions{})
	b, _ := newCache(t, srv, CacheOptions{})
	k := testKey(tenantN(1))
	k.Source = ""
	acq := newAcquirer("x")
	for _, c := range []*Cache{a, b} {
		if _, err := c.Token(context.Background(), k, zeroToken, acq.acquire); err != nil {
			t.Fatal(err)
		}
		if s := c.Stats(); s.Bypassed != 1 || s.Hits != 0 {
			t.Fatalf("stats %+v; want the call bypassed", s)
		}
	}
	if n := acq.n.Load(); n != 2 {
		t.Fatalf("%d acquisitions, want 2", n)
	}
	if keys := rawClient(srv).Keys(context.Background(), "*").Val(); len(keys) != 0 {
		t.Fatalf("Redis holds %v; want nothing", keys)
	}
}
