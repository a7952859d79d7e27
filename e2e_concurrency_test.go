package kvassert_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/internal/credclock"
	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/internal/rootaccess"
	"github.com/kvassert/kvassert/internal/testfixture"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

func newCredentialOn(t testing.TB, e *kvasserttest.Emulator) (*kvassert.Credential, *kvassert.KeyVaultCertificateSource) {
	t.Helper()
	return testfixture.Credential(t, e, nil)
}

// 1,000 concurrent cold calls for one tenant and scope: one sign, one token
// request.
func TestConcurrentMissesShareOneAcquisition(t *testing.T) {
	e := kvasserttest.NewTB(t, scenario.Demo(), nil)
	cred, src := newCredentialOn(t, e)
	if _, err := rootaccess.Cache(src).Certificate(context.Background()); err != nil { // certificate read once per process
		t.Fatal(err)
	}
	e.ResetCounts()
	const callers = 1000
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, callers)
	tokens := make(chan string, callers)
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			tok, err := cred.GetToken(context.Background(), policy.TokenRequestOptions{TenantID: scenario.DemoContosoTenant, Scopes: []string{graph}})
			errs <- err
			tokens <- tok.Token
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	close(tokens)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	first := ""
	for tok := range tokens {
		if first == "" {
			first = tok
		} else if tok != first {
			t.Fatal("callers got different tokens: the misses were not merged")
		}
	}
	if s, p := e.Count(kvasserttest.OpKeySign), e.Count(kvasserttest.OpToken); s != 1 || p != 1 {
		t.Fatalf("1,000 concurrent cold calls made %d signs and %d token requests, want 1 and 1", s, p)
	}
}

// A cached call for another tenant or scope returns while a miss is blocked
// at the token service.
func TestCachedCallsNeverWaitForMisses(t *testing.T) {
	e := kvasserttest.NewTB(t, scenario.Demo(), nil)
	cred, _ := newCredentialOn(t, e)
	ctx := context.Background()
	warm := func(tenant, scope string) {
		if _, err := cred.GetToken(ctx, policy.TokenRequestOptions{TenantID: tenant, Scopes: []string{scope}}); err != nil {
			t.Fatal(err)
		}
	}
	warm(scenario.DemoContosoTenant, graph)
	warm(scenario.DemoContosoTenant, "https://vault.azure.net/.default")

	e.InjectFault(kvasserttest.OpToken, kvasserttest.Fault{Latency: time.Minute, Times: 1})
	posts := e.Count(kvasserttest.OpToken)
	missDone := make(chan error, 1)
	missCtx, cancelMiss := context.WithCancel(ctx)
	defer cancelMiss()
	go func() {
		_, err := cred.GetToken(missCtx, policy.TokenRequestOptions{TenantID: emuhook.DemoFabrikamTenant, Scopes: []string{graph}})
		missDone <- err
	}()
	waitFor(t, func() bool { return e.Count(kvasserttest.OpToken) > posts }) // the miss is at the token service

	for _, scope := range []string{graph, "https://vault.azure.net/.default"} {
		if _, err := cred.GetToken(ctx, policy.TokenRequestOptions{TenantID: scenario.DemoContosoTenant, Scopes: []string{scope}}); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case err := <-missDone:
		t.Fatalf("the miss finished before the cached calls returned (err %v): ordering not shown", err)
	default: // cached calls returned while the miss is still blocked
	}
}

// 100 tenants x 10 concurrent callers: every token's tid is the tenant asked
// for, and Key Vault signs equal the tokens actually fetched.
func TestTenantIsolationUnderConcurrency(t *testing.T) {
	s, tenants := testfixture.ManyTenants(100)
	e := kvasserttest.NewTB(t, s, nil)
	cred, src := newCredentialOn(t, e)
	if _, err := rootaccess.Cache(src).Certificate(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.ResetCounts()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	for _, tenant := range tenants {
		for range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 3 {
					tok, err := cred.GetToken(context.Background(), policy.TokenRequestOptions{TenantID: tenant, Scopes: []string{graph}})
					mu.Lock()
					switch {
					case err != nil:
						failures = append(failures, err.Error())
					case claimsOf(t, tok.Token)["tid"] != tenant:
						failures = append(failures, fmt.Sprintf("asked %s, got tid %v", tenant, claimsOf(t, tok.Token)["tid"]))
					}
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d failures, first: %s", len(failures), failures[0])
	}
	if signs, posts := e.Count(kvasserttest.OpKeySign), e.Count(kvasserttest.OpToken); signs != 100 || posts != 100 {
		t.Fatalf("signs=%d token requests=%d, want 100 and 100 (one per tenant)", signs, posts)
	}
	if got := rootaccess.CredentialStats(cred).CachedTokens; got != 100 {
		t.Fatalf("cached tokens = %d, want 100", got)
	}
}

// Refresh ahead: past the refresh point the cached token is still handed out
// at once while the new one is fetched in the background.
func TestRefreshAheadDoesNotBlockCallers(t *testing.T) {
	// One-hour tokens; the credential's clock moves 56 minutes ahead, past
	// the refresh point (5 minutes before expiry).
	e := kvasserttest.NewTB(t, scenario.Demo(), nil)
	cred, _ := newCredentialOn(t, e)
	var offset atomic.Int64
	credclock.Set(cred, func() time.Time { return time.Now().Add(time.Duration(offset.Load())) })
	ctx := context.Background()
	opts := policy.TokenRequestOptions{TenantID: scenario.DemoContosoTenant, Scopes: []string{graph}}
	first, err := cred.GetToken(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	offset.Store(int64(56 * time.Minute))
	// The refresh's sign is held at the vault until the caller returned: a
	// caller that waited for the refresh would never return.
	hold := make(chan struct{})
	release := sync.OnceFunc(func() { close(hold) })
	defer release()
	e.InjectFault(kvasserttest.OpKeySign, kvasserttest.Fault{Hold: hold, Times: 1})
	signs := e.Count(kvasserttest.OpKeySign)
	got, err := cred.GetToken(ctx, opts)
	release()
	if err != nil {
		t.Fatal(err)
	}
	if got.Token != first.Token {
		t.Fatal("the caller waited for the refresh instead of getting the cached token")
	}
	waitFor(t, func() bool {
		tok, err := cred.GetToken(ctx, opts)
		return err == nil && tok.Token != first.Token
	})
	// Exactly one refresh: the new token's own refresh point is half of
	// its remaining lifetime away.
	for range 100 {
		if _, err := cred.GetToken(ctx, opts); err != nil {
			t.Fatal(err)
		}
	}
	if e.Count(kvasserttest.OpKeySign) != signs+1 || rootaccess.CredentialStats(cred).BackgroundRefreshes != 1 {
		t.Fatalf("refresh: signs %d -> %d, refreshes %d; want one", signs, e.Count(kvasserttest.OpKeySign), rootaccess.CredentialStats(cred).BackgroundRefreshes)
	}
}
