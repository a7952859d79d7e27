package rotation

import (
	"context"
	"time"
)

// Test hooks for the external tests (package rotation_test).

// The tags a roll keeps on a version (documented on VersionStatus.Tags).
const (
	TagKeyID    = tagKeyID
	TagAccepted = tagAccepted
	TagRemoved  = tagRemoved
)

// SetClock makes a Roller built with o read now instead of time.Now (the
// roll's clock and, unless SetProbeClock, its probes') and wait with sleep.
func SetClock(o *Options, now func() time.Time, sleep func(ctx context.Context, d time.Duration) error) {
	o.now, o.sleep = now, sleep
}

// SetProbeClock gives the probe assertions their own clock.
func SetProbeClock(o *Options, now func() time.Time) { o.probeNow = now }
