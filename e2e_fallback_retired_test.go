package kvassert_test

import (
	"context"
	"testing"
	"time"

	"github.com/kvassert/kvassert/internal/rootaccess"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// Issue 19 (found by the rotation simulation, finding F5): the version the
// source fell back to can itself have been retired since. A roller in
// another process registered version B and removed the key of A, which this
// process still remembers as the accepted one; then someone made version C
// (not registered). The source signs with C (refused), falls back to A
// (refused too: removed), and must go on to B, which the app holds, instead
// of failing the caller.
func TestFallbackToARetiredVersionFindsTheRegisteredOne(t *testing.T) {
	l := newCertLife(t, time.Hour, 0)
	ctx := context.Background()
	if errs := l.round(ctx, t); len(errs) != 0 {
		t.Fatalf("before: %v", errs[0])
	}
	a := l.using(t) // accepted by Entra in this process

	// Another process's roller: B registered, A's key removed.
	b := rotate(t, l.emu, scenario.DemoVault, scenario.DemoCertificate)
	if err := l.emu.RegisterCertificate(scenario.DemoAppClientID, b); err != nil {
		t.Fatal(err)
	}
	if err := l.emu.RemoveCertificate(scenario.DemoAppClientID, a); err != nil {
		t.Fatal(err)
	}
	// Someone renews again: C, not registered, is the latest version.
	rotate(t, l.emu, scenario.DemoVault, scenario.DemoCertificate)
	rootaccess.Cache(l.src).Invalidate() // as the TTL would

	if errs := l.round(ctx, t); len(errs) != 0 {
		t.Fatalf("%d of %d tenants failed although the app holds version B's key; the first: %v", len(errs), len(customerTenants), errs[0])
	}
	if got := l.using(t); !got.Equal(b) {
		t.Fatalf("signing with %s, want the registered version B (%s)", thumbprintOf(got), thumbprintOf(b))
	}
}
