package telemetry_test

import (
	"fmt"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"go.opentelemetry.io/otel"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/kvassert/kvassert/telemetry"
)

// An application that installs OpenTelemetry's SDK globally needs nothing
// else: the zero Options use the global providers. Give the Azure SDK
// clients of your own the same TracerProvider, so their spans join the trace.
func ExampleOptions() {
	reader := sdkmetric.NewManualReader() // a PeriodicReader with an OTLP or Prometheus exporter in production
	otel.SetMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)))
	otel.SetTracerProvider(sdktrace.NewTracerProvider())

	var opts telemetry.Options // zero: the global providers
	clientOptions := policy.ClientOptions{TracingProvider: opts.AzureTracingProvider()}
	_ = clientOptions // azkeys.ClientOptions{ClientOptions: clientOptions}, azsecrets, ...

	fmt.Println(opts.Meters() == otel.GetMeterProvider(), opts.Tracers() == otel.GetTracerProvider())
	// Output: true true
}
