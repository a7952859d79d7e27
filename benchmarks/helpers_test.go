package benchmarks_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"

	"github.com/kvassert/kvassert/internal/testfixture"
)

var graphScopes = []string{testfixture.Graph}

// getter fetches a token for a tenant; claims forces the network (cache
// bypass) where the alternative supports it.
type getter func(ctx context.Context, tenant, claims string) (string, error)

// credGetter uses an azcore.TokenCredential (kvassert or azidentity).
func credGetter(c azcore.TokenCredential) getter {
	return func(ctx context.Context, tenant, claims string) (string, error) {
		t, err := c.GetToken(ctx, policy.TokenRequestOptions{TenantID: tenant, Scopes: graphScopes, Claims: claims})
		return t.Token, err
	}
}

// msalGetter uses AcquireTokenByCredential with WithTenantID (and WithClaims).
func msalGetter(c confidential.Client) getter {
	return func(ctx context.Context, tenant, claims string) (string, error) {
		opts := []confidential.AcquireByCredentialOption{confidential.WithTenantID(tenant)}
		if claims != "" {
			opts = append(opts, confidential.WithClaims(claims))
		}
		r, err := c.AcquireTokenByCredential(ctx, graphScopes, opts...)
		return r.AccessToken, err
	}
}

// warm fetches a token for every tenant with workers goroutines.
func warm(tb testing.TB, get getter, tenants []string, workers int) {
	tb.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(tenants) {
					return
				}
				tok, err := get(context.Background(), tenants[i], "")
				if err == nil {
					var tid string
					if tid, err = testfixture.TenantOf(tok); err == nil && tid != tenants[i] {
						err = fmt.Errorf("asked %s, got tid %s", tenants[i], tid)
					}
				}
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		tb.Fatal(err)
	}
}
