package benchmarks_test

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/internal/testfixture"
	"github.com/kvassert/kvassert/kvasserttest"
)

// cachedAlt is one alternative on the cached path: get returns a token
// from the cache for tenant i (of the warmed ones), without allocating the
// request options in the loop.
type cachedAlt struct {
	name string
	warm getter
	get  func(ctx context.Context, i int) error
}

// BenchmarkCachedGetToken: a cached token for one of n warmed tenants, the
// tenant changing every call, with 1, 1,000 and 10,000 tenants cached:
// kvassert's Credential vs azidentity's ClientCertificateCredential (local
// key, TenantID per request, AdditionallyAllowedTenants "*") vs MSAL Go's
// AcquireTokenByCredential with WithTenantID (one client, local key; its
// AcquireTokenSilent does not serve app-only tokens, checked below). Each serial and with RunParallel (GOMAXPROCS
// goroutines).
func BenchmarkCachedGetToken(b *testing.B) {
	const maxTenants = 10000
	e, tenants := manyTenantWorld(b, maxTenants, "warms 10,000 tenants per alternative")
	ctx := context.Background()

	opts := make([]policy.TokenRequestOptions, maxTenants)
	for i, t := range tenants {
		opts[i] = testfixture.Opts(t)
	}
	credOpts := make([][]confidential.AcquireByCredentialOption, maxTenants)
	for i, t := range tenants {
		credOpts[i] = []confidential.AcquireByCredentialOption{confidential.WithTenantID(t)}
	}

	kv, _ := testfixture.Credential(b, e, nil)
	// The same credential with a shared cache on Redis configured: the
	// cached path must not change (the shared cache is only read on a miss).
	shared, _ := testfixture.Credential(b, e, func(o *kvassert.CredentialOptions) { o.SharedCache = sharedCache(b) })
	az := testfixture.AzidentityLocal(b, e)
	// MSAL Go's confidential AcquireTokenSilent refuses app-only lookups
	// ("WithSilentAccount option is required"): AcquireTokenByCredential,
	// which reads the cache first, is MSAL's cached path for app tokens.
	silent := testfixture.MSALLocal(b, e)
	warm(b, msalGetter(silent), tenants[:1], 1)
	if _, err := silent.AcquireTokenSilent(ctx, graphScopes, confidential.WithTenantID(tenants[0])); err == nil {
		b.Fatal("MSAL's AcquireTokenSilent now serves app-only tokens: add it to the comparison")
	}
	byCred := testfixture.MSALLocal(b, e)
	alts := []cachedAlt{
		{"kvassert", credGetter(kv), func(ctx context.Context, i int) error { _, err := kv.GetToken(ctx, opts[i]); return err }},
		{"kvassert-sharedcache", credGetter(shared), func(ctx context.Context, i int) error { _, err := shared.GetToken(ctx, opts[i]); return err }},
		{"azidentity-cert", credGetter(az), func(ctx context.Context, i int) error { _, err := az.GetToken(ctx, opts[i]); return err }},
		{"msal-bycredential", msalGetter(byCred), func(ctx context.Context, i int) error {
			_, err := byCred.AcquireTokenByCredential(ctx, graphScopes, credOpts[i]...)
			return err
		}},
	}

	warmed := 0
	for _, n := range []int{1, 1000, maxTenants} {
		for _, a := range alts {
			warm(b, a.warm, tenants[warmed:n], 32)
		}
		warmed = n
		e.ResetCounts()
		for _, a := range alts {
			b.Run(fmt.Sprintf("%s/tenants=%d/serial", a.name, n), func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					if err := a.get(ctx, i); err != nil {
						b.Fatal(err)
					}
					if i++; i == n {
						i = 0
					}
				}
			})
			b.Run(fmt.Sprintf("%s/tenants=%d/parallel", a.name, n), func(b *testing.B) {
				b.ReportAllocs()
				var seq atomic.Int64
				b.RunParallel(func(pb *testing.PB) {
					i := int(seq.Add(7919)) % n
					for pb.Next() {
						if err := a.get(ctx, i); err != nil {
							b.Error(err)
							return
						}
						if i++; i == n {
							i = 0
						}
					}
				})
			})
		}
		// A cached path makes no request at all.
		if got := e.Count(kvasserttest.OpToken) + e.Count(kvasserttest.OpKeySign); got != 0 {
			b.Fatalf("cached runs with %d tenants made %d token requests / signs (%v)", n, got, e.Counts())
		}
	}
	runtime.KeepAlive(alts)
}
