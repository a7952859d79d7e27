package fleet

import (
	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"context"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kvassert/kvassert"
)

// TestHostileValuesAreMisses (issue 18, siblings of defects 4 and 6):
// whatever another client writes under a token's names (garbage, a value
// larger than any entry, another Redis type, no expiry) is a miss, never a
// panic, an error or a stall: the replica acquires, stores over it, and the
// next call is a hit.
func TestHostileValuesAreMisses(t *testing.T) {
	srv, raw := startRaw(t)
	ctx := context.Background()
	a, _ := newCache(t, srv, CacheOptions{LockTTL: time.Second, WaitTimeout: 10 * time.Second})
	big := strings.Repeat("x", 1<<20)
	writes := map[string]func(value, lock string) error{
		"garbage":      func(v, _ string) error { return raw.Set(ctx, v, "\x01\x02garbage", 0).Err() },
		"oversize":     func(v, _ string) error { return raw.Set(ctx, v, big, time.Hour).Err() },
		"list":         func(v, _ string) error { return raw.RPush(ctx, v, "a", "b").Err() },
		"hash":         func(v, _ string) error { return raw.HSet(ctx, v, "f", "v").Err() },
		"zset":         func(v, _ string) error { return raw.ZAdd(ctx, v, redisZ(1, "m")).Err() },
		"framed":       func(v, _ string) error { return raw.Set(ctx, v, "\x01\x02k1"+strings.Repeat("\x00", 40), 0).Err() },
		"lock-hash":    func(_, l string) error { return raw.HSet(ctx, l, "owner", "x").Err() },
		"lock-persist": func(_, l string) error { return raw.Set(ctx, l, "x", 0).Err() },
		"lock-huge-px": func(_, l string) error { return raw.Set(ctx, l, "x", 1000*time.Hour).Err() },
		"lock-list":    func(_, l string) error { return raw.RPush(ctx, l, "x").Err() },
	}
	i := 0
	for name, write := range writes {
		i++
		k := testKey(tenantN(100 + i))
		tk := a.keysFor(t, k)
		if err := write(tk.value, tk.lock); err != nil {
			t.Fatal(name, err)
		}
		acq := newAcquirer(name)
		tok, err := a.Token(ctx, k, zeroToken, acq.acquire)
		if err != nil || acq.n.Load() != 1 {
			t.Fatalf("%s: %v, %d acquisitions; want the replica's own token", name, err, acq.n.Load())
		}
		again, err := a.Token(ctx, k, zeroToken, acq.acquire)
		if err != nil || again.Token != tok.Token || acq.n.Load() != 1 {
			t.Fatalf("%s: the token was not stored over the hostile value (%v, %d acquisitions)", name, err, acq.n.Load())
		}
	}
	if s := a.Stats(); s.Fallbacks != 0 || s.Errors != 0 {
		t.Fatalf("stats %+v; want no fallback (no stall) and no Redis error", s)
	}
}

// TestPoisonedBudgetIsBounded (issue 18, sibling of defect 4): sign times
// dated far in the future, huge counts or a budget key of another type
// cost at most one window, never a wait beyond it.
func TestPoisonedBudgetIsBounded(t *testing.T) {
	srv, raw := startRaw(t)
	ctx := context.Background()
	a := newThrottle(t, srv, ThrottleOptions{Budget: 3, Window: time.Second})
	poisons := map[string]func() error{
		"future": func() error {
			for i := range 10 {
				if err := raw.ZAdd(ctx, a.budKey, redisZ(1e15+float64(i), "f"+string(rune('a'+i)))).Err(); err != nil {
					return err
				}
			}
			return raw.Persist(ctx, a.budKey).Err()
		},
		"inf": func() error {
			return raw.ZAdd(ctx, a.budKey, redisZ(1e308, "a"), redisZ(1e307, "b"), redisZ(1e306, "c")).Err()
		},
		"string": func() error { return raw.Set(ctx, a.budKey, "999999999", 0).Err() },
		"hash":   func() error { return raw.HSet(ctx, a.budKey, "count", "999999999").Err() },
	}
	for name, poison := range poisons {
		raw.Del(ctx, a.budKey)
		if err := poison(); err != nil {
			t.Fatal(name, err)
		}
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := a.Wait(wctx)
		cancel()
		if err != nil {
			t.Fatalf("%s: Wait with a poisoned budget: %v; want a sign within the 1s window", name, err)
		}
	}
	if s := a.Stats(); s.Errors != 0 || s.Fallbacks != 0 {
		t.Fatalf("stats %+v; want no Redis error", s)
	}
}

