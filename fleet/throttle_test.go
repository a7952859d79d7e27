package fleet

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/kvassert/kvassert/internal/redistest"
)

// newThrottle is one replica's throttle for vault ("kvassert-demo.vault.azure.net"
// when none).
func newThrottle(t *testing.T, srv *redistest.Server, o ThrottleOptions, vault ...string) *Throttle {
	t.Helper()
	if len(vault) == 0 {
		vault = []string{"kvassert-demo.vault.azure.net"}
	}
	if o.OpTimeout == 0 {
		o.OpTimeout = time.Second
	}
	o.Logger = slog.New(slog.DiscardHandler)
	th, err := NewThrottle(newClient(t, srv), vault[0], &o)
	if err != nil {
		t.Fatal(err)
	}
	return th
}

// TestThrottleSharesHoldOff: a 429 seen by one replica holds the other off;
// a wait that cannot fit the caller's deadline fails at once.
func TestThrottleSharesHoldOff(t *testing.T) {
	srv := redistest.Start(t)
	a := newThrottle(t, srv, ThrottleOptions{})
	b := newThrottle(t, srv, ThrottleOptions{})
	if err := b.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	a.Throttled(5 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	// At once: had it waited, ctx's own error would end it, without "429".
	err := b.Wait(ctx)
	if err == nil || !strings.Contains(err.Error(), "429") || ctx.Err() != nil {
		t.Fatalf("b.Wait during a's hold-off: %v (ctx: %v)", err, ctx.Err())
	}
	if s := b.Stats(); s.HoldOffs != 1 || s.Fallbacks != 0 {
		t.Fatalf("stats %+v", s)
	}
	// A short hold-off is waited out.
	c := newThrottle(t, srv, ThrottleOptions{}, "other.vault.azure.net")
	d := newThrottle(t, srv, ThrottleOptions{}, "other.vault.azure.net")
	c.Throttled(200 * time.Millisecond)
	if err := d.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d.Stats().HoldOffs != 1 {
		t.Fatalf("d did not see c's hold-off: %+v", d.Stats())
	}
	// The hold-off is per vault: another vault is not held off.
	if err := newThrottle(t, srv, ThrottleOptions{}, "third.vault.azure.net").Wait(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestThrottleBudgetCapsTheFleet: two replicas share a budget of 5 signs
// per window.
func TestThrottleBudgetCapsTheFleet(t *testing.T) {
	srv, raw := startRaw(t)
	o := ThrottleOptions{Budget: 5, Window: time.Minute}
	a, b := newThrottle(t, srv, o), newThrottle(t, srv, o)
	for i := range 5 {
		if err := []*Throttle{a, b}[i%2].Wait(context.Background()); err != nil {
			t.Fatalf("sign %d: %v", i, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for _, th := range []*Throttle{a, b} {
		err := th.Wait(ctx)
		if err == nil || !strings.Contains(err.Error(), "budget") {
			t.Fatalf("a sixth sign in the window: %v", err)
		}
	}
	if n, _ := raw.ZCard(context.Background(), "kvassert:throttle:{kvassert-demo.vault.azure.net}:budget").Result(); n != 5 {
		t.Fatalf("%d signs recorded, want 5", n)
	}
	// A short window frees slots: 3 per 300 ms lets the 4th through after a wait.
	s := ThrottleOptions{Budget: 3, Window: 300 * time.Millisecond}
	c, d := newThrottle(t, srv, s, "short.vault.azure.net"), newThrottle(t, srv, s, "short.vault.azure.net")
	for i := range 4 {
		if err := []*Throttle{c, d}[i%2].Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if c.Stats().BudgetWaits+d.Stats().BudgetWaits == 0 {
		t.Fatal("the fourth sign did not wait for the budget")
	}
}

// TestThrottleDegradesToLocal: with Redis gone, Wait decides locally (own
// hold-off, own budget) without errors.
func TestThrottleDegradesToLocal(t *testing.T) {
	srv := redistest.Start(t)
	a := newThrottle(t, srv, ThrottleOptions{Budget: 3, Window: time.Minute, OpTimeout: 75 * time.Millisecond, BreakerThreshold: 2, BreakerCoolDown: time.Minute})
	srv.Stop()
	for i := range 3 {
		if err := a.Wait(context.Background()); err != nil {
			t.Fatalf("sign %d with Redis down: %v", i, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := a.Wait(ctx); err == nil || !strings.Contains(err.Error(), "budget") {
		t.Fatalf("local budget: %v", err)
	}
	a.Throttled(0) // Redis down: held off locally for 1 s
	if err := a.Wait(ctx); err == nil || !strings.Contains(err.Error(), "429") {
		t.Fatalf("local hold-off: %v", err)
	}
	if s := a.Stats(); s.Fallbacks < 3 || s.Errors == 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestNewThrottleRefusesBadInput(t *testing.T) {
	srv := redistest.Start(t)
	c := newClient(t, srv)
	for name, in := range map[string]struct {
		vault string
		o     ThrottleOptions
	}{
		"no vault":        {},
		"braces in vault": {vault: "a{b}"},
		"negative budget": {vault: "v", o: ThrottleOptions{Budget: -1}},
	} {
		if _, err := NewThrottle(c, in.vault, &in.o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// Throttle has the method set of keyvault's Throttle interface.
var _ interface {
	Wait(context.Context) error
	Throttled(time.Duration)
} = (*Throttle)(nil)
