package keyvault_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kvassert/kvassert/internal/certcache"
	"github.com/kvassert/kvassert/internal/testfixture"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// Issue 19 (defect 6's sibling in the certificate cache, reported by the
// rotation work): a vault whose nextLink loops made Versions list until the
// caller's deadline (forever with context.Background). It stops with an
// error after a bounded number of pages.
func TestVersionsStopsAtALoopingNextLink(t *testing.T) {
	w := testfixture.NewWorld(t, &testfixture.WorldOptions{Scenario: world()})
	e, cred := w.Emu, w.VaultCred
	opts := e.ClientOptions()
	opts.PerCallPolicies = append(opts.PerCallPolicies, testfixture.LoopingNextLink{})
	c, err := certcache.New(e.VaultURL(scenario.DemoVault), scenario.DemoCertificate, cred, &certcache.Options{ClientOptions: opts})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second) // a safety bound, not the rule tested
	defer cancel()
	_, err = c.Versions(ctx)
	if ctx.Err() != nil {
		t.Fatalf("Versions listed until the test's safety bound: %v", err)
	}
	if err == nil || !strings.Contains(err.Error(), "pages") {
		t.Fatalf("Versions = %v, want an error about the pages", err)
	}
}
