package keyvault

import (
	"context"
	"time"

	"github.com/kvassert/kvassert/internal/holdoff"
)

// Throttle paces the signs sent to one vault. The signer calls Wait before every keys/sign attempt and
// Throttled after every 429 answer. Implementations are safe for concurrent use.
//
// By default (SignerOptions.Throttle nil) the signers of a vault share one in-process gate per vault
// host: a 429 shuts it for the answer's Retry-After (1 s without one, at most 60 s), and when it
// reopens it releases its waiters gradually (one probe, then as many as the vault took last time
// spread over 500 ms, then twice as many every 50 ms), so that a reopening does not stampede the
// vault. fleet.Throttle shares the hold-off between processes.
type Throttle interface {
	// Wait returns nil when a sign may be sent now, or an error when ctx ends first or when the known
	// hold-off outlasts ctx's deadline (then at once, without waiting; a *HoldOffError tells the
	// signer how long).
	Wait(ctx context.Context) error
	// Throttled records a 429 from the vault; retryAfter is its Retry-After (0 when the answer had none).
	Throttled(retryAfter time.Duration)
}

// HoldOffError is what the in-process gate's Wait returns when the vault's
// hold-off (or the caller's turn in the release that follows it) comes after
// the caller's deadline; its field Remaining is how long the caller would
// have had to wait. Other Throttle implementations may return it too; the
// signer then names the wait in its error.
type HoldOffError = holdoff.Error
