package kvassert_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/kvassert/kvassert/kvasserttest"
)

// BenchmarkCachedGetToken measures a cache hit with n tenants cached.
func BenchmarkCachedGetToken(b *testing.B) {
	for _, n := range []int{1, 1000, 10000} {
		s, tenants := manyTenants(n)
		e := kvasserttest.NewTB(b, s)
		cred, _ := newCredentialOn(b, e)
		ctx := context.Background()
		for _, tn := range tenants {
			if _, err := cred.GetToken(ctx, policy.TokenRequestOptions{TenantID: tn, Scopes: []string{graph}}); err != nil {
				b.Fatal(err)
			}
		}
		opts := policy.TokenRequestOptions{TenantID: tenants[n/2], Scopes: []string{graph}}
		b.Run(fmt.Sprintf("tenants=%d/serial", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := cred.GetToken(ctx, opts); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("tenants=%d/parallel", n), func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := cred.GetToken(ctx, opts); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
