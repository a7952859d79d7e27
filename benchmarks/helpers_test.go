package benchmarks_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"

	"github.com/kvassert/kvassert/internal/testfixture"
	"github.com/kvassert/kvassert/kvasserttest"
)

var graphScopes = []string{testfixture.Graph}

// getter fetches a token for a tenant; claims forces the network (cache
// bypass) where the alternative supports it.
type getter func(ctx context.Context, tenant, claims string) (string, error)

// credGetter uses an azcore.TokenCredential (kvassert or azidentity).
// manyTenantWorld skips b in -short (why says what it would cost), else
// starts an emulator with n extra tenants and returns it with their IDs.
func manyTenantWorld(b *testing.B, n int, why string) (*kvasserttest.Emulator, []string) {
	b.Helper()
	if testing.Short() {
		b.Skip(why)
	}
	s, tenants := testfixture.ManyTenants(n)
	return kvasserttest.NewTB(b, s, nil), tenants
}

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
	var firstErr atomic.Value
	testfixture.Spread(len(tenants), workers, func(i int) bool {
		tok, err := get(context.Background(), tenants[i], "")
		if err == nil {
			var tid string
			if tid, err = testfixture.TenantOf(tok); err == nil && tid != tenants[i] {
				err = fmt.Errorf("asked %s, got tid %s", tenants[i], tid)
			}
		}
		if err != nil {
			firstErr.CompareAndSwap(nil, err)
			return false
		}
		return true
	})
	if err, _ := firstErr.Load().(error); err != nil {
		tb.Fatal(err)
	}
}
