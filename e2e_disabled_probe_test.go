package kvassert_test

import (
	"context"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azcertificates"

	"github.com/kvassert/kvassert/internal/rootaccess"
	"github.com/kvassert/kvassert/internal/testfixture"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// Issue 19 (found by the rotation simulation, finding F7): a renewed
// version Entra refused is set aside, and tried again after the TTL. If a
// person disabled it meanwhile, Key Vault refuses to sign with it: that is
// no Entra refusal, and every later call failed. The source goes back to
// the accepted version instead, and a re-read does not keep the disabled
// one.
func TestDisabledNewestVersionFallsBackToTheAcceptedOne(t *testing.T) {
	l := newCertLife(t, time.Second, 0)
	ctx := context.Background()
	if errs := l.round(ctx, t); len(errs) != 0 {
		t.Fatalf("before: %v", errs[0])
	}
	accepted := l.using(t)
	renewed := rotate(t, l.emu, scenario.DemoVault, scenario.DemoCertificate) // not registered
	rootaccess.Cache(l.src).Invalidate()
	if errs := l.round(ctx, t); len(errs) != 0 { // refused, set aside, the accepted version signs
		t.Fatalf("after the renewal: %v", errs[0])
	}
	v2 := rootaccess.Cache(l.src).AcceptedCertificate()
	if v2 == nil || !v2.Certificate.Equal(accepted) {
		t.Fatalf("accepted version %v, want the first one", v2)
	}

	// A person disables the renewed version.
	client := testfixture.Certificates(t, l.emu, scenario.DemoVault)
	newest, err := rootaccess.Cache(l.src).Newest(ctx)
	if err != nil || !newest.Certificate.Equal(renewed) {
		t.Fatalf("newest: %v", err)
	}
	if _, err := client.UpdateCertificate(ctx, scenario.DemoCertificate, newest.Version,
		azcertificates.UpdateCertificateParameters{CertificateAttributes: &azcertificates.CertificateAttributes{Enabled: to.Ptr(false)}}, nil); err != nil {
		t.Fatal(err)
	}

	for round := range 4 {
		time.Sleep(1100 * time.Millisecond) // past the TTL: the refused version's next try, and a re-read
		if errs := l.round(ctx, t); len(errs) != 0 {
			t.Fatalf("round %d after the renewed version was disabled: %d of %d tenants failed; the first: %v", round, len(errs), len(customerTenants), errs[0])
		}
	}
	if got := l.using(t); !got.Equal(accepted) {
		t.Fatalf("signing with %s, want the accepted version", thumbprintOf(got))
	}
}
