package azotel_test

import (
	"context"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/tracing"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/kvassert/kvassert/internal/azotel"
)

// TestTracingProvider: spans the Azure SDK starts through the adapter reach
// the OpenTelemetry TracerProvider with their kind, attributes (converted
// by type), events, status and parent.
func TestTracingProvider(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	tracer := azotel.NewTracingProvider(tp).NewTracer("Microsoft.KeyVault", "v1.2.3")
	if !tracer.Enabled() {
		t.Fatal("tracer not enabled")
	}
	ctx, parent := tracer.Start(context.Background(), "parent", nil)
	// SpanFromContext finds the started span: attributes set through it
	// reach the parent.
	tracer.SpanFromContext(ctx).SetAttributes(tracing.Attribute{Key: "via", Value: "ctx"})
	_, child := tracer.Start(ctx, "child", &tracing.SpanOptions{Kind: tracing.SpanKindClient, Attributes: []tracing.Attribute{
		{Key: "i", Value: 1}, {Key: "i64", Value: int64(2)}, {Key: "f", Value: 1.5}, {Key: "b", Value: true}, {Key: "s", Value: "x"}, {Key: "other", Value: []int{1}},
	}})
	child.SetAttributes(tracing.Attribute{Key: "late", Value: "y"})
	child.AddEvent("ev", tracing.Attribute{Key: "k", Value: "v"})
	child.SetStatus(tracing.SpanStatusError, "failed")
	child.End()
	parent.SetStatus(tracing.SpanStatusOK, "")
	parent.End()

	spans := rec.Ended()
	if len(spans) != 2 {
		t.Fatalf("%d spans, want 2", len(spans))
	}
	c, p := spans[0], spans[1]
	if c.Name() != "child" || p.Name() != "parent" {
		t.Fatalf("spans %q, %q", c.Name(), p.Name())
	}
	if c.Parent().SpanID() != p.SpanContext().SpanID() {
		t.Error("child is not a child of parent")
	}
	if len(p.Attributes()) != 1 || p.Attributes()[0] != attribute.String("via", "ctx") {
		t.Errorf("parent attributes %v (SpanFromContext)", p.Attributes())
	}
	if c.SpanKind() != trace.SpanKindClient || p.SpanKind() != trace.SpanKindInternal {
		t.Errorf("kinds %v, %v", c.SpanKind(), p.SpanKind())
	}
	if c.InstrumentationScope().Name != "Microsoft.KeyVault" || c.InstrumentationScope().Version != "v1.2.3" {
		t.Errorf("scope %+v", c.InstrumentationScope())
	}
	want := map[attribute.Key]attribute.Value{
		"i": attribute.IntValue(1), "i64": attribute.Int64Value(2), "f": attribute.Float64Value(1.5),
		"b": attribute.BoolValue(true), "s": attribute.StringValue("x"), "other": attribute.StringValue("[1]"), "late": attribute.StringValue("y"),
	}
	got := map[attribute.Key]attribute.Value{}
	for _, kv := range c.Attributes() {
		got[kv.Key] = kv.Value
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("attribute %s = %v, want %v", k, got[k].Emit(), v.Emit())
		}
	}
	if ev := c.Events(); len(ev) != 1 || ev[0].Name != "ev" || len(ev[0].Attributes) != 1 {
		t.Errorf("events %+v", ev)
	}
	if c.Status().Code != codes.Error || c.Status().Description != "failed" || p.Status().Code != codes.Ok {
		t.Errorf("statuses %+v, %+v", c.Status(), p.Status())
	}
}
