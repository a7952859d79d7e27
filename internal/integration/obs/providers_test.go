package obs_test

import (
	"context"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"go.opentelemetry.io/otel"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/kvassert/kvassert/internal/obs"
	"github.com/kvassert/kvassert/telemetry"
)

func TestOptionsDefaultToTheGlobalProviders(t *testing.T) {
	var o telemetry.Options
	if obs.Meters(o) != otel.GetMeterProvider() || obs.Tracers(o) != otel.GetTracerProvider() {
		t.Fatal("the zero Options do not use the global providers")
	}
	mp := sdkmetric.NewMeterProvider()
	tp := sdktrace.NewTracerProvider()
	o = telemetry.Options{MeterProvider: mp, TracerProvider: tp}
	if obs.Meters(o) != mp || obs.Tracers(o) != tp {
		t.Fatal("the Options' providers are not used")
	}
}

// TestAzureTracingProviderUsesTheTracerProvider: the Azure SDK's spans go to
// the Options' TracerProvider and nest under the span in the context.
func TestAzureTracingProviderUsesTheTracerProvider(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	o := telemetry.Options{TracerProvider: tp}
	ctx, parent := tp.Tracer("test").Start(context.Background(), "parent")
	az := obs.AzureTracingProvider(o).NewTracer("azkeys", "v1.5.0")
	_, span := az.Start(ctx, "Client.Sign", nil)
	span.End()
	parent.End()
	ended := rec.Ended()
	if len(ended) != 2 || ended[0].Name() != "Client.Sign" || ended[0].Parent().SpanID() != parent.SpanContext().SpanID() {
		t.Fatalf("spans %v: want Client.Sign as a child of parent", ended)
	}
}

func TestApplyTracingKeepsTheCallersProvider(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	o := telemetry.Options{TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))}
	var co policy.ClientOptions
	obs.ApplyTracing(o, &co)
	_, s := co.TracingProvider.NewTracer("azkeys", "").Start(context.Background(), "Client.Sign", nil)
	s.End()
	if len(rec.Ended()) != 1 {
		t.Fatalf("ApplyTracing on unset ClientOptions: %d spans recorded, want 1", len(rec.Ended()))
	}

	mine := tracetest.NewSpanRecorder()
	co = policy.ClientOptions{TracingProvider: obs.AzureTracingProvider(telemetry.Options{TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(mine))})}
	obs.ApplyTracing(o, &co)
	_, s = co.TracingProvider.NewTracer("azkeys", "").Start(context.Background(), "Client.Sign", nil)
	s.End()
	if len(mine.Ended()) != 1 || len(rec.Ended()) != 1 {
		t.Fatalf("ApplyTracing replaced the caller's TracingProvider (caller's spans %d, ours %d)", len(mine.Ended()), len(rec.Ended()))
	}
	obs.ApplyTracing(o, nil) // no panic
}
