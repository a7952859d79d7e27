package fleet

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/internal/redistest"
)

const nonceA = "00112233445566778899aabbccddeeff"

// TestStateStoreUsesOnceAcrossReplicas: a state is fresh once, then used,
// on the replica that used it and on another one; the nonce never reaches
// Redis in clear, and the name expires with the state (PXAT).
func TestStateStoreUsesOnceAcrossReplicas(t *testing.T) {
	srv := redistest.Start(t)
	a, raw := newCache(t, srv, CacheOptions{})
	b, _ := newCache(t, srv, CacheOptions{})
	ctx := context.Background()
	until := time.Now().Add(10 * time.Minute)
	if fresh, err := a.StateStore().Use(ctx, nonceA, until); err != nil || !fresh {
		t.Fatalf("first use: %v, %v", fresh, err)
	}
	if fresh, err := a.StateStore().Use(ctx, nonceA, until); err != nil || fresh {
		t.Fatalf("second use on the same replica: %v, %v", fresh, err)
	}
	if fresh, err := b.StateStore().Use(ctx, strings.ToUpper(nonceA), until); err != nil || fresh {
		t.Fatalf("replayed to another replica: %v, %v", fresh, err)
	}
	if fresh, err := b.StateStore().Use(ctx, "ff"+nonceA[2:], until); err != nil || !fresh {
		t.Fatalf("another state: %v, %v", fresh, err)
	}
	keys, err := raw.Keys(ctx, "*").Result()
	if err != nil || len(keys) != 2 {
		t.Fatalf("keys %v, %v", keys, err)
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, "kvassert:state:") || strings.Contains(k, nonceA[4:]) {
			t.Fatalf("name %q", k)
		}
		if v, _ := raw.Get(ctx, k).Result(); strings.Contains(v, nonceA[4:]) {
			t.Fatalf("value %q holds the nonce", v)
		}
		pt, err := raw.PTTL(ctx, k).Result()
		if err != nil || pt <= 9*time.Minute || pt > 10*time.Minute {
			t.Fatalf("PTTL %v, %v; want the state's expiry", pt, err)
		}
	}
}

// TestStateStoreExpiry: a used state is forgotten when it expires (Redis
// drops it at its until); an until already past reports the state used; a
// far until is cut to 24 h.
func TestStateStoreExpiry(t *testing.T) {
	srv := redistest.Start(t)
	a, raw := newCache(t, srv, CacheOptions{})
	ctx := context.Background()
	s := a.StateStore()
	if fresh, err := s.Use(ctx, nonceA, time.Now().Add(300*time.Millisecond)); err != nil || !fresh {
		t.Fatalf("first: %v, %v", fresh, err)
	}
	if fresh, _ := s.Use(ctx, nonceA, time.Now().Add(time.Minute)); fresh {
		t.Fatal("used state fresh before its expiry")
	}
	time.Sleep(500 * time.Millisecond)
	if n, _ := raw.DBSize(ctx).Result(); n != 0 {
		t.Fatalf("%d keys after the state expired", n)
	}
	if fresh, err := s.Use(ctx, "ab"+nonceA[2:], time.Now().Add(-time.Second)); err != nil || fresh {
		t.Fatalf("expired until: %v, %v; want used", fresh, err)
	}
	if fresh, err := s.Use(ctx, "cd"+nonceA[2:], time.Time{}); err != nil || fresh {
		t.Fatalf("zero until: %v, %v; want used", fresh, err)
	}
	if fresh, err := s.Use(ctx, "ef"+nonceA[2:], time.Now().Add(1000*time.Hour)); err != nil || !fresh {
		t.Fatalf("far until: %v, %v", fresh, err)
	}
	keys, _ := raw.Keys(ctx, "*").Result()
	if len(keys) != 1 {
		t.Fatalf("keys %v", keys)
	}
	if pt, _ := raw.PTTL(ctx, keys[0]).Result(); pt <= 23*time.Hour || pt > 24*time.Hour {
		t.Fatalf("PTTL %v; want cut to 24 h", pt)
	}
}

// TestStateStoreHostileNonce: a nonce that is not 32 to 64 hex digits is
// an InputError that does not echo it, and nothing reaches Redis.
func TestStateStoreHostileNonce(t *testing.T) {
	srv := redistest.Start(t)
	a, raw := newCache(t, srv, CacheOptions{})
	ctx := context.Background()
	for _, n := range []string{"", "abc", nonceA[:31], nonceA + nonceA + "0", "zz" + nonceA[2:], "kvassert:*" + nonceA, nonceA[:30] + "\r\n", strings.Repeat("a", 1<<20)} {
		fresh, err := a.StateStore().Use(ctx, n, time.Now().Add(time.Minute))
		var ie *kvassert.InputError
		if fresh || !errors.As(err, &ie) || ie.Input != "nonce" {
			t.Fatalf("nonce %.40q: %v, %v; want an InputError naming nonce", n, fresh, err)
		}
		if len(n) > 8 && strings.Contains(err.Error(), n) {
			t.Fatalf("error echoes the nonce: %v", err)
		}
	}
	if n, _ := raw.DBSize(ctx).Result(); n != 0 {
		t.Fatalf("%d keys after hostile nonces", n)
	}
}

// TestStateStoreRedisDown: with Redis down Use fails (the Handler asks to
// start again), and once the breaker opens it fails at once.
func TestStateStoreRedisDown(t *testing.T) {
	srv := redistest.Start(t)
	a, _ := newCache(t, srv, CacheOptions{OpTimeout: 200 * time.Millisecond, BreakerThreshold: 2, BreakerCoolDown: time.Minute})
	srv.Stop()
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		if fresh, err := a.StateStore().Use(ctx, nonceA, time.Now().Add(time.Minute)); err == nil || fresh {
			t.Fatalf("Redis down: %v, %v; want an error", fresh, err)
		}
	}
	fresh, err := a.StateStore().Use(ctx, nonceA, time.Now().Add(time.Minute))
	if fresh || !errors.Is(err, errBreakerOpen) {
		t.Fatalf("breaker: %v, %v; want the open breaker", fresh, err)
	}
}

// TestStateStoreKeyRotation: during a key rotation a replica that knows
// only the old key and one with the new key (old in OlderKeys) use a state
// once between them, whichever comes first.
func TestStateStoreKeyRotation(t *testing.T) {
	srv := redistest.Start(t)
	k1, k2 := mustKey(t, "k1", 1), mustKey(t, "k2", 2)
	old, _ := newCache(t, srv, CacheOptions{}, k1)
	rotated, _ := newCache(t, srv, CacheOptions{}, k2, k1)
	ctx := context.Background()
	until := time.Now().Add(time.Minute)
	for i, order := range [][2]*Cache{{old, rotated}, {rotated, old}} {
		n := strings.Repeat(string(rune('a'+i)), 32)
		if fresh, err := order[0].StateStore().Use(ctx, n, until); err != nil || !fresh {
			t.Fatalf("order %d first: %v, %v", i, fresh, err)
		}
		if fresh, err := order[1].StateStore().Use(ctx, n, until); err != nil || fresh {
			t.Fatalf("order %d replay: %v, %v; want used", i, fresh, err)
		}
	}
}
