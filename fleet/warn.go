package fleet

import (
	"log/slog"
	"sync"
	"time"
)

// warner logs warnings at most once per interval, counting the ones it
// suppressed. Messages never contain tokens or keys: only Redis errors and
// counts.
type warner struct {
	log   *slog.Logger
	every time.Duration

	mu         sync.Mutex
	last       time.Time
	suppressed int
}

func newWarner(log *slog.Logger, every time.Duration) *warner {
	if log == nil {
		log = slog.Default()
	}
	if every <= 0 {
		every = time.Minute
	}
	return &warner{log: log, every: every}
}

func (w *warner) warn(msg string, err error) {
	w.mu.Lock()
	now := time.Now()
	if !w.last.IsZero() && now.Sub(w.last) < w.every {
		w.suppressed++
		w.mu.Unlock()
		return
	}
	n := w.suppressed
	w.last, w.suppressed = now, 0
	w.mu.Unlock()
	args := []any{"suppressed", n}
	if err != nil {
		args = append(args, "error", err.Error())
	}
	w.log.Warn(msg, args...)
}
