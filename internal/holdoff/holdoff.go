// Package holdoff is the in-process throttling gate that the Key Vault
// signers of one vault share by default (what a nil
// keyvault.SignerOptions.Throttle means: one gate per vault host), and the
// error its Wait returns when the hold-off outlasts the caller's deadline.
package holdoff

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Error (keyvault.HoldOffError) is what the in-process gate's Wait returns when the vault's
// hold-off (or the caller's turn in the release that follows it) comes after
// the caller's deadline. Other Throttle implementations may return it too;
// the signer then names the wait in its error.
type Error struct {
	// Remaining is how long the caller would have had to wait.
	Remaining time.Duration
}

func (e *Error) Error() string {
	return fmt.Sprintf("Key Vault is throttling this vault (429: the vault's request limit) for %s more, past the caller's deadline", e.Remaining.Round(100*time.Millisecond))
}

// Hold-off and release parameters of the in-process gate (New).
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

// New returns an in-process gate like the one the signers of one vault
// share by default (SignerOptions.Throttle nil: one per vault host for the
// whole process, For), a keyvault.Throttle by its method set. A 429 shuts it for the answer's Retry-After (capped at 60 s;
// DefaultHoldOff without one). When it reopens it releases its waiters
// gradually, so that a reopening does not stampede the vault: ReleaseBurst
// at once, then as many as the vault took in the previous release spread
// over ReleasePace (the vault's own pace, as last seen), then twice as many
// every ReleaseDoubling. A 429 during the release shuts the gate again, so
// a vault still at its limit refuses a few signs, not every waiter. Give
// each vault its own; share one between processes only through an
// implementation backed by a shared store.
func New() *Gate { return newHoldOff() }

// Gate is the in-process gate (holdOff). until is when the gate reopens; released
// counts the release slots handed out since, sent the callers let through
// since, and learned is what sent was when the previous release ended in a
// 429 (the vault's capacity as last seen, grown at most learnGrowth-fold per
// release). gen counts the closings, so that a waiter whose slot was planned
// before a new 429 asks again.
type Gate struct {
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

func newHoldOff() *Gate { return &Gate{} }

// gates holds the process-wide *Gate of each vault host. Hosts can come
// from callers (the developer proxy's kv-key route), so the map is bounded
// by maxGates: when full, the gates that are open (not holding off) are
// dropped, which forgets only their learned capacity; signers keep the gate
// they hold.
var gates struct {
	sync.Mutex
	m map[string]*Gate
}

// maxGates bounds the process-wide gates.
const maxGates = 1024

// For returns the process-wide gate of a vault host (what a nil
// SignerOptions.Throttle means).
func For(host string) *Gate {
	host = strings.ToLower(host)
	gates.Lock()
	defer gates.Unlock()
	if g := gates.m[host]; g != nil {
		return g
	}
	if gates.m == nil {
		gates.m = map[string]*Gate{}
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
func (g *Gate) Throttled(retryAfter time.Duration) { g.throttledAt(time.Now(), retryAfter) }

func (g *Gate) throttledAt(now time.Time, retryAfter time.Duration) {
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
func (g *Gate) reserve(now, deadline time.Time, hasDeadline bool) (at time.Time, gen uint64, remaining time.Duration, ok bool) {
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
func (g *Gate) pass(gen uint64) bool {
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
// a *Error at once when that slot is past ctx's deadline, and ctx's
// error when ctx ends first.
func (g *Gate) Wait(ctx context.Context) error {
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
			return &Error{Remaining: remaining}
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
