package flight

import (
	"math/rand/v2"
	"sync"
	"time"
)

// Backoff remembers the failures of one piece of background work (a token
// refresh, a certificate re-read) and says when it may be tried again:
// after a failure, Base, then doubling up to Max, each with up to 50 %
// random jitter so that many instances do not retry in step. A success
// resets it. The zero value allows a try at once; set Base and Max before
// use. Safe for concurrent use.
type Backoff struct {
	Base, Max time.Duration

	mu       sync.Mutex
	failures int
	next     time.Time
}

// Ready reports whether a try is allowed at now.
func (b *Backoff) Ready(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return !now.Before(b.next)
}

// Failed records a failed try at now and returns the time of the next
// allowed try.
func (b *Backoff) Failed(now time.Time) time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	d := b.Base
	for i := 0; i < b.failures && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	if d > 0 {
		d += rand.N(d/2 + 1)
	}
	b.failures++
	b.next = now.Add(d)
	return b.next
}

// Succeeded records a successful try: the next one may come at once.
func (b *Backoff) Succeeded() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failures, b.next = 0, time.Time{}
}

// Failures is the number of failures since the last success.
func (b *Backoff) Failures() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.failures
}
