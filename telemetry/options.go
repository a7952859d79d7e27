package telemetry

import (
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/tracing"
	"github.com/kvassert/kvassert/internal/azotel"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// Options select where kvassert sends its metrics and spans. The zero value
// uses OpenTelemetry's global providers, so an application that configured
// OpenTelemetry (otel.SetMeterProvider, otel.SetTracerProvider) gets
// kvassert's telemetry without code; with no global provider installed the
// instruments are no-ops that cost a few nanoseconds.
//
// Embed it in the options of the component to instrument.
type Options struct {
	// MeterProvider receives kvassert's metrics (default
	// otel.GetMeterProvider()). Use go.opentelemetry.io/otel/metric/noop's
	// provider to turn metrics off.
	MeterProvider metric.MeterProvider
	// TracerProvider receives kvassert's spans and, through
	// AzureTracingProvider, the Azure SDK's own spans (default
	// otel.GetTracerProvider()).
	TracerProvider trace.TracerProvider
	// TenantAttribute adds the tenant ID (AttrTenantID) to the credential's
	// metrics. Off by default: every tenant is a new time series, and a
	// multi-tenant app may serve thousands. A credential reports at most 512
	// tenants this way, the later ones as "_OTHER", so that tenants chosen
	// by callers cannot grow the label set without bound. Spans always carry
	// the tenant.
	TenantAttribute bool
}

// Meters returns the MeterProvider to use: o.MeterProvider, or the global one.
func (o Options) Meters() metric.MeterProvider {
	if o.MeterProvider != nil {
		return o.MeterProvider
	}
	return otel.GetMeterProvider()
}

// Tracers returns the TracerProvider to use: o.TracerProvider, or the global one.
func (o Options) Tracers() trace.TracerProvider {
	if o.TracerProvider != nil {
		return o.TracerProvider
	}
	return otel.GetTracerProvider()
}

// AzureTracingProvider adapts Tracers() (through the Azure SDK's azotel
// adapter) into the azcore tracing.Provider that policy.ClientOptions takes
// as TracingProvider, so that the spans of azkeys, azcertificates and azcore
// pipelines nest under kvassert's. kvassert sets it on the clients it creates
// unless ClientOptions.TracingProvider is already set.
func (o Options) AzureTracingProvider() tracing.Provider {
	return azotel.NewTracingProvider(o.Tracers())
}

// ApplyTracing sets co.TracingProvider to AzureTracingProvider unless the
// caller already set one.
func (o Options) ApplyTracing(co *policy.ClientOptions) {
	if co != nil && !co.TracingProvider.NewTracer(ScopeName, "").Enabled() {
		co.TracingProvider = o.AzureTracingProvider()
	}
}
