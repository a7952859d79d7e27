package kvassert

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// The background refresh runs in a goroutine of its own and calls the
// Logger (user code) when it fails: a Logger that panicked there ended the
// process. Now the goroutine recovers, the cached token is still served,
// and the refresh is tried again (and succeeds) later.
func TestBackgroundRefreshRecoversAPanickingLogger(t *testing.T) {
	v := newLifecycleEnv(t, 24*3600, 1)
	v.want(t, testOther, "tok-1", "first token")
	v.pastRefreshTime()
	v.src.fail.Store(true)
	v.log.panicOnWarn.Store(true)
	if tok := v.get(t, testOther); tok != "tok-1" { // starts the refresh, which fails and warns
		t.Fatalf("during the failed refresh got %q", tok)
	}
	v.log.panicOnWarn.Store(false)
	v.src.fail.Store(false)
	// The refresh that panicked left no back-off (it panicked while
	// recording it) or a short one: a later call refreshes.
	v.advance(time.Hour)
	v.get(t, testOther)
	if tok := v.get(t, testOther); tok == "tok-1" {
		t.Fatal("the refresh never ran again after the panic")
	}
}

// Callers whose context has already ended start no acquisition: 20 of
// them, for 20 tenants, made 20 token requests (and 20 signs) in the
// background. Now they get their context's error at once, wrapped, and no
// assertion or token request is made.
func TestCancelledCallersStartNoAcquisition(t *testing.T) {
	v := newLifecycleEnv(t, 3600, 0)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			tenant := strings.Replace(testOther, "2b6e", string(rune('a'+i%6))+"b6e", 1)
			tenant = tenant[:len(tenant)-2] + string(rune('a'+i/6)) + "0"
			_, err := v.c.GetToken(ctx, policy.TokenRequestOptions{TenantID: tenant, Scopes: []string{testScope}})
			if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "kvassert: token for tenant "+tenant) {
				t.Errorf("err = %v, want the context's error, naming the tenant", err)
			}
		})
	}
	wg.Wait()
	// Wait for any acquisition the calls started (none now).
	deadline := time.Now().Add(30 * time.Second)
	for v.c.flights.Len() > 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if a, r := v.src.calls.Load(), v.entra.requests.Load(); a != 0 || r != 0 {
		t.Fatalf("20 cancelled callers made %d assertions and %d token requests", a, r)
	}
	// A live caller still gets a token.
	if tok := v.get(t, testOther); tok == "" {
		t.Fatal("no token")
	}
}
