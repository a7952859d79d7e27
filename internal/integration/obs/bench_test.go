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
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/internal/obs"
	"github.com/kvassert/kvassert/internal/testfixture"
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
		c, err := sdk.Meter("bench").Int64Counter(obs.MetricTokenRequests)
		if err != nil {
			b.Fatal(err)
		}
		opts := []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(attribute.String(obs.AttrTokenOutcome, obs.OutcomeCacheHit)))}
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			c.Add(ctx, 1, opts...)
		}
	})
}

// cachedCredential returns a kvassert.Credential on e reporting to tel,
// with one token cached, and the options that hit it.
func cachedCredential(b *testing.B, e *kvasserttest.Emulator, tel telemetry.Options) (*kvassert.Credential, policy.TokenRequestOptions) {
	cred, _ := testfixture.Credential(b, e, func(o *kvassert.CredentialOptions) { o.Telemetry = tel })
	opts := policy.TokenRequestOptions{TenantID: scenario.DemoContosoTenant, Scopes: []string{graph}}
	if _, err := cred.GetToken(context.Background(), opts); err != nil {
		b.Fatal(err)
	}
	return cred, opts
}

// wiredConfigs are the telemetry options the cached GetToken is measured
// with: the zero Options with no global provider installed (what an app
// that never configured OpenTelemetry gets, the baseline), an explicit
// no-op provider, and real SDK providers (ManualReader, in-memory spans),
// without and with the tenant attribute.
func wiredConfigs() []struct {
	name string
	tel  telemetry.Options
} {
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tracetest.NewSpanRecorder()))
	return []struct {
		name string
		tel  telemetry.Options
	}{
		{"global-default", telemetry.Options{}},
		{"noop", telemetry.Options{MeterProvider: noop.NewMeterProvider()}},
		{"sdk", telemetry.Options{MeterProvider: mp, TracerProvider: tp}},
		{"sdk-tenant", telemetry.Options{MeterProvider: mp, TracerProvider: tp, TenantAttribute: true}},
	}
}

// BenchmarkGetTokenHit measures the cache-hit path of the real
// kvassert.Credential.GetToken, with the Hit hook wired in, for each
// telemetry configuration, side by side in one run.
func BenchmarkGetTokenHit(b *testing.B) {
	e := kvasserttest.NewTB(b, scenario.Demo(), nil)
	ctx := context.Background()
	for _, c := range wiredConfigs() {
		cred, opts := cachedCredential(b, e, c.tel)
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := cred.GetToken(ctx, opts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkGetTokenHitInterleaved is BenchmarkGetTokenHit for a shared,
// noisy machine: within each sub-benchmark it alternates blocks of 256
// cached GetToken calls on a credential with the zero telemetry Options
// (baseline) and 256 on one with the configuration measured, so that both
// see the same load, and reports both times and their ratio
// (configured/baseline).
func BenchmarkGetTokenHitInterleaved(b *testing.B) {
	e := kvasserttest.NewTB(b, scenario.Demo(), nil)
	ctx := context.Background()
	base, opts := cachedCredential(b, e, telemetry.Options{})
	const block = 256
	for _, c := range wiredConfigs() {
		cred, _ := cachedCredential(b, e, c.tel)
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			var bare, wired time.Duration
			var n int
			for b.Loop() {
				start := time.Now()
				for range block {
					if _, err := base.GetToken(ctx, opts); err != nil {
						b.Fatal(err)
					}
				}
				mid := time.Now()
				for range block {
					if _, err := cred.GetToken(ctx, opts); err != nil {
						b.Fatal(err)
					}
				}
				bare += mid.Sub(start)
				wired += time.Since(mid)
				n += block
			}
			b.ReportMetric(float64(bare.Nanoseconds())/float64(n), "baseline-ns/call")
			b.ReportMetric(float64(wired.Nanoseconds())/float64(n), "config-ns/call")
			b.ReportMetric(float64(wired)/float64(bare), "ratio")
		})
	}
}
