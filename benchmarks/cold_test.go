package benchmarks_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/internal/dotnetref"
	"github.com/kvassert/kvassert/internal/testfixture"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// Injected round-trip times: every Key Vault operation 20 ms, every token
// service operation (discovery included) 40 ms. The floor of a cold token is
// one Key Vault round trip plus one token round trip.
const (
	kvLatency    = 20 * time.Millisecond
	entraLatency = 40 * time.Millisecond
	floor        = kvLatency + entraLatency
)

// forceNetwork is a claims challenge: every alternative bypasses its token
// cache for it, so a token for an already-known tenant comes from the network.
const forceNetwork = `{"access_token":{"xms_cc":{"values":["cp1"]}}}`

// BenchmarkColdToken: the wall time of one token that is not cached, with
// 20 ms Key Vault and 40 ms token-service round trips injected, and the Key
// Vault and token-service calls per token (metrics kv-calls/op and
// entra-calls/op; x-floor is the time over the 60 ms floor).
//
//   - new-tenant: the first token in a tenant (each iteration a tenant never
//     seen before); every MSAL-based alternative also fetches the tenant's
//     OpenID configuration then (kvassert derives it unless
//     FetchOpenIDConfiguration is set).
//   - known-tenant: a fresh token in a tenant already used (the cache
//     bypassed with a claims challenge): what every later token costs.
//
// Alternatives: kvassert (Credential over a Key Vault certificate source;
// -fetch-discovery with FetchOpenIDConfiguration, as before 87705ad);
// kvassert's source in plain MSAL Go; the .NET library's two strategies as
// it behaves (dotnet-cert: GET certificate + GET key + sign; dotnet-key:
// GET key + sign) and idealised without CryptographyClient's key GET
// (dotnet-cert-noprobe, dotnet-key-noprobe); and MSAL Go with a local
// exportable key (msal-localkey, the insecure baseline).
func BenchmarkColdToken(b *testing.B) {
	s, tenants := testfixture.ManyTenants(3000)
	e := kvasserttest.NewTB(b, s, nil)
	var next atomic.Int64
	fresh := func() string { return tenants[int(next.Add(1))%len(tenants)] }

	kv, src := testfixture.Credential(b, e, nil)
	kvFetch, _ := testfixture.Credential(b, e, func(o *kvassert.CredentialOptions) { o.FetchOpenIDConfiguration = true })
	kvMSAL, err := kvassert.NewMSALCredential(src)
	if err != nil {
		b.Fatal(err)
	}
	alts := []struct {
		name string
		get  getter
	}{
		{"kvassert", credGetter(kv)},
		{"kvassert-fetch-discovery", credGetter(kvFetch)},
		{"kvassert-source-in-msal", msalGetter(testfixture.MSAL(b, e, kvMSAL))},
		{"dotnet-cert", msalGetter(testfixture.MSAL(b, e, dotnetref.Credential(testfixture.DotnetCertificate(b, e, false))))},
		{"dotnet-key", msalGetter(testfixture.MSAL(b, e, dotnetref.Credential(testfixture.DotnetKey(b, e, false))))},
		{"dotnet-cert-noprobe", msalGetter(testfixture.MSAL(b, e, dotnetref.Credential(testfixture.DotnetCertificate(b, e, true))))},
		{"dotnet-key-noprobe", msalGetter(testfixture.MSAL(b, e, dotnetref.Credential(testfixture.DotnetKey(b, e, true))))},
		{"msal-localkey", msalGetter(testfixture.MSALLocal(b, e))},
	}
	// Warm every alternative in the home tenant (vault token, challenge,
	// certificate read where the alternative caches it): the known tenant.
	known := scenario.DemoHomeTenant
	for _, a := range alts {
		if _, err := a.get(context.Background(), known, ""); err != nil {
			b.Fatalf("%s: %v", a.name, err)
		}
	}
	testfixture.InjectLatency(e, kvLatency, entraLatency)

	for _, mode := range []string{"new-tenant", "known-tenant"} {
		for _, a := range alts {
			b.Run(mode+"/"+a.name, func(b *testing.B) {
				ctx := context.Background()
				e.ResetCounts()
				start := time.Now()
				for i := 0; i < b.N; i++ {
					tenant, claims := known, forceNetwork
					if mode == "new-tenant" {
						tenant, claims = fresh(), ""
					}
					tok, err := a.get(ctx, tenant, claims)
					if err != nil {
						b.Fatal(err)
					}
					if tid, err := testfixture.TenantOf(tok); err != nil || tid != tenant {
						b.Fatalf("asked %s, got tid %q (%v)", tenant, tid, err)
					}
				}
				elapsed := time.Since(start)
				n := float64(b.N)
				b.ReportMetric(float64(testfixture.Sum(e, testfixture.VaultOps))/n, "kv-calls/op")
				b.ReportMetric(float64(testfixture.Sum(e, testfixture.EntraOps))/n, "entra-calls/op")
				b.ReportMetric(float64(elapsed)/n/float64(floor), "x-floor")
			})
		}
	}
}
