package rotation_test

import (
	"time"

	"github.com/kvassert/kvassert/rotation"
)

// registerImported opts a roller in to registering imported keys (issue 19
// defect 4).
func registerImported(c *rotation.Config) { c.RegisterImportedKeys = true }

// passTimeout gives a roller's pass its own deadline (issue 19 defect 6).
func passTimeout(d time.Duration) func(*rotation.Config) {
	return func(c *rotation.Config) { c.PassTimeout = d }
}
