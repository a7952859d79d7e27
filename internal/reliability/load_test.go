package reliability_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kvassert/kvassert/internal/rootaccess"
	"github.com/kvassert/kvassert/kvasserttest"
)

// 100 tenants x 50 goroutines for a bounded time (2 s short, 30 s long):
// every token is for the tenant asked for, and Key Vault signs equal the
// tokens actually fetched from the token service, which equal the
// credential's acquisitions.
func TestLoadManyTenantsManyCallers(t *testing.T) {
	const tenants, perTenant = 100, 50
	d := 2 * time.Second
	if long() {
		d = 30 * time.Second
	}
	v := newEnv(t, tenants)
	base := baseline(v.e)
	v.e.ResetCounts()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()

	var calls, failures, wrong atomic.Int64
	var firstFailure atomic.Value
	var mu sync.Mutex
	distinct := map[string]bool{}
	var wg sync.WaitGroup
	for _, tenant := range v.tenants[:tenants] {
		for range perTenant {
			wg.Add(1)
			go func() {
				defer wg.Done()
				seen := ""
				for ctx.Err() == nil {
					tok, err := v.cred.GetToken(ctx, optsFor(tenant))
					calls.Add(1)
					if err != nil {
						if ctx.Err() == nil {
							failures.Add(1)
							firstFailure.CompareAndSwap(nil, err.Error())
							noteErr(err)
						}
						continue
					}
					if tok.Token == seen {
						continue
					}
					seen = tok.Token
					if tid := tidOf(tok.Token); tid != tenant {
						wrong.Add(1)
						firstFailure.CompareAndSwap(nil, fmt.Sprintf("asked %s, got a token for %s", tenant, tid))
					}
					mu.Lock()
					distinct[tok.Token] = true
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	// Acquisitions still in flight when the period ended go on without their
	// callers: one more call per tenant joins (or finds) each, so that
	// every token fetched is counted.
	for _, tenant := range v.tenants[:tenants] {
		tok, err := v.cred.GetToken(context.Background(), optsFor(tenant))
		if err != nil {
			t.Fatalf("after the load: %v", err)
		}
		if tid := tidOf(tok.Token); tid != tenant {
			t.Fatalf("asked %s, got a token for %s", tenant, tid)
		}
		distinct[tok.Token] = true
	}

	signs, posts := v.e.Count(kvasserttest.OpKeySign), v.e.Count(kvasserttest.OpToken)
	st := rootaccess.CredentialStats(v.cred)
	t.Logf("%v: %d GetToken calls, %d distinct tokens, %d signs, %d token POSTs, %d acquisitions, %d background refreshes",
		d, calls.Load(), len(distinct), signs, posts, st.TokenRequests, st.BackgroundRefreshes)
	if n := failures.Load() + wrong.Load(); n > 0 {
		t.Fatalf("%d failures and %d cross-tenant tokens; first: %v", failures.Load(), wrong.Load(), firstFailure.Load())
	}
	if signs != posts || posts != st.TokenRequests || int64(len(distinct)) != posts {
		t.Fatalf("signs %d, token POSTs %d, acquisitions %d, distinct tokens %d: want all equal", signs, posts, st.TokenRequests, len(distinct))
	}
	if posts < tenants {
		t.Fatalf("only %d tokens for %d tenants", posts, tenants)
	}
	settle(t, v.e, base, 10*time.Second)
}
