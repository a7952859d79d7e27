package reliability_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kvassert/kvassert/internal/credclock"
	"github.com/kvassert/kvassert/internal/rootaccess"
	"github.com/kvassert/kvassert/kvasserttest"
)

// waitFor polls cond until it holds; deadline is a generous safety bound
// (the condition is expected in milliseconds), and what says what never
// happened.
func waitFor(t *testing.T, deadline time.Duration, what func() string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(deadline); !cond(); time.Sleep(2 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("within %v: %s", deadline, what())
		}
	}
}

// Refresh ahead: tokens live 1 h; once traffic runs, the credential's clock
// moves 56 min ahead, past the refresh point (5 min before expiry), so the
// credential refreshes them in the background. Every sign is then held at
// the vault until the test releases it: a caller that waited for a refresh
// would not return while the signs are held. Without any timing guess, the
// test requires that while every tenant's refresh sign is held, every caller
// keeps being served the old, still valid token, with one sign per tenant;
// and that once the signs are released every tenant's callers get the
// refreshed token.
func TestRefreshAheadCallersNeverWaitForKeyVault(t *testing.T) {
	tenants, perTenant := 20, 2
	if long() {
		tenants, perTenant = 100, 2
	}
	// About 20,000 calls a second in all: real traffic, without the callers
	// themselves starving the CPU (which the race detector makes easy).
	every := time.Duration(tenants*perTenant) * 100 * time.Microsecond
	v := newEnv(t, tenants)
	var offset atomic.Int64
	credclock.Set(v.cred, func() time.Time { return time.Now().Add(time.Duration(offset.Load())) })
	base := baseline(v.e)
	ts := v.tenants[:tenants]
	first := make([]string, tenants)
	for i, tn := range ts {
		tok, err := v.get(context.Background(), t, tn)
		if err != nil {
			t.Fatal(err)
		}
		first[i] = tok
	}
	warmSigns := v.e.Count(kvasserttest.OpKeySign)
	signs := func() int64 { return v.e.Count(kvasserttest.OpKeySign) - warmSigns }
	hold := make(chan struct{})
	release := sync.OnceFunc(func() { close(hold) })
	v.e.InjectFault(kvasserttest.OpKeySign, kvasserttest.Fault{Hold: hold})

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // safety bound
	var errs, calls atomic.Int64
	var firstErr atomic.Value
	var held atomic.Bool // every tenant's refresh sign is held at the vault
	served := make([]atomic.Int64, tenants*perTenant)
	refreshed := make([]atomic.Bool, tenants)
	var wg sync.WaitGroup
	stop := func() { cancel(); release(); wg.Wait() }
	defer stop()
	defer v.e.ClearFaults()
	for i, tn := range ts {
		for j := range perTenant {
			n := &served[i*perTenant+j]
			wg.Add(1)
			go func() {
				defer wg.Done()
				tick := time.NewTicker(every)
				defer tick.Stop()
				for {
					select {
					case <-ctx.Done():
						return
					case <-tick.C:
					}
					wasHeld := held.Load()
					tok, err := v.cred.GetToken(ctx, optsFor(tn))
					calls.Add(1)
					if err != nil {
						if ctx.Err() == nil {
							errs.Add(1)
							noteErr(err)
							firstErr.CompareAndSwap(nil, err.Error())
						}
						continue
					}
					n.Add(1)
					if tok.Token == first[i] {
						continue
					}
					if wasHeld && held.Load() {
						t.Errorf("tenant %s: a new token while its refresh sign is held at the vault", tn)
					}
					if tidOf(tok.Token) != tn {
						t.Errorf("asked %s, got a token for %s", tn, tidOf(tok.Token))
					}
					refreshed[i].Store(true)
				}
			}()
		}
	}
	// Traffic runs on every caller, then the clock crosses the refresh point.
	waitFor(t, 30*time.Second, func() string { return "not every caller was served before the refresh point" }, func() bool {
		for i := range served {
			if served[i].Load() == 0 {
				return false
			}
		}
		return true
	})
	offset.Store(int64(56 * time.Minute))
	// Every tenant's background refresh reaches the vault and is held there.
	waitFor(t, 30*time.Second, func() string {
		return fmt.Sprintf("%d of %d tenants' refresh signs reached the vault", signs(), tenants)
	},
		func() bool { return signs() >= int64(tenants) })
	held.Store(true)
	// While they are held, every caller keeps being served: a caller that
	// waited for its tenant's refresh would not return until release.
	mark := make([]int64, len(served))
	for i := range served {
		mark[i] = served[i].Load()
	}
	const more = 5
	waitFor(t, 30*time.Second, func() string {
		for i := range served {
			if served[i].Load() < mark[i]+more {
				return fmt.Sprintf("caller %d of tenant %s was served %d calls while the refresh signs were held, want %d: it waits for Key Vault",
					i%perTenant, ts[i/perTenant], served[i].Load()-mark[i], more)
			}
		}
		return ""
	}, func() bool {
		for i := range served {
			if served[i].Load() < mark[i]+more {
				return false
			}
		}
		return true
	})
	if got := signs(); got != int64(tenants) {
		t.Fatalf("%d refresh signs for %d tenants while held, want one per tenant", got, tenants)
	}
	held.Store(false)
	release()
	waitFor(t, 30*time.Second, func() string {
		return "not every tenant's callers got the refreshed token after the signs were released"
	}, func() bool {
		for i := range refreshed {
			if !refreshed[i].Load() {
				return false
			}
		}
		return true
	})
	stop()
	st := rootaccess.CredentialStats(v.cred)
	t.Logf("%d tenants x %d callers: %d GetToken calls across the refresh, %d background refreshes, %d signs after warm-up",
		tenants, perTenant, calls.Load(), st.BackgroundRefreshes, signs())
	if errs.Load() > 0 {
		t.Fatalf("%d GetToken calls failed during the refresh; first: %v", errs.Load(), firstErr.Load())
	}
	if got := signs(); got != int64(tenants) {
		t.Fatalf("%d signs for %d refreshes, want one per tenant", got, tenants)
	}
	v.e.ClearFaults()
	settle(t, v.e, base, 10*time.Second)
}
