package reliability_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/internal/rootaccess"
	"github.com/kvassert/kvassert/kvasserttest"
)

// Every injected Key Vault and token-service fault ends in a token or a
// clear error within a bound, never a hang, a panic or a leaked goroutine.
func TestFaultsEndInTokenOrClearError(t *testing.T) {
	v := newEnv(t, 64)
	base := baseline(v.e)
	const sec = time.Second
	cases := []struct {
		name     string
		op       kvasserttest.Op
		fault    kvasserttest.Fault
		deadline time.Duration // the caller's; 0: 30 s
		want     []string      // nil: a token; else substrings of the error
		within   time.Duration // the call returns within about this (see bound below)
		hold     bool          // the faulted request is held at the server until the call returned
		long     bool          // only in the long form
		// reason: substrings a clear error should also have; missing ones
		// are logged as a known gap (see knownGaps) instead of failing.
		reason []string
	}{
		{name: "vault 429 with Retry-After, once", op: kvasserttest.OpKeySign, fault: kvasserttest.Fault{Status: 429, RetryAfter: sec, Times: 1}, within: 5 * sec},
		{name: "vault 429 without Retry-After, twice", op: kvasserttest.OpKeySign, fault: kvasserttest.Fault{Status: 429, Times: 2}, within: 5 * sec},
		// Since f243238 the signer waits out throttling while its context
		// allows: the shared acquisition's (AcquireTimeout, 2 min), so a
		// caller sees its own deadline pass.
		{name: "vault 429 without Retry-After, always", op: kvasserttest.OpKeySign, fault: kvasserttest.Fault{Status: 429}, deadline: 3 * sec, want: []string{"deadline exceeded"}, reason: []string{"429"}, within: 4 * sec},
		{name: "vault 429 with Retry-After, always", op: kvasserttest.OpKeySign, fault: kvasserttest.Fault{Status: 429, RetryAfter: sec}, deadline: 5 * sec, want: []string{"deadline exceeded"}, reason: []string{"429"}, within: 6 * sec, long: true},
		{name: "vault 500 once", op: kvasserttest.OpKeySign, fault: kvasserttest.Fault{Status: 500, Times: 1}, within: 5 * sec},
		{name: "vault 503 always", op: kvasserttest.OpKeySign, fault: kvasserttest.Fault{Status: 503}, want: []string{"503"}, within: 5 * sec},
		{name: "vault dropped connection once", op: kvasserttest.OpKeySign, fault: kvasserttest.Fault{Drop: true, Times: 1}, within: 5 * sec},
		{name: "vault dropped connection always", op: kvasserttest.OpKeySign, fault: kvasserttest.Fault{Drop: true}, want: []string{"keyvault: signing"}, within: 5 * sec},
		{name: "vault slower than the caller's deadline", op: kvasserttest.OpKeySign, fault: kvasserttest.Fault{Times: 1}, hold: true, deadline: 300 * time.Millisecond, want: []string{"deadline exceeded"}, within: 300 * time.Millisecond},
		{name: "token service 429 with Retry-After, once", op: kvasserttest.OpToken, fault: kvasserttest.Fault{Status: 429, RetryAfter: sec, Times: 1}, within: 5 * sec},
		{name: "token service 429 always", op: kvasserttest.OpToken, fault: kvasserttest.Fault{Status: 429}, want: []string{"429"}, within: 5 * sec},
		{name: "token service 500 once", op: kvasserttest.OpToken, fault: kvasserttest.Fault{Status: 500, Times: 1}, within: 5 * sec},
		{name: "token service 502 twice", op: kvasserttest.OpToken, fault: kvasserttest.Fault{Status: 502, Times: 2}, within: 5 * sec},
		{name: "token service 503 always", op: kvasserttest.OpToken, fault: kvasserttest.Fault{Status: 503}, want: []string{"503"}, within: 5 * sec},
		{name: "token service dropped connection once", op: kvasserttest.OpToken, fault: kvasserttest.Fault{Drop: true, Times: 1}, within: 5 * sec},
		{name: "token service dropped connection always", op: kvasserttest.OpToken, fault: kvasserttest.Fault{Drop: true}, want: []string{"token for tenant"}, within: 5 * sec},
		{name: "token service slower than the caller's deadline", op: kvasserttest.OpToken, fault: kvasserttest.Fault{Times: 1}, hold: true, deadline: 300 * time.Millisecond, want: []string{"deadline exceeded"}, within: 300 * time.Millisecond},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.long && !long() {
				t.Skip("long form only")
			}
			tenant := v.fresh(t)
			fault := c.fault
			release := func() {}
			if c.hold {
				// The server answers only once the caller has returned: a
				// caller that waited for it would never return.
				hold := make(chan struct{})
				fault.Hold, release = hold, sync.OnceFunc(func() { close(hold) })
				defer release()
			}
			v.e.InjectFault(c.op, fault)
			defer v.e.ClearFaults()
			deadline := c.deadline
			if deadline == 0 {
				deadline = 30 * sec
			}
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			start := time.Now()
			var tok string
			var err error
			noPanic(t, "GetToken", func() { tok, err = v.get(ctx, t, tenant) })
			took := time.Since(start)
			release()
			// A safety bound, not a measurement: what it catches is a call
			// that waits for the acquisition's own timeout (2 min) instead
			// of its retries or its caller's deadline; the slack keeps it
			// reliable on a loaded machine under -race.
			if bound := c.within + 15*sec; took > bound {
				t.Errorf("GetToken took %v, want about %v (at most %v)", took, c.within, bound)
			}
			switch {
			case c.want == nil && err != nil:
				t.Fatalf("want a token, got %v", err)
			case c.want == nil && tok == "":
				t.Fatal("empty token")
			case c.want != nil && err == nil:
				t.Fatal("want an error, got a token")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			for _, w := range c.reason {
				if err != nil && !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks the reason %q:\n%v", w, err)
				}
			}
			if err != nil {
				t.Logf("error (after %v): %v", took.Round(time.Millisecond), err)
				if !strings.Contains(err.Error(), tenant) && !strings.Contains(err.Error(), "deadline") {
					t.Errorf("error does not name the tenant:\n%v", err)
				}
				if len(err.Error()) > 4096 {
					t.Errorf("error is %d bytes long", len(err.Error()))
				}
			}
			if c.deadline != 0 {
				// The acquisition went on without the caller: the next
				// caller joins it and gets its token.
				v.e.ClearFaults()
				ctx, cancel := context.WithTimeout(context.Background(), 10*sec)
				defer cancel()
				if _, err := v.get(ctx, t, tenant); err != nil {
					t.Fatalf("after the deadline, the shared acquisition failed: %v", err)
				}
			}
			v.e.ClearFaults()
			settle(t, v.e, base, 10*sec)
		})
	}
}

