package fleet

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"
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
