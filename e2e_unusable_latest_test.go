package kvassert_test

import (
	"context"
	"testing"
	"time"

	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// Issue 19 (found by the rotation simulation, finding F8): Entra refuses
// the version in use (its key was retired by a roller elsewhere, or it
// expired), and the vault's latest version cannot sign (an EC key, here).
// The re-read after the refusal failed on that latest version and went no
// further, so every call failed although the app held a registered version
// B. The source goes on to the newest older version that can sign.
func TestRefusalWithAnUnusableLatestVersionFindsTheRegisteredOne(t *testing.T) {
	l := newCertLife(t, time.Hour, 0)
	ctx := context.Background()
	if errs := l.round(ctx, t); len(errs) != 0 {
		t.Fatalf("before: %v", errs[0])
	}
	a := l.using(t)
	b := rotate(t, l.emu, scenario.DemoVault, scenario.DemoCertificate)
	if err := l.emu.RegisterCertificate(scenario.DemoAppClientID, b); err != nil {
		t.Fatal(err)
	}
	for range 3 { // three unusable versions on top: EC keys
		if _, err := emuhook.Of(l.emu).AddCertificateVersion(scenario.DemoVault, scenario.DemoCertificate, emuhook.VersionSpec{EC: true}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.emu.RemoveCertificate(scenario.DemoAppClientID, a); err != nil { // retired elsewhere
		t.Fatal(err)
	}
	if errs := l.round(ctx, t); len(errs) != 0 {
		t.Fatalf("%d of %d tenants failed although the app holds version B's key; the first: %v", len(errs), len(customerTenants), errs[0])
	}
	if got := l.using(t); !got.Equal(b) {
		t.Fatalf("signing with %s, want the registered version B (%s)", thumbprintOf(got), thumbprintOf(b))
	}
}