// TestNotifierRecoversPanics (issue 18, sibling of defect 2): a panic in
// the pub/sub listener is recovered; the cache keeps working, and the next
// wait subscribes again and is woken by messages.
func TestNotifierRecoversPanics(t *testing.T) {
	srv, raw := startRaw(t)
	ctx := context.Background()
	a, _ := newCache(t, srv, CacheOptions{})
	hook := func(msg string) {
		if msg == "boom" {
			panic("listener bug")
		}
	}
	onWake.Store(&hook)
	t.Cleanup(func() { onWake.Store(nil) })
	w := a.notify.register("x")
	for deadline := time.Now().Add(30 * time.Second); a.notify.panics.Load() == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the listener never got the message")
		}
		raw.Publish(ctx, channelFor(DefaultPrefix), strings.Repeat("y", 5000)) // ignored: too long
		raw.Publish(ctx, channelFor(DefaultPrefix), "boom")
	}
	a.notify.unregister(w)
	w = a.notify.register("x")
	defer a.notify.unregister(w)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		raw.Publish(ctx, channelFor(DefaultPrefix), "x")
		select {
		case <-w.ch:
			return
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("after the recovered panic no message woke a waiter")
		}
	}
}

// TestMessageFloodIsPaced (issue 18, sibling): a flood of "new value"
// messages for a token someone waits for (anyone who can publish can send
// them) costs at most one Redis read per pollMin, not one per message.
func TestMessageFloodIsPaced(t *testing.T) {
	srv, raw := startRaw(t)
	ctx := context.Background()
	a, _ := newCache(t, srv, CacheOptions{LockTTL: 10 * time.Second})
	k := testKey(tenantN(1))
	tk := a.keysFor(t, k)
	if err := raw.Set(ctx, tk.lock, "live-owner", 10*time.Second).Err(); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := a.Token(wctx, k, zeroToken, newAcquirer("a").acquire)
		done <- err
	}()
	for deadline := time.Now().Add(30 * time.Second); a.Stats().LockWaits == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the call never waited")
		}
	}
	reads := func() int64 {
		info := raw.Info(ctx, "commandstats").Val()
		for _, line := range strings.Split(info, "\n") {
			if rest, ok := strings.CutPrefix(line, "cmdstat_evalsha:calls="); ok {
				n, _ := strconv.ParseInt(rest[:strings.IndexByte(rest, ',')], 10, 64)
				return n
			}
		}
		return 0
	}
	before, start := reads(), time.Now()
	for range 3000 {
		raw.Publish(ctx, channelFor(DefaultPrefix), tk.msg)
	}
	elapsed := time.Since(start)
	n := reads() - before
	cancel()
	<-done
	if limit := int64(elapsed/pollMin) + 10; n > limit {
		t.Fatalf("3000 messages in %v made %d reads; want at most %d (one per %v)", elapsed, n, limit, pollMin)
	}
}

