package kvassert

import (
	"time"

	"github.com/kvassert/kvassert/internal/credclock"
)

// Tests elsewhere in the module move a Credential's clock through
// internal/credclock.
func init() {
	credclock.Register(func(cred any, now func() time.Time) {
		c := cred.(*Credential)
		c.now, c.clockMoved = now, true
	})
}
