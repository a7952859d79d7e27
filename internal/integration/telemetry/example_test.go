package telemetry_test

import (
	"fmt"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/tracing/azotel"
	"go.opentelemetry.io/otel"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/kvassert/kvassert/keyvault"
	"github.com/kvassert/kvassert/telemetry"
)

// An application that installs OpenTelemetry's SDK globally needs nothing
// else: the zero Options use the global providers. To send kvassert's
// telemetry elsewhere, give the providers once, as the Telemetry field of
// the component's options. Give the Azure SDK clients of your own the same
// TracerProvider (through azotel), so their spans join the trace.
func ExampleOptions() {
	reader := sdkmetric.NewManualReader() // a PeriodicReader with an OTLP or Prometheus exporter in production
	otel.SetMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)))
	tp := sdktrace.NewTracerProvider()
	otel.SetTracerProvider(tp)

	var global telemetry.Options // zero: the global providers
	signerOptions := keyvault.SignerOptions{Telemetry: global}
	// kvassert.CredentialOptions{Telemetry: global}, fleet's options, ... alike.

	clientOptions := policy.ClientOptions{TracingProvider: azotel.NewTracingProvider(tp, nil)}
	_ = clientOptions // azkeys.ClientOptions{ClientOptions: clientOptions}, azsecrets, ...

	fmt.Println(signerOptions.Telemetry.MeterProvider == nil, clientOptions.TracingProvider.NewTracer("azkeys", "").Enabled())
	// Output: true true
}
