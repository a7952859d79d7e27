package keyvault

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// The release schedule: ReleaseBurst at once, then the count doubles every
// ReleaseDoubling.
func TestReleaseOffset(t *testing.T) {
	for n, want := range map[int]time.Duration{0: 0, 3: 0, 7: ReleaseDoubling, 15: 2 * ReleaseDoubling, 255: 6 * ReleaseDoubling, 4095: 10 * ReleaseDoubling} {
		if got := releaseOffset(n); got < want-time.Microsecond || got > want+time.Microsecond {
			t.Errorf("releaseOffset(%d) = %v, want %v", n, got, want)
		}
	}
	for n := 1; n < 10000; n++ {
		if releaseOffset(n) < releaseOffset(n-1) {
			t.Fatalf("releaseOffset(%d) < releaseOffset(%d)", n, n-1)
		}
	}
}

// The slots handed out while the gate is shut follow the schedule from the
// reopening; a new 429 starts the schedule again from the new reopening; a
// slot past the caller's deadline is refused with what remains, and not
// taken.
func TestHoldOffSlots(t *testing.T) {
	g := newHoldOff()
	t0 := time.Now()
	g.Throttled(0)
	until := g.until
	if d := until.Sub(t0); d < DefaultHoldOff || d > DefaultHoldOff+time.Second {
		t.Fatalf("a 429 without Retry-After shut the gate for %v", d)
	}
	now := until.Add(-500 * time.Millisecond)
	var last time.Time
	for n := range 64 {
		at, _, _, ok := g.reserve(now, time.Time{}, false)
		if !ok || at.Before(until) || at.Sub(until) != releaseOffset(n) {
			t.Fatalf("slot %d at %v after reopening, want %v", n, at.Sub(until), releaseOffset(n))
		}
		last = at
	}
	if last.Sub(until) > 4*ReleaseDoubling+time.Millisecond {
		t.Fatalf("the 64th waiter goes %v after the reopening", last.Sub(until))
	}
	// Past the deadline: refused, the slot stays free.
	_, _, remaining, ok := g.reserve(now, now.Add(100*time.Millisecond), true)
	if ok || remaining < 500*time.Millisecond {
		t.Fatalf("slot past the deadline: ok %v, remaining %v", ok, remaining)
	}
	if g.released != 64 {
		t.Fatalf("released = %d after a refused slot, want 64", g.released)
	}
	// Open and past the schedule: at once.
	if at, _, _, ok := g.reserve(until.Add(time.Second), time.Time{}, false); !ok || !at.IsZero() {
		t.Fatalf("open gate: at %v ok %v", at, ok)
	}
	// A new 429 during the release: the schedule starts again.
	_, gen, _, _ := g.reserve(now, time.Time{}, false)
	g.Throttled(2 * time.Second)
	if g.sameGen(gen) || g.released != 0 || !g.until.After(until) {
		t.Fatal("a new 429 did not restart the release")
	}
	// A shorter hold-off than the current one changes nothing.
	gen = g.gen
	g.Throttled(time.Second)
	if !g.sameGen(gen) {
		t.Fatal("a shorter hold-off replaced a longer one")
	}
}

// When the gate reopens, its waiters are released gradually, not all at
// once: of 1,000 waiters, at most the first 5 slots (offset < 25 ms) can go
// within 25 ms of the reopening (timers never fire early), and every one is
// released in the end.
func TestHoldOffReleasesGradually(t *testing.T) {
	const waiters = 1000
	g := NewHoldOff()
	t0 := time.Now()
	g.Throttled(0) // reopens at t0 + 1 s or later
	reopen := t0.Add(DefaultHoldOff)
	var mu sync.Mutex
	var released []time.Time
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for range waiters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := g.Wait(ctx); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			released = append(released, time.Now())
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(released) != waiters {
		t.Fatalf("%d of %d waiters released", len(released), waiters)
	}
	early := 0
	for _, at := range released {
		if at.Before(reopen) {
			t.Fatalf("a waiter went %v before the reopening", reopen.Sub(at))
		}
		if at.Sub(reopen) < 25*time.Millisecond {
			early++
		}
	}
	if early > 5 {
		t.Fatalf("%d of %d waiters went within 25 ms of the reopening, want at most 5 (a burst of %d, then doubling every %v)", early, waiters, ReleaseBurst, ReleaseDoubling)
	}
}

// A waiter whose turn is past its deadline is told at once, with how long it
// would have waited; one whose context is cancelled returns its error.
func TestHoldOffDeadlines(t *testing.T) {
	g := NewHoldOff()
	g.Throttled(10 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	err := g.Wait(ctx)
	var hold *HoldOffError
	if !errors.As(err, &hold) || hold.Remaining < 8*time.Second || hold.Remaining > 10*time.Second {
		t.Fatalf("Wait = %v, want a HoldOffError of about 10s", err)
	}
	if time.Since(start) > 500*time.Millisecond {
		t.Fatalf("Wait took %v to refuse a hold-off past the deadline", time.Since(start))
	}
	cctx, ccancel := context.WithCancel(context.Background())
	go func() { time.Sleep(50 * time.Millisecond); ccancel() }()
	if err := g.Wait(cctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Wait = %v", err)
	}
	if err := NewHoldOff().Wait(context.Background()); err != nil {
		t.Fatalf("open gate: %v", err)
	}
}
