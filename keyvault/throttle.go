package keyvault

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Throttle paces the signs sent to one vault. The signer calls Wait before every keys/sign attempt and
// Throttled after every 429 answer. Implementations are safe for concurrent use.
type Throttle interface {
	// Wait returns nil when a sign may be sent now, or an error when ctx ends first or when the known
	// hold-off outlasts ctx's deadline (then at once, without waiting).
	Wait(ctx context.Context) error
	// Throttled records a 429 from the vault; retryAfter is its Retry-After (0 when the answer had none).
	Throttled(retryAfter time.Duration)
}

// HoldOffError is what the in-process gate's Wait returns when the vault's
// hold-off (or the caller's turn in the release that follows it) comes after
// the caller's deadline. Other Throttle implementations may return it too;
// the signer then names the wait in its error.
type HoldOffError struct {
	// Remaining is how long the caller would have had to wait.
	Remaining time.Duration
}

func (e *HoldOffError) Error() string {
	return fmt.Sprintf("Key Vault is throttling this vault (429: the vault's request limit) for %s more, past the caller's deadline", e.Remaining.Round(100*time.Millisecond))
}

// Hold-off and release parameters of the in-process gate (NewHoldOff).
const (
	// DefaultHoldOff is how long a 429 without Retry-After shuts the gate
	// (real Key Vault answers 429 without it).
	DefaultHoldOff = time.Second
	// ReleaseBurst is how many waiters the gate lets through at once when it
	// reopens: one probe, as a vault still at its limit refuses all of them.
	ReleaseBurst = 1
	// ReleasePace is the time over which the gate spreads, after the burst,
	// as many signs as the vault took in the previous release (from one
	// reopening to the 429 that shut the gate again; at most learnGrowth
	// times what the release before that taught, so that after a long open
	// spell the next release does not rush a vault that is full).
	ReleasePace = 500 * time.Millisecond
	// learnGrowth bounds how fast the learned count grows per release.
	learnGrowth = 8
	// ReleaseDoubling is the time in which the number of waiters let through
	// doubles beyond that: with nothing learned yet, 1 at once, 2 by 50 ms,
	// 4 by 100 ms, 256 by 400 ms, 4,096 by 600 ms.
	ReleaseDoubling = 50 * time.Millisecond
	// releaseRamp is how long after the paced part the doubling admits more
	// waiters than any process has: the gate is plainly open after it.
	releaseRamp = 40 * ReleaseDoubling
)

// NewHoldOff returns the in-process Throttle the signers of one vault share
// by default (Options.Throttle nil: one per vault host for the whole
// process). A 429 shuts it for the answer's Retry-After (capped at 60 s;
// DefaultHoldOff without one). When it reopens it releases its waiters
// gradually, so that a reopening does not stampede the vault: ReleaseBurst
// at once, then as many as the vault took in the previous release spread
// over ReleasePace (the vault's own pace, as last seen), then twice as many
// every ReleaseDoubling. A 429 during the release shuts the gate again, so
// a vault still at its limit refuses a few signs, not every waiter. Give
// each vault its own; share one between processes only through an
// implementation backed by a shared store.
func NewHoldOff() Throttle { return newHoldOff() }

// holdOff is the in-process gate. until is when the gate reopens; released
// counts the release slots handed out since, sent the callers let through
// since, and learned is what sent was when the previous release ended in a
// 429 (the vault's capacity as last seen, grown at most learnGrowth-fold per
// release). gen counts the closings, so that a waiter whose slot was planned
// before a new 429 asks again.
type holdOff struct {
	// open is the unix ns after which the gate is plainly open: the
	// lock-free fast path of Wait.
	open atomic.Int64

	mu       sync.Mutex
	until    time.Time
	released int
	sent     int
	learned  int
	gen      uint64
}

func newHoldOff() *holdOff { return &holdOff{} }

// gates holds the process-wide *holdOff of each vault host. Hosts can come
// from callers (the developer proxy's kv-key route), so the map is bounded
// by maxGates: when full, the gates that are open (not holding off) are
// dropped, which forgets only their learned capacity; signers keep the gate
// they hold.
var gates struct {
	sync.Mutex
	m map[string]*holdOff
}

// maxGates bounds the process-wide gates.
const maxGates = 1024