// TestHostileRefusalEntries (issue 21): whatever another client writes
// under a tenant's refusal name (a refusal forged with another secret, one
// copied from another tenant, a token entry, an authentic refusal beyond
// the bound, garbage, a value larger than any entry, another Redis type)
// is no refusal: Refusal answers ok=false without an error or a stall,
// counts it, and the next Refuse stores over it.
func TestHostileRefusalEntries(t *testing.T) {
	srv, raw := startRaw(t)
	ctx := context.Background()
	a, _ := newCache(t, srv, CacheOptions{Logger: slog.New(slog.DiscardHandler)})
	other := tenantOf(testKey(tenantN(999)))
	if err := a.Refuse(ctx, other, refusal(700016, time.Hour)); err != nil {
		t.Fatal(err)
	}
	otherNames, _ := a.tenantNames(other)
	copied := raw.Get(ctx, otherNames[0].refusal).Val()
	tokenEntry := func(k kvassert.SharedKey) string {
		mustToken(t, a, k, newAcquirer("tok"))
		return raw.Get(ctx, a.keysFor(t, k).value).Val()
	}
	forged := func(k kvassert.SharedKey) string {
		return string(mustRing(t, mustKey(t, "k1", 7)).seal(encodeRefusal(refusal(700016, time.Hour)), refusalAD(normalize(k))))
	}
	beyond := func(k kvassert.SharedKey) string {
		return string(a.ring.seal(encodeRefusal(refusal(700016, 30*24*time.Hour)), refusalAD(normalize(k))))
	}
	big := strings.Repeat("x", 1<<20)
	rows := map[string]func(k kvassert.SharedKey, name string) error{
		"forged": func(k kvassert.SharedKey, n string) error { return raw.Set(ctx, n, forged(k), time.Hour).Err() },
		"copied": func(_ kvassert.SharedKey, n string) error { return raw.Set(ctx, n, copied, time.Hour).Err() },
		"token entry": func(k kvassert.SharedKey, n string) error {
			return raw.Set(ctx, n, tokenEntry(testKey(k.Tenant)), time.Hour).Err()
		},
		"beyond":   func(k kvassert.SharedKey, n string) error { return raw.Set(ctx, n, beyond(k), 0).Err() },
		"garbage":  func(_ kvassert.SharedKey, n string) error { return raw.Set(ctx, n, "\x01\x02k1\x00\xff", 0).Err() },
		"oversize": func(_ kvassert.SharedKey, n string) error { return raw.Set(ctx, n, big, time.Hour).Err() },
		"hash":     func(_ kvassert.SharedKey, n string) error { return raw.HSet(ctx, n, "f", "v").Err() },
		"list":     func(_ kvassert.SharedKey, n string) error { return raw.RPush(ctx, n, "a").Err() },
		"zset":     func(_ kvassert.SharedKey, n string) error { return raw.ZAdd(ctx, n, redisZ(1, "m")).Err() },
	}
	i := 0
	for name, write := range rows {
		i++
		k := tenantOf(testKey(tenantN(300 + i)))
		names, _ := a.tenantNames(k)
		if err := write(k, names[0].refusal); err != nil {
			t.Fatal(name, err)
		}
		rejectedBefore := a.Stats().DecryptFailures
		begin := time.Now()
		if r, ok, err := a.Refusal(ctx, k); ok || err != nil {
			t.Fatalf("%s: read as %+v, %v, %v", name, r, ok, err)
		}
		if d := time.Since(begin); d > time.Second {
			t.Fatalf("%s: Refusal took %v", name, d)
		}
		if a.Stats().DecryptFailures != rejectedBefore+1 {
			t.Fatalf("%s: not counted as rejected", name)
		}
		if err := a.Refuse(ctx, k, refusal(7000112, time.Minute)); err != nil {
			t.Fatalf("%s: Refuse over it: %v", name, err)
		}
		if r, ok, err := a.Refusal(ctx, k); !ok || err != nil || r.Code != 7000112 {
			t.Fatalf("%s: the refusal stored over it reads %+v, %v, %v", name, r, ok, err)
		}
	}
	if s := a.Stats(); s.Errors != 0 || s.Fallbacks != 0 {
		t.Fatalf("stats %+v; want no Redis error and no fallback", s)
	}
}

