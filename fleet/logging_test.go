package fleet

import (
	"bytes"
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/kvassert/kvassert/internal/redistest"
)

// TestHealthyFleetLogsNothing: with Redis healthy, sharing tokens and
// pacing signs write no line at all, not even at Debug: the package logs
// only warnings an operator acts on (TestWarningsAreRateLimited).
func TestHealthyFleetLogsNothing(t *testing.T) {
	srv := redistest.Start(t)
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, _ := newCache(t, srv, CacheOptions{Logger: logger})
	b, _ := newCache(t, srv, CacheOptions{Logger: logger})
	th := newThrottle(t, srv, ThrottleOptions{Budget: 10})
	th.warn = newWarner(logger, 0)
	ctx := context.Background()
	acq := newAcquirer("quiet")
	for _, c := range []*Cache{a, b, a} {
		if _, err := c.Token(ctx, testKey(tenantN(1)), azcore.AccessToken{}, acq.acquire); err != nil {
			t.Fatal(err)
		}
	}
	if err := th.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	tenant := tenantOf(testKey(tenantN(2)))
	if err := a.Refuse(ctx, tenant, refusal(700016, time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := b.Refusal(ctx, tenant); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if err := b.Forget(ctx, tenant); err != nil {
		t.Fatal(err)
	}
	if acq.n.Load() != 1 || logs.Len() != 0 {
		t.Fatalf("%d acquisitions; logged %q", acq.n.Load(), logs.String())
	}
}
