package keyvault_test

import (
	"crypto"
	"sync"
	"testing"
	"time"

	"github.com/kvassert/kvassert/internal/testlog"
	"github.com/kvassert/kvassert/keyvault"
)

// The helpers leak_test.go shares with keyvault's own tests (there in
// certificate_cache_test.go), for this module's copy of the package's
// external tests.

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// safeBuffer is a log sink safe for background goroutines.
type safeBuffer = testlog.Buffer

func waitUntil(t testing.TB, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 30 s")
		}
	}
}

// withPublicKey returns a copy of o with PublicKey set (as keyvault's own
// tests do).
func withPublicKey(o *keyvault.SignerOptions, pub crypto.PublicKey) *keyvault.SignerOptions {
	c := *o
	c.PublicKey = pub
	return &c
}
