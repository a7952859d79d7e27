package obs

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"

	"github.com/kvassert/kvassert/telemetry"
)

// background is the context of the measurements that must not allocate:
// a context holding a sampled span could make the SDK record an exemplar.
var background = context.Background()

// durationBuckets are the semantic conventions' boundaries for durations in
// seconds (http.server.request.duration and others).
var durationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}

// instruments builds instruments from one meter. The API lets a meter
// return an error with a usable instrument (kept) or with none (replaced
// by a no-op), so that a misbehaving MeterProvider cannot break token
// acquisition.
type instruments struct {
	m metric.Meter
}

func meterFor(o telemetry.Options) instruments {
	return instruments{m: Meters(o).Meter(ScopeName)}
}

func tracerFor(o telemetry.Options) trace.Tracer {
	return Tracers(o).Tracer(ScopeName)
}

func (in instruments) counter(name, unit, desc string) metric.Int64Counter {
	c, _ := in.m.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
	if c == nil {
		return noop.Int64Counter{}
	}
	return c
}

func (in instruments) duration(name, desc string) metric.Float64Histogram {
	h, _ := in.m.Float64Histogram(name, metric.WithUnit("s"), metric.WithDescription(desc), metric.WithExplicitBucketBoundaries(durationBuckets...))
	if h == nil {
		return noop.Float64Histogram{}
	}
	return h
}

// addOpts pre-builds the option slice of a counter measurement.
func addOpts(kv ...attribute.KeyValue) []metric.AddOption {
	return []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(kv...))}
}

// withError appends error.type to base when err is not nil.
func withError(base []attribute.KeyValue, err error) []attribute.KeyValue {
	if err == nil {
		return base
	}
	return append(base[:len(base):len(base)], attribute.String(AttrErrorType, ErrorType(err)))
}

// endSpan records err on span (status Error described by its error.type,
// never by its text) and ends it.
func endSpan(span trace.Span, err error) {
	if err != nil {
		t := ErrorType(err)
		span.SetAttributes(attribute.String(AttrErrorType, t))
		span.SetStatus(codes.Error, t)
	}
	span.End()
}

// seconds converts d for a duration histogram.
func seconds(d time.Duration) float64 { return d.Seconds() }
