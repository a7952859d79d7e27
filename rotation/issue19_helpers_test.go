package rotation_test

import (
	"time"
)

// registerImported opts a roller in to registering imported keys (issue 19
// defect 4).
func registerImported(c *config) { c.RegisterImportedKeys = true }

// passTimeout gives a roller's pass its own deadline (issue 19 defect 6).
func passTimeout(d time.Duration) func(*config) {
	return func(c *config) { c.PassTimeout = d }
}
