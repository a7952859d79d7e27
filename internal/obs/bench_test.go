package obs_test

import (
	"context"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/internal/obs"
	"github.com/kvassert/kvassert/keyvault"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
	"github.com/kvassert/kvassert/telemetry"
)

// hitHooks are the configurations the cache-hit hook is measured in:
// telemetry off (nil), the global provider with no SDK installed (what an
// app that never configured OpenTelemetry gets), an explicit no-op
// provider, and a real SDK provider with a ManualReader, without and with
// the tenant attribute.
func hitHooks() []struct {
	name string
	c    *obs.Credential
} {
	sdk := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	return []struct {
		name string
		c    *obs.Credential
	}{
		{"off", nil},
		{"global-noop", obs.NewCredential(telemetry.Options{})},
		{"noop", obs.NewCredential(telemetry.Options{MeterProvider: noop.NewMeterProvider()})},
		{"sdk", obs.NewCredential(telemetry.Options{MeterProvider: sdk})},
		{"sdk-tenant", obs.NewCredential(telemetry.Options{MeterProvider: sdk, TenantAttribute: true})},
	}
}

// BenchmarkHit measures the cache-hit hook alone, and next to it
// ("sdk-sync-add") the synchronous SDK counter Add with a pre-built
// attribute set and option slice that the hook avoids.
func BenchmarkHit(b *testing.B) {
	for _, h := range hitHooks() {
		b.Run(h.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				h.c.Hit(tenantA)
			}
		})
	}
	b.Run("sdk-sync-add", func(b *testing.B) {
		sdk := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
		c, err := sdk.Meter("bench").Int64Counter(telemetry.MetricTokenRequests)
		if err != nil {
			b.Fatal(err)
		}
		opts := []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(attribute.String(telemetry.AttrTokenOutcome, telemetry.OutcomeCacheHit)))}
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			c.Add(ctx, 1, opts...)
		}
	})
}

// BenchmarkHitPathInterleaved is BenchmarkHitPath for a shared, noisy
// machine: within each sub-benchmark it alternates blocks of 256 bare cached
// GetToken calls and 256 GetToken+Hit calls, so that both see the same
// load, and reports both times and their ratio (hooked/bare).
func BenchmarkHitPathInterleaved(b *testing.B) {
	cred, opts := cachedCredential(b)
	ctx := context.Background()
	const block = 256
	for _, h := range hitHooks() {
		b.Run(h.name, func(b *testing.B) {
			b.ReportAllocs()
			var bare, hooked time.Duration
			var n int
			for b.Loop() {
				start := time.Now()
				for range block {
					if _, err := cred.GetToken(ctx, opts); err != nil {
						b.Fatal(err)
					}
				}
				mid := time.Now()
				for range block {
					if _, err := cred.GetToken(ctx, opts); err != nil {
						b.Fatal(err)
					}
					h.c.Hit(opts.TenantID)
				}
				bare += mid.Sub(start)
				hooked += time.Since(mid)
				n += block
			}
			b.ReportMetric(float64(bare.Nanoseconds())/float64(n), "bare-ns/call")
			b.ReportMetric(float64(hooked.Nanoseconds())/float64(n), "hooked-ns/call")
			b.ReportMetric(float64(hooked)/float64(bare), "ratio")
		})
	}
}

// cachedCredential returns a kvassert.Credential on the emulator with one
// token cached, and the options that hit it.
func cachedCredential(b *testing.B) (*kvassert.Credential, policy.TokenRequestOptions) {
	e := kvasserttest.NewTB(b, scenario.Demo())
	vaultCred, err := e.ClientSecretCredential(scenario.DemoWorkloadClientID)
	if err != nil {
		b.Fatal(err)
	}
	src, err := kvassert.NewKeyVaultCertificateSource(e.VaultURL(scenario.DemoVault), scenario.DemoCertificate, vaultCred,
		&kvassert.KeyVaultCertificateOptions{CertificateCacheOptions: keyvault.CertificateCacheOptions{Options: keyvault.Options{ClientOptions: e.ClientOptions()}}})
	if err != nil {
		b.Fatal(err)
	}
	cred, err := kvassert.NewCredential(scenario.DemoHomeTenant, scenario.DemoAppClientID, src,
		&kvassert.CredentialOptions{ClientOptions: e.ClientOptions(), AdditionallyAllowedTenants: []string{"*"}})
	if err != nil {
		b.Fatal(err)
	}
	opts := policy.TokenRequestOptions{TenantID: scenario.DemoContosoTenant, Scopes: []string{graph}}
	if _, err := cred.GetToken(context.Background(), opts); err != nil {
		b.Fatal(err)
	}
	return cred, opts
}

// BenchmarkHitPath measures a cached kvassert.Credential.GetToken (the path
// the hook will be called on) plus the hook, side by side with the bare
// GetToken ("baseline"). Until the hook is wired into GetToken it is called
// here right after it; once wired, the same comparison is GetToken with a
// MeterProvider in CredentialOptions against GetToken with none.
func BenchmarkHitPath(b *testing.B) {
	cred, opts := cachedCredential(b)
	ctx := context.Background()
	b.Run("baseline", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := cred.GetToken(ctx, opts); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, h := range hitHooks() {
		b.Run(h.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := cred.GetToken(ctx, opts); err != nil {
					b.Fatal(err)
				}
				h.c.Hit(opts.TenantID)
			}
		})
	}
}
