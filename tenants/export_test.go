package tenants

import (
	"context"
	"time"
)

// SetSleep replaces the Handler's wait between proof attempts.
func SetSleep(h *Handler, sleep func(ctx context.Context, d time.Duration) bool) { h.sleep = sleep }
