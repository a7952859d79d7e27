package holdoff

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// The release schedule: ReleaseBurst at once; then, when the previous
// release taught the vault's capacity k, up to k spread over ReleasePace;
// then the count doubles every ReleaseDoubling.
func TestReleaseOffset(t *testing.T) {
	near := func(got, want time.Duration) bool { return got > want-time.Microsecond && got < want+time.Microsecond }
	for n, want := range map[int]time.Duration{0: 0, 1: ReleaseDoubling, 3: 2 * ReleaseDoubling, 255: 8 * ReleaseDoubling, 4095: 12 * ReleaseDoubling} {
		if got := releaseOffset(n, 0); !near(got, want) {
			t.Errorf("releaseOffset(%d, 0) = %v, want %v", n, got, want)
		}
	}
	for n, want := range map[int]time.Duration{0: 0, 1: ReleasePace / 100, 50: ReleasePace / 2, 99: ReleasePace * 99 / 100, 199: ReleasePace + ReleaseDoubling} {
		if got := releaseOffset(n, 100); !near(got, want) {
			t.Errorf("releaseOffset(%d, 100) = %v, want %v", n, got, want)
		}
	}
	for _, k := range []int{0, 1, 4, 5, 100, 5000} {
		for n := 1; n < 10000; n++ {
			if releaseOffset(n, k) < releaseOffset(n-1, k) {
				t.Fatalf("releaseOffset(%d, %d) < releaseOffset(%d, %d)", n, k, n-1, k)
			}
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
		if !ok || at.Before(until) || at.Sub(until) != releaseOffset(n, 0) {
			t.Fatalf("slot %d at %v after reopening, want %v", n, at.Sub(until), releaseOffset(n, 0))
		}
		last = at
	}
	if last.Sub(until) > 6*ReleaseDoubling+time.Millisecond {
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
	// A new 429 during the release: the schedule starts again, and a waiter
	// whose slot was planned before it is not let through.
	_, gen, _, _ := g.reserve(now, time.Time{}, false)
	g.Throttled(2 * time.Second)
	if g.pass(gen) || g.released != 0 || !g.until.After(until) {
		t.Fatal("a new 429 did not restart the release")
	}
	// A shorter hold-off than the current one changes nothing.
	gen = g.gen
	g.Throttled(time.Second)
	if g.gen != gen {
		t.Fatal("a shorter hold-off replaced a longer one")
	}
}

// The gate learns from each release how many signs the vault took before it
// refused again (growing at most eightfold per release), and spreads that many
// over ReleasePace in the next release instead of ramping up to them within
// a few doublings; 429s that come back while the gate is shut (signs already
// in flight) teach nothing.
func TestHoldOffLearnsThePace(t *testing.T) {
	g := newHoldOff()
	now := time.Now()
	g.throttledAt(now, time.Second)
	// cycle lets n signs through the reopened gate, then the vault refuses.
	cycle := func(n int) {
		now = g.until.Add(10 * time.Second)
		for range n {
			if at, _, _, ok := g.reserve(now, time.Time{}, false); !ok || !at.IsZero() {
				t.Fatal("the open gate held a caller")
			}
		}
		g.throttledAt(now, time.Second)
		g.throttledAt(now.Add(10*time.Millisecond), time.Second) // in flight, refused too
	}
	var learned []int
	for range 3 {
		cycle(100)
		learned = append(learned, g.learned)
	}
	if fmt.Sprint(learned) != "[8 64 100]" || g.sent != 0 {
		t.Fatalf("learned %v (sent %d), want [8 64 100]", learned, g.sent)
	}
	until := g.until
	for n := range 200 {
		at, _, _, ok := g.reserve(until.Add(-time.Second), time.Time{}, false)
		if !ok || at.Sub(until) != releaseOffset(n, 100) {
			t.Fatalf("slot %d at %v, want %v", n, at.Sub(until), releaseOffset(n, 100))
		}
		switch {
		case n < ReleaseBurst && at != until:
			t.Fatalf("burst slot %d at %v", n, at.Sub(until))
		case n == 50 && (at.Sub(until) < ReleasePace*2/5 || at.Sub(until) > ReleasePace*3/5):
			t.Fatalf("slot 50 of 100 learned at %v, want about half of %v", at.Sub(until), ReleasePace)
		}
	}
	// A long open spell (10,000 signs) teaches at most 8 times as much.
	cycle(10000)
	if g.learned != 800 {
		t.Fatalf("learned %d after 10,000 signs, want 800", g.learned)
	}
}

// When the gate reopens, its waiters are released gradually, not all at
// once: of 1,000 waiters, only the first slot (offset < 25 ms) can go within
// 25 ms of the reopening (timers never fire early; 5 allowed), and every one
// is released in the end.
func TestHoldOffReleasesGradually(t *testing.T) {
	const waiters = 1000
	g := New()
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
	g := New()
	g.Throttled(10 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := g.Wait(ctx)
	// (Had it waited, it would return context.DeadlineExceeded.)
	var hold *Error
	if !errors.As(err, &hold) || hold.Remaining < 8*time.Second || hold.Remaining > 10*time.Second {
		t.Fatalf("Wait = %v, want at once a Error of about 10s", err)
	}
	cctx, ccancel := context.WithCancel(context.Background())
	go func() { time.Sleep(50 * time.Millisecond); ccancel() }()
	if err := g.Wait(cctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Wait = %v", err)
	}
	if err := New().Wait(context.Background()); err != nil {
		t.Fatalf("open gate: %v", err)
	}
}