// A certificate read that fails (cold source) is a clear error, and the
// next call reads it again.
func TestCertificateReadFailure(t *testing.T) {
	v := newEnv(t, 4)
	base := baseline(v.e)
	rootaccess.Cache(v.src).Invalidate() // the next assertion re-reads; a stale certificate is not used on failure
	v.e.InjectFault(kvasserttest.OpCertificateGet, kvasserttest.Fault{Status: 503})
	tenant := v.fresh(t)
	_, err := v.get(context.Background(), t, tenant)
	if err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("want a 503 naming the certificate read, got %v", err)
	}
	v.e.ClearFaults()
	if _, err := v.get(context.Background(), t, tenant); err != nil {
		t.Fatalf("after the vault recovered: %v", err)
	}
	settle(t, v.e, base, 10*time.Second)
}

// Rotation: a new certificate version that is registered on the app is
// picked up after AADSTS700027 (one retry); one that is not registered ends
// in AADSTS700027 with a hint after exactly one re-read.
func TestRotationAADSTS700027(t *testing.T) {
	v := newEnv(t, 4)
	base := baseline(v.e)
	ctx := context.Background()
	old, err := v.e.Certificate("kvassert-demo", "saas-app-auth")
	if err != nil {
		t.Fatal(err)
	}

	// Not registered: the old one is removed, the new one never added.
	rotated := rotate(t, v.e)
	if err := v.e.RemoveCertificate(appID, old); err != nil {
		t.Fatal(err)
	}
	reads := v.e.Count(kvasserttest.OpCertificateGet)
	_, err = v.get(ctx, t, v.fresh(t))
	var ae *kvassert.AuthError
	if !errors.As(err, &ae) || ae.Code != 700027 || !strings.Contains(err.Error(), "hint:") {
		t.Fatalf("want AuthError 700027 with a hint, got %v", err)
	}
	if n := v.e.Count(kvasserttest.OpCertificateGet) - reads; n != 1 {
		t.Fatalf("certificate re-reads after 700027: %d, want 1", n)
	}

	// Registered: the next token works.
	if err := v.e.RegisterCertificate(appID, rotated); err != nil {
		t.Fatal(err)
	}
	if _, err := v.get(ctx, t, v.fresh(t)); err != nil {
		t.Fatalf("after registering the new version: %v", err)
	}
	settle(t, v.e, base, 10*time.Second)
}

// Clock skew between this machine and Entra: within Entra's 5 minutes the
// token comes; beyond it, AADSTS700024 with the clock hint. The emulator's
// clock (Entra's and the vault's, which agree in reality) is set before the
// vault token is issued, as Entra would issue it.
func TestClockSkew(t *testing.T) {
	for _, c := range []struct {
		skew time.Duration
		ok   bool
	}{
		{3 * time.Minute, true},
		{-3 * time.Minute, true},
		{-7 * time.Minute, false}, // Entra behind: the assertion's nbf is in its future
		{16 * time.Minute, false}, // Entra ahead: the assertion (10 min) expired
	} {
		t.Run("entra"+c.skew.String(), func(t *testing.T) {
			skew := c.skew
			v := newEnvWith(t, 2, func(e *kvasserttest.Emulator) {
				e.SetClock(func() time.Time { return time.Now().Add(skew) })
			})
			base := baseline(v.e)
			_, err := v.get(context.Background(), t, v.fresh(t))
			if c.ok {
				if err != nil {
					t.Fatalf("skew %v: %v", skew, err)
				}
			} else {
				var ae *kvassert.AuthError
				if !errors.As(err, &ae) || ae.Code != 700024 || !strings.Contains(err.Error(), "clock") {
					t.Fatalf("skew %v: want AuthError 700024 with the clock hint, got %v", skew, err)
				}
			}
			settle(t, v.e, base, 10*time.Second)
		})
	}
}
