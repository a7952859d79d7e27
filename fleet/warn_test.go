package fleet

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestWarningsAreRateLimited(t *testing.T) {
	var logs syncBuffer
	w := newWarner(slog.New(slog.NewTextHandler(&logs, nil)), time.Hour)
	for range 5 {
		w.warn("fleet: Redis operation failed", errors.New("dial tcp: connection refused"))
	}
	if n := strings.Count(logs.String(), "Redis operation failed"); n != 1 {
		t.Fatalf("%d warnings logged in one interval, want 1:\n%s", n, logs.String())
	}
	w.last = time.Now().Add(-2 * time.Hour) // the interval has passed
	w.warn("fleet: Redis operation failed", nil)
	if !strings.Contains(logs.String(), "suppressed=4") {
		t.Fatalf("the suppressed count is not reported:\n%s", logs.String())
	}
}
