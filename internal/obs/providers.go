package obs

import (
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/tracing"
	"github.com/kvassert/kvassert/internal/azotel"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/kvassert/kvassert/telemetry"
)

// Meters returns the MeterProvider to use: o.MeterProvider, or the global one.
func Meters(o telemetry.Options) metric.MeterProvider {
	if o.MeterProvider != nil {
		return o.MeterProvider
	}
	return otel.GetMeterProvider()
}

// Tracers returns the TracerProvider to use: o.TracerProvider, or the global one.
func Tracers(o telemetry.Options) trace.TracerProvider {
	if o.TracerProvider != nil {
		return o.TracerProvider
	}
	return otel.GetTracerProvider()
}

// AzureTracingProvider adapts Tracers(o) (through the Azure SDK's azotel
// adapter) into the azcore tracing.Provider that policy.ClientOptions takes
// as TracingProvider, so that the spans of azkeys, azcertificates and azcore
// pipelines nest under kvassert's.
func AzureTracingProvider(o telemetry.Options) tracing.Provider {
	return azotel.NewTracingProvider(Tracers(o))
}

// ApplyTracing sets co.TracingProvider to AzureTracingProvider(o) unless
// the caller already set one.
//
// Call site: every constructor that makes an Azure SDK client.
func ApplyTracing(o telemetry.Options, co *policy.ClientOptions) {
	if co != nil && !co.TracingProvider.NewTracer(ScopeName, "").Enabled() {
		co.TracingProvider = AzureTracingProvider(o)
	}
}
