package rotation_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// recordHandler records the level and message of every record.
type recordHandler struct {
	mu    sync.Mutex
	lines []string
}

func (h *recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lines = append(h.lines, r.Level.String()+" "+r.Message)
	return nil
}
func (h *recordHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordHandler) WithGroup(string) slog.Handler      { return h }

func (h *recordHandler) atLeast(l slog.Level) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, line := range h.lines {
		lv, _, _ := strings.Cut(line, " ")
		var level slog.Level
		if level.UnmarshalText([]byte(lv)) == nil && level >= l {
			out = append(out, line)
		}
	}
	return out
}

// TestRollLogsNoRoutineLineByDefault: without Options.Logger a roll writes
// its routine steps at Debug (the program's default logger at Info shows
// nothing), and steps that need a person at Warn; with a Logger, the
// routine steps are Info.
func TestRollLogsNoRoutineLineByDefault(t *testing.T) {
	h := &recordHandler{}
	old := slog.Default()
	slog.SetDefault(slog.New(h))
	t.Cleanup(func() { slog.SetDefault(old) })

	w := instantGraph(newWorld(t, nil))
	w.advance(300 * 24 * time.Hour) // the vault has renewed: the roll registers the new version
	rep, err := w.roller(func(c *config) { c.Logger = nil }).Roll(context.Background())
	if err != nil || !rep.Changed {
		t.Fatalf("roll: %v, changed %v", err, rep.Changed)
	}
	if lines := h.atLeast(slog.LevelInfo); len(lines) != 0 {
		t.Errorf("routine lines at Info or above on the default logger: %q", lines)
	}
	if lines := h.atLeast(slog.LevelDebug); len(lines) < len(rep.Steps) {
		t.Errorf("%d Debug lines for %d steps", len(lines), len(rep.Steps))
	}

	mine := &recordHandler{}
	if _, err := w.roller(func(c *config) { c.Logger = slog.New(mine) }).Roll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(mine.atLeast(slog.LevelInfo)) == 0 {
		t.Error("a caller's Logger got no Info line")
	}
}
