package kvassert_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/internal/credclock"
	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/internal/rootaccess"
	"github.com/kvassert/kvassert/internal/testfixture"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// gateClock is a credential clock that, once armed, holds its at-th call
// until released: it stops the acquisition that makes that call at a
// chosen point between its answer from Entra and its cache store.
type gateClock struct {
	armed   atomic.Bool
	calls   atomic.Int64
	at      int64
	held    chan struct{}
	release chan struct{}
}

func (g *gateClock) now() time.Time {
	if g.armed.Load() && g.calls.Add(1) == g.at {
		close(g.held)
		<-g.release
	}
	return time.Now()
}

// A token issued before the customer removed the app must not be cached
// when the refusal (and its eviction of the tenant's tokens) lands between
// the acquisition's check of the negative cache and its store. The clock
// holds the in-flight acquisition right after its token came back (its
// second clock read: the first dates the token): the tenant is offboarded
// then. Before the fix the check and the store were two steps, and the
// store came after the eviction: the removed tenant's token was served
// from memory until it expired.
func TestTokenStoredAfterOffboardingIsNotServed(t *testing.T) {
	w, ht := newHeldWorld(t)
	g := &gateClock{at: 2, held: make(chan struct{}), release: make(chan struct{})}
	credclock.Set(w.Cred, g.now)
	ctx := context.Background()
	if _, err := w.Cred.GetToken(ctx, offboardScopes[0]); err != nil { // the tenant worked
		t.Fatal(err)
	}
	late := ht.holdToken(ctx, w.Cred, offboardScopes[2]) // issued
	g.armed.Store(true)
	close(ht.release)
	<-g.held // the acquisition has its token, not stored yet
	g.armed.Store(false)
	if err := w.Emu.SetConsent(scenario.DemoAppClientID, scenario.DemoContosoTenant, false); err != nil {
		t.Fatal(err)
	}
	refused := make(chan error, 1)
	go func() { // blocks until the store, with the fix
		_, err := w.Cred.GetToken(ctx, scopeOpts(scenario.DemoContosoTenant, "https://storage.azure.com/.default"))
		refused <- err
	}()
	select {
	case err := <-refused:
		authErr(t, err, 700016)
		close(g.release)
	case <-time.After(500 * time.Millisecond):
		close(g.release)
		authErr(t, <-refused, 700016)
	}
	if err := <-late; err != nil {
		t.Fatalf("the caller of the token issued before: %v", err)
	}
	if n := rootaccess.CredentialStats(w.Cred).CachedTokens; n != 0 {
		t.Fatalf("%d tokens cached for the removed tenant", n)
	}
	tok, err := w.Cred.GetToken(ctx, offboardScopes[2])
	if err == nil {
		t.Fatalf("served a token (%d chars) of the removed tenant from memory", len(tok.Token))
	}
	if ae := authErr(t, err, 700016); ae.RefusedUntil.IsZero() {
		t.Fatal("not failing fast")
	}
}

// ForgetTenant drops the tenant's tokens: a token whose request was sent
// before it and answered after it goes to its caller but is not cached
// (before the fix it was, and served after ForgetTenant returned: a SaaS
// that dropped a customer's tokens kept serving them).
func TestTokenAcquiredAcrossForgetTenantIsNotCached(t *testing.T) {
	w, ht := newHeldWorld(t)
	ctx := context.Background()
	if _, err := w.Cred.GetToken(ctx, offboardScopes[0]); err != nil {
		t.Fatal(err)
	}
	late := ht.holdToken(ctx, w.Cred, offboardScopes[2])
	if err := w.Cred.ForgetTenant(ctx, scenario.DemoContosoTenant); err != nil {
		t.Fatal(err)
	}
	close(ht.release)
	if err := <-late; err != nil {
		t.Fatal(err)
	}
	if n := rootaccess.CredentialStats(w.Cred).CachedTokens; n != 0 {
		t.Fatalf("%d tokens cached after ForgetTenant returned", n)
	}
	reqs := w.requests()
	if _, err := w.Cred.GetToken(ctx, offboardScopes[2]); err != nil {
		t.Fatal(err)
	}
	if w.requests() != reqs+1 {
		t.Fatal("the token acquired across ForgetTenant was served from memory")
	}
}

// Only Entra's refusals are remembered: a refusal code in a 5xx or 429
// answer (an outage, throttling, a proxy in the way) is transient and the
// next call goes to Entra; so are the codes of the app's own credential
// (7000215, 700027: the key or certificate, not the tenant) and throttling
// or transient AADSTS codes, in any status.
func TestTransientAnswersAreNotRemembered(t *testing.T) {
	cases := []struct{ status, code int }{
		{500, 700016}, {503, 7000112}, {429, 90002}, {502, 53003},
		{401, 7000215}, {401, 700027}, {400, 50196}, {400, 50053}, {400, 50034}, {400, 90014},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%d/%d", tc.status, tc.code), func(t *testing.T) {
			w, rt := newRefusingWorld(t, func(o *kvassert.CredentialOptions) { o.ClientOptions.Retry.MaxRetries = -1 })
			rt.status = tc.status
			rt.set(scenario.DemoContosoTenant, "", tc.code)
			for i := range 2 {
				reqs := w.requests()
				_, err := w.Cred.GetToken(context.Background(), testfixture.Opts(scenario.DemoContosoTenant))
				if ae := authErr(t, err, tc.code); !ae.RefusedUntil.IsZero() || w.requests() == reqs {
					t.Fatalf("call %d: %v remembered (%d requests)", i, ae, w.requests()-reqs)
				}
			}
			if _, ok := rootaccess.TenantRefused(w.Cred, scenario.DemoContosoTenant); ok {
				t.Fatal("reported as a refused tenant")
			}
		})
	}
}

// A blocking TenantOffboarded callback never holds up GetToken.
func TestBlockingOffboardedCallbackDoesNotBlock(t *testing.T) {
	block, called := make(chan struct{}), make(chan struct{}, 1)
	defer close(block)
	w := newRefusalWorld(t, nil, func(o *kvassert.CredentialOptions) {
		o.TenantOffboarded = func(string, *kvassert.AuthError) { called <- struct{}{}; <-block }
	})
	ctx := context.Background()
	if _, err := w.Cred.GetToken(ctx, offboardScopes[0]); err != nil {
		t.Fatal(err)
	}
	if err := w.Emu.SetConsent(scenario.DemoAppClientID, scenario.DemoContosoTenant, false); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := w.Cred.GetToken(ctx, offboardScopes[2])
		done <- err
	}()
	select {
	case err := <-done:
		authErr(t, err, 700016)
	case <-time.After(10 * time.Second):
		t.Fatal("GetToken waits for a blocked TenantOffboarded")
	}
	<-called
	if _, err := w.Cred.GetToken(ctx, offboardScopes[0]); err == nil {
		t.Fatal("served the offboarded tenant")
	}
	if _, err := w.Cred.GetToken(ctx, testfixture.Opts(emuhook.DemoFabrikamTenant)); err != nil {
		t.Fatal(err)
	}
}
