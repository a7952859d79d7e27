package tenants

import (
	"context"
	"time"
)

// SetSleep replaces the Handler's wait between proof attempts.
func SetSleep(h *Handler, sleep func(ctx context.Context, d time.Duration) bool) { h.sleep = sleep }

// SetNow replaces the Handler's clock (states and the proof's deadline).
func SetNow(h *Handler, now func() time.Time) { h.now = now }
