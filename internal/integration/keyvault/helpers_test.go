package keyvault_test

import (
	"crypto"

	"github.com/kvassert/kvassert/internal/testfixture"
	"github.com/kvassert/kvassert/internal/testlog"
	"github.com/kvassert/kvassert/keyvault"
)

// The helpers leak_test.go shares with keyvault's own tests (there in
// certificate_cache_test.go), for this module's copy of the package's
// external tests.

// fakeClock is a settable clock for the cache's TTL and back-off.
type fakeClock = testfixture.Clock

// safeBuffer is a log sink safe for background goroutines.
type safeBuffer = testlog.Buffer

// waitUntil fails the test when cond does not hold within 30 s.
var waitUntil = testfixture.WaitUntil

// withPublicKey returns a copy of o with PublicKey set (as keyvault's own
// tests do).
func withPublicKey(o *keyvault.SignerOptions, pub crypto.PublicKey) *keyvault.SignerOptions {
	c := *o
	c.PublicKey = pub
	return &c
}