// gateFor returns the process-wide gate of a vault host (what a nil
// Options.Throttle means).
func gateFor(host string) Throttle {
	host = strings.ToLower(host)
	gates.Lock()
	defer gates.Unlock()
	if g := gates.m[host]; g != nil {
		return g
	}
	if gates.m == nil {
		gates.m = map[string]*holdOff{}
	}
	if len(gates.m) >= maxGates {
		now := time.Now().UnixNano()
		for h, g := range gates.m {
			if g.open.Load() <= now {
				delete(gates.m, h)
			}
		}
		if len(gates.m) >= maxGates {
			return newHoldOff() // every gate is holding off: this host's is not kept
		}
	}
	g := newHoldOff()
	gates.m[host] = g
	return g
}

// Throttled shuts the gate for retryAfter (DefaultHoldOff when 0) from now,
// unless it is already shut for longer.
func (g *holdOff) Throttled(retryAfter time.Duration) { g.throttledAt(time.Now(), retryAfter) }

func (g *holdOff) throttledAt(now time.Time, retryAfter time.Duration) {
	if retryAfter <= 0 {
		retryAfter = DefaultHoldOff
	}
	until := now.Add(min(retryAfter, time.Minute))
	g.mu.Lock()
	defer g.mu.Unlock()
	if !now.Before(g.until) {
		// The first 429 since the reopening: the vault took about what was
		// sent since (the ones still in flight will come back refused).
		g.learned, g.sent = min(g.sent, max(learnGrowth*g.learned, learnGrowth)), 0
	}
	if !until.After(g.until) {
		return
	}
	g.until, g.released = until, 0
	g.gen++
	g.open.Store(until.Add(ReleasePace + releaseRamp).UnixNano())
}

// releaseOffset is when, after the reopening, the waiter with index n
// (counted from 0) is released, k being the number the vault took in the
// previous release: 0 for the first ReleaseBurst, then up to k spread
// evenly over ReleasePace, then one ReleaseDoubling for every doubling of
// the count.
func releaseOffset(n, k int) time.Duration {
	if n < ReleaseBurst {
		return 0
	}
	base, from := time.Duration(0), ReleaseBurst
	if k > ReleaseBurst {
		if n < k {
			return time.Duration(float64(ReleasePace) * float64(n-ReleaseBurst+1) / float64(k-ReleaseBurst+1))
		}
		base, from = ReleasePace, k
	}
	return base + time.Duration(float64(ReleaseDoubling)*math.Log2(float64(n+1)/float64(from)))
}

// reserve gives the caller a release slot at or after now: the zero time
// when it may go at once, else when to ask again (with the gate's gen then).
// A slot past deadline (when hasDeadline) is not taken: the remaining wait is
// returned instead, with ok false.
func (g *holdOff) reserve(now, deadline time.Time, hasDeadline bool) (at time.Time, gen uint64, remaining time.Duration, ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	at = g.until.Add(releaseOffset(g.released, g.learned))
	if !at.After(now) {
		g.released++
		g.sent++
		return time.Time{}, g.gen, 0, true
	}
	if hasDeadline && at.After(deadline) {
		return time.Time{}, g.gen, at.Sub(now), false
	}
	g.released++
	return at, g.gen, 0, true
}

// pass lets a caller whose slot has come through, unless the gate has been
// shut again since gen.
func (g *holdOff) pass(gen uint64) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.gen != gen {
		return false
	}
	g.sent++
	return true
}

// Wait returns nil when the gate lets the caller through: at once while it
// is open, else at the caller's release slot after the reopening. It returns
// a *HoldOffError at once when that slot is past ctx's deadline, and ctx's
// error when ctx ends first.
func (g *holdOff) Wait(ctx context.Context) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		now := time.Now()
		if now.UnixNano() > g.open.Load() {
			return nil
		}
		deadline, hasDeadline := ctx.Deadline()
		at, gen, remaining, ok := g.reserve(now, deadline, hasDeadline)
		if !ok {
			return &HoldOffError{Remaining: remaining}
		}
		if at.IsZero() {
			return nil
		}
		t := time.NewTimer(time.Until(at))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		if g.pass(gen) {
			return nil
		}
		// A 429 shut the gate again while this caller waited for its slot:
		// take a slot in the next release.
	}
}
