package testfixture

import (
	"sync"
	"testing"
	"time"
)

// Clock is a settable clock for a test (a cache's TTL and back-off), safe
// for background goroutines. Its Now method is what the options' Now or
// Clock fields take.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a Clock that reads now until Add moves it.
func NewClock(now time.Time) *Clock { return &Clock{now: now} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

// Add moves the clock by d.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// WaitUntil polls cond every 5 ms and fails the test when it does not hold
// within 30 s.
func WaitUntil(tb testing.TB, cond func() bool) {
	tb.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			tb.Fatal("condition not met within 30 s")
		}
	}
}