// TestHostileEpochs (issue 21): a tenant's epoch holding garbage (another
// type, empty, unprintable, too long) costs one acquisition, never one per
// call: the lock replaces it, and the token stored under the new epoch is
// served. An epoch without expiry is harmless.
func TestHostileEpochs(t *testing.T) {
	srv, raw := startRaw(t)
	ctx := context.Background()
	a, _ := newCache(t, srv, CacheOptions{})
	b, _ := newCache(t, srv, CacheOptions{})
	rows := map[string]func(n string) error{
		"hash":      func(n string) error { return raw.HSet(ctx, n, "f", "v").Err() },
		"list":      func(n string) error { return raw.RPush(ctx, n, "a").Err() },
		"empty":     func(n string) error { return raw.Set(ctx, n, "", 0).Err() },
		"binary":    func(n string) error { return raw.Set(ctx, n, "\x00\xff\x01", 0).Err() },
		"space":     func(n string) error { return raw.Set(ctx, n, "a b", 0).Err() },
		"too long":  func(n string) error { return raw.Set(ctx, n, strings.Repeat("e", maxEpoch+1), 0).Err() },
		"oversize":  func(n string) error { return raw.Set(ctx, n, strings.Repeat("e", 1<<20), 0).Err() },
		"persisted": func(n string) error { return raw.Set(ctx, n, "chosen-by-someone", 0).Err() },
	}
	i := 0
	for name, write := range rows {
		i++
		k := testKey(tenantN(400 + i))
		if err := write(a.keysFor(t, k).epoch); err != nil {
			t.Fatal(name, err)
		}
		acq := newAcquirer(strings.ReplaceAll(name, " ", "-"))
		tok := mustToken(t, a, k, acq)
		if again := mustToken(t, b, k, acq); again.Token != tok.Token || acq.n.Load() != 1 {
			t.Fatalf("%s: %d acquisitions; the epoch poisons the tenant", name, acq.n.Load())
		}
	}
	if s := a.Stats(); s.Errors != 0 || s.Fallbacks != 0 {
		t.Fatalf("stats %+v; want no Redis error and no fallback", s)
	}
}

// TestLockReplacedMidAcquisition: a lock turned into another Redis type
// while its owner acquires (or renews it) is "not ours" to the owner's
// store, renewal and release, never a Redis error: before the fix each such
// script failed with WRONGTYPE, counted as a Redis failure, and a few in a
// row opened the circuit breaker: every tenant's tokens were then acquired
// locally on every replica (a Key Vault sign each) for the cool-down.
func TestLockReplacedMidAcquisition(t *testing.T) {
	srv, raw := startRaw(t)
	ctx := context.Background()
	a, _ := newCache(t, srv, CacheOptions{LockTTL: 150 * time.Millisecond, BreakerThreshold: 2})
	for i, rewrite := range []func(lock string) error{
		func(l string) error { return raw.HSet(ctx, l, "owner", "x").Err() },
		func(l string) error { return raw.RPush(ctx, l, "x").Err() },
		func(l string) error { return raw.SAdd(ctx, l, "x").Err() },
	} {
		k := testKey(tenantN(700 + i))
		tk := a.keysFor(t, k)
		acq := newAcquirer("mid")
		_, err := a.Token(ctx, k, zeroToken, func(ctx context.Context) (azcore.AccessToken, error) {
			if err := raw.Del(ctx, tk.lock).Err(); err != nil {
				return azcore.AccessToken{}, err
			}
			if err := rewrite(tk.lock); err != nil {
				return azcore.AccessToken{}, err
			}
			time.Sleep(120 * time.Millisecond) // a renewal (every LockTTL/3) meets it
			return acq.acquire(ctx)
		})
		if err != nil {
			t.Fatalf("row %d: %v", i, err)
		}
		if _, err := a.Token(ctx, k, zeroToken, acq.acquire); err != nil || acq.n.Load() != 1 {
			t.Fatalf("row %d: %v, %d acquisitions; want the stored token", i, err, acq.n.Load())
		}
	}
	if s := a.Stats(); s.Errors != 0 || s.Fallbacks != 0 {
		t.Fatalf("stats %+v; want no Redis error and no fallback", s)
	}
}
