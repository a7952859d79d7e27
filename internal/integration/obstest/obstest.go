// Package obstest records kvassert's telemetry in tests: an SDK
// MeterProvider over a ManualReader and a TracerProvider over an in-memory
// SpanRecorder, helpers to find metric points and spans, and Leaks, which
// proves that no token, assertion or secret reached any metric attribute or
// span attribute, event or status.
package obstest

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/kvassert/kvassert/telemetry"
)

// Recorder holds an SDK meter and tracer provider recording in memory.
type Recorder struct {
	// Options select the recorder's providers (TenantAttribute off).
	Options telemetry.Options
	// Reader is the ManualReader behind Options.MeterProvider.
	Reader *sdkmetric.ManualReader
	// Spans records every span of Options.TracerProvider.
	Spans *tracetest.SpanRecorder
}

// New returns a Recorder whose providers are shut down when tb ends.
func New(tb testing.TB) *Recorder {
	tb.Helper()
	r := &Recorder{Reader: sdkmetric.NewManualReader(), Spans: tracetest.NewSpanRecorder()}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r.Reader))
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(r.Spans))
	tb.Cleanup(func() {
		_ = mp.Shutdown(context.Background())
		_ = tp.Shutdown(context.Background())
	})
	r.Options = telemetry.Options{MeterProvider: mp, TracerProvider: tp}
	return r
}

// Collect reads the current metrics.
func (r *Recorder) Collect(tb testing.TB) metricdata.ResourceMetrics {
	tb.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Reader.Collect(context.Background(), &rm); err != nil {
		tb.Fatalf("collecting metrics: %v", err)
	}
	return rm
}

// Point is one data point of any kind, flattened for assertions.
type Point struct {
	Attrs attribute.Set
	// Value is the sum or gauge value; for a histogram, its count.
	Value float64
	// Sum is a histogram's sum.
	Sum float64
}

// Points returns the points of metric name (none when it was not recorded).
func Points(rm metricdata.ResourceMetrics, name string) []Point {
	var out []Point
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			for _, p := range points(m) {
				out = append(out, Point{Attrs: p.attrs, Value: p.value, Sum: p.sum})
			}
		}
	}
	return out
}

// Metric returns metric name as collected (unit, description, data).
func Metric(rm metricdata.ResourceMetrics, name string) (metricdata.Metrics, bool) {
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == name {
				return m, true
			}
		}
	}
	return metricdata.Metrics{}, false
}

// Attrs renders a set as "k=v,k=v" (sorted by key) for comparisons.
func Attrs(s attribute.Set) string { return s.Encoded(attribute.DefaultEncoder()) }

// Span returns the ended spans named name.
func (r *Recorder) Span(name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range r.Spans.Ended() {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}
