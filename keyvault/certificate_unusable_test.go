package keyvault_test

import (
	"context"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azcertificates"

	"github.com/kvassert/kvassert/internal/testcert"
	"github.com/kvassert/kvassert/internal/testfixture"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// importPrestaged imports into the demo certificate a new latest version
// that is valid only from notBefore on (a pre-staged certificate), and
// returns its version.
func importPrestaged(t *testing.T, e *kvasserttest.Emulator, notBefore time.Time) string {
	t.Helper()
	return testfixture.Import(t, e, scenario.DemoCertificate, testcert.New(t, &testcert.Options{Serial: 42, CommonName: "kvassert demo SaaS",
		NotBefore: notBefore, NotAfter: notBefore.Add(365 * 24 * time.Hour)}))
}

// Issue 19 (found by the rotation simulation): a pre-staged latest version
// (valid only from a later date) must not replace the valid version in use:
// every token request failed with "certificate not yet valid" until that
// date. The cache keeps signing with the valid version and switches once
// the new one is valid.
func TestCertificateCacheKeepsTheValidVersionWhileTheLatestIsNotYetValid(t *testing.T) {
	e := kvasserttest.NewTB(t, world(), nil)
	ctx := context.Background()
	c, clock, _ := newCache(t, e, time.Hour)
	v1, err := c.Certificate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	v2 := importPrestaged(t, e, clock.Now().Add(48*time.Hour))

	c.Invalidate() // the next call waits for a read of the latest version
	got, err := c.Certificate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != v1.Version {
		t.Fatalf("signing with the not-yet-valid latest version %s, want the valid version %s", got.Version, v1.Version)
	}
	clock.Add(2 * time.Hour) // past the TTL: a background read finds v2 still not valid
	reads := e.Count(kvasserttest.OpCertificateGet)
	if _, err := c.Certificate(ctx); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() bool { return e.Count(kvasserttest.OpCertificateGet) > reads })
	c.Invalidate()
	if got, err := c.Certificate(ctx); err != nil || got.Version != v1.Version {
		t.Fatalf("after a re-read: %v, %v; want %s", got, err, v1.Version)
	}

	clock.Add(48 * time.Hour) // v2 is valid now
	c.Invalidate()
	if got, err := c.Certificate(ctx); err != nil || got.Version != v2 {
		t.Fatalf("once valid: %v, %v; want %s", got, err, v2)
	}
}

// A cache started while the latest version cannot sign (not yet valid, or
// disabled) signs with the newest older version that can.
func TestCertificateCacheStartsOnAnOlderVersionWhenTheLatestCannotSign(t *testing.T) {
	t.Run("not yet valid", func(t *testing.T) {
		e := kvasserttest.NewTB(t, world(), nil)
		old, _ := e.Certificate(scenario.DemoVault, scenario.DemoCertificate)
		importPrestaged(t, e, time.Now().Add(48*time.Hour))
		c, _, _ := newCache(t, e, time.Hour)
		got, err := c.Certificate(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if !got.Certificate.Equal(old) {
			t.Fatalf("signing with %s (valid from %s), want the valid older version", got.Version, got.Certificate.NotBefore)
		}
	})
	t.Run("disabled", func(t *testing.T) {
		e := kvasserttest.NewTB(t, world(), nil)
		old, _ := e.Certificate(scenario.DemoVault, scenario.DemoCertificate)
		v2 := renew(t, e)
		if _, err := testfixture.Certificates(t, e, scenario.DemoVault).UpdateCertificate(context.Background(), scenario.DemoCertificate, v2,
			azcertificates.UpdateCertificateParameters{CertificateAttributes: &azcertificates.CertificateAttributes{Enabled: to.Ptr(false)}}, nil); err != nil {
			t.Fatal(err)
		}
		c, _, _ := newCache(t, e, time.Hour)
		got, err := c.Certificate(context.Background())
		if err != nil {
			t.Fatalf("the latest version is disabled and an older one is valid, but: %v", err)
		}
		if !got.Certificate.Equal(old) {
			t.Fatalf("signing with %s, want the valid older version", got.Version)
		}
	})
}
