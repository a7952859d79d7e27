package telemetry

import (
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// Options select where kvassert sends its metrics and spans. The zero value
// uses OpenTelemetry's global providers, so an application that configured
// OpenTelemetry (otel.SetMeterProvider, otel.SetTracerProvider) gets
// kvassert's telemetry without code; with no global provider installed the
// instruments are no-ops that cost a few nanoseconds.
//
// It is the Telemetry field of the options of every kvassert component that
// reports (kvassert.CredentialOptions, the source options,
// keyvault.SignerOptions, fleet's options): set it once there.
type Options struct {
	// MeterProvider receives kvassert's metrics (default
	// otel.GetMeterProvider()). Use go.opentelemetry.io/otel/metric/noop's
	// provider to turn metrics off.
	MeterProvider metric.MeterProvider
	// TracerProvider receives kvassert's spans and the spans of the Azure
	// SDK clients kvassert creates (azkeys, azcertificates, the token
	// request's pipeline), which nest under kvassert's unless their
	// ClientOptions.TracingProvider is set (default
	// otel.GetTracerProvider()).
	TracerProvider trace.TracerProvider
	// TenantAttribute adds the tenant ID (kvassert.tenant.id) to the
	// credential's metrics. Off by default: every tenant is a new time
	// series, and a multi-tenant app may serve thousands. A credential
	// reports at most 512 tenants this way, the later ones as "_OTHER", so
	// that tenants chosen by callers cannot grow the label set without
	// bound. Spans always carry the tenant.
	TenantAttribute bool
}
