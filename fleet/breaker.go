package fleet

import (
	"sync"
	"time"
)

// breaker is a circuit breaker around Redis: after threshold consecutive
// failures it opens for coolDown, during which callers skip Redis; then one
// probe is let through, and its success closes the breaker again.
type breaker struct {
	threshold int
	coolDown  time.Duration

	mu        sync.Mutex
	fails     int
	openUntil time.Time // zero when closed
	probing   bool
	opens     int64
}

func newBreaker(threshold int, coolDown time.Duration) *breaker {
	if threshold <= 0 {
		threshold = 5
	}
	if coolDown <= 0 {
		coolDown = 5 * time.Second
	}
	return &breaker{threshold: threshold, coolDown: coolDown}
}

// allow reports whether a Redis operation may be tried now.
func (b *breaker) allow() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.openUntil.IsZero() {
		return true
	}
	if b.probing || time.Now().Before(b.openUntil) {
		return false
	}
	b.probing = true // half-open: one probe
	return true
}

// success records a working Redis: the breaker closes.
func (b *breaker) success() {
	b.mu.Lock()
	b.fails, b.openUntil, b.probing = 0, time.Time{}, false
	b.mu.Unlock()
}

// failure records a failed Redis operation; it reports whether the breaker
// opened because of it.
func (b *breaker) failure() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.fails++
	if b.probing || (b.openUntil.IsZero() && b.fails >= b.threshold) {
		b.openUntil, b.probing = time.Now().Add(b.coolDown), false
		b.opens++
		return true
	}
	return false
}

// abort ends a probe that proved nothing (the caller gave up): the next
// call probes again.
func (b *breaker) abort() {
	b.mu.Lock()
	b.probing = false
	b.mu.Unlock()
}
