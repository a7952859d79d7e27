package emu

import (
	"sync"
	"time"
)

// RateLimit is a sliding-window limit of Requests per Window, like Key Vault's
// service limits (e.g. 4,000 RSA-2048 signs per 10 s per vault).
type RateLimit struct {
	Requests int
	Window   time.Duration
}

// Limiter enforces a RateLimit. The zero value (or a zero limit) allows all.
type Limiter struct {
	mu    sync.Mutex
	limit RateLimit
	times []time.Time // ring of admitted request times
	next  int
	full  bool
	now   func() time.Time
}

// SetLimit replaces the limit and forgets history.
func (l *Limiter) SetLimit(limit RateLimit) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.limit = limit
	l.times = make([]time.Time, max(limit.Requests, 0))
	l.next, l.full = 0, false
}

// Allow admits one request, or returns false when the window is full.
func (l *Limiter) Allow() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.limit.Requests <= 0 || l.limit.Window <= 0 {
		return true
	}
	now := time.Now()
	if l.now != nil {
		now = l.now()
	}
	// The oldest admitted request sits at next once the ring is full.
	if l.full && now.Sub(l.times[l.next]) < l.limit.Window {
		return false
	}
	l.times[l.next] = now
	l.next++
	if l.next == len(l.times) {
		l.next, l.full = 0, true
	}
	return true
}
