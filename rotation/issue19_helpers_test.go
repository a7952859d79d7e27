package rotation_test

import (
	"context"
	"time"

	"github.com/kvassert/kvassert/internal/emuhook"
)

// registerImported opts a roller in to registering imported keys (issue 19
// defect 4).
func registerImported(c *config) { c.RegisterImportedKeys = true }

// passTimeout gives a roller's pass its own deadline (issue 19 defect 6).
func passTimeout(d time.Duration) func(*config) {
	return func(c *config) { c.PassTimeout = d }
}

// rollOK runs one pass of a default roller and fails the test on an error.
func (w *world) rollOK() {
	w.t.Helper()
	if _, err := w.roller(nil).Roll(context.Background()); err != nil {
		w.t.Fatal(err)
	}
}

// instantGraph makes w's Graph changes visible at once (no propagation
// delay) and returns w.
func instantGraph(w *world) *world {
	emuhook.Of(w.e).SetGraphPropagationDelay(0)
	return w
}
