// Package obsrec records kvassert's metrics in tests with the OpenTelemetry
// API only (no SDK): a MeterProvider whose counters and histograms keep
// their points in memory. It serves tests of modules that must not depend on
// the OpenTelemetry SDK (the fleet); the SDK-based recorder with spans and
// the leak checks is internal/integration/obstest.
package obsrec

import (
	"context"
	"sort"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/embedded"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/kvassert/kvassert/telemetry"
)

// Recorder holds the points recorded through Options.MeterProvider.
// Synchronous Int64Counter, Float64Counter, Int64Histogram and
// Float64Histogram instruments record; any other instrument is a no-op.
type Recorder struct {
	// Options select the recorder's MeterProvider (no tracer: spans go to
	// the global provider, a no-op unless a test sets one).
	Options telemetry.Options

	mu     sync.Mutex
	points map[string]map[attribute.Distinct]*Point
}

// New returns an empty Recorder.
func New(testing.TB) *Recorder {
	r := &Recorder{points: map[string]map[attribute.Distinct]*Point{}}
	r.Options = telemetry.Options{MeterProvider: provider{r: r}}
	return r
}

// Metrics is a snapshot of the recorded points by metric name.
type Metrics map[string][]Point

// Collect returns a snapshot of the points recorded so far (cumulative).
func (r *Recorder) Collect(testing.TB) Metrics {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := Metrics{}
	for name, byAttrs := range r.points {
		for _, p := range byAttrs {
			m[name] = append(m[name], *p)
		}
		sort.Slice(m[name], func(i, j int) bool { return Attrs(m[name][i].Attrs) < Attrs(m[name][j].Attrs) })
	}
	return m
}

// Point is one data point, flattened for assertions.
type Point struct {
	Attrs attribute.Set
	// Value is a counter's sum; for a histogram, its count.
	Value float64
	// Sum is a histogram's sum.
	Sum float64
}

// Points returns the points of metric name (none when it was not recorded).
func Points(m Metrics, name string) []Point { return m[name] }

// Attrs renders a set as "k=v,k=v" (sorted by key) for comparisons.
func Attrs(s attribute.Set) string { return s.Encoded(attribute.DefaultEncoder()) }

func (r *Recorder) record(name string, v float64, attrs attribute.Set, histogram bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	byAttrs := r.points[name]
	if byAttrs == nil {
		byAttrs = map[attribute.Distinct]*Point{}
		r.points[name] = byAttrs
	}
	p := byAttrs[attrs.Equivalent()]
	if p == nil {
		p = &Point{Attrs: attrs}
		byAttrs[attrs.Equivalent()] = p
	}
	if histogram {
		p.Value++
		p.Sum += v
		return
	}
	p.Value += v
}

type provider struct {
	embedded.MeterProvider
	r *Recorder
}

func (p provider) Meter(string, ...metric.MeterOption) metric.Meter { return meter{r: p.r} }

type meter struct {
	noop.Meter
	r *Recorder
}

func (m meter) Int64Counter(name string, _ ...metric.Int64CounterOption) (metric.Int64Counter, error) {
	return int64Counter{instrument: instrument[int64]{r: m.r, name: name}}, nil
}

func (m meter) Float64Counter(name string, _ ...metric.Float64CounterOption) (metric.Float64Counter, error) {
	return float64Counter{instrument: instrument[float64]{r: m.r, name: name}}, nil
}

func (m meter) Int64Histogram(name string, _ ...metric.Int64HistogramOption) (metric.Int64Histogram, error) {
	return int64Histogram{instrument: instrument[int64]{r: m.r, name: name}}, nil
}

func (m meter) Float64Histogram(name string, _ ...metric.Float64HistogramOption) (metric.Float64Histogram, error) {
	return float64Histogram{instrument: instrument[float64]{r: m.r, name: name}}, nil
}

// instrument records what a counter adds (Add) or a histogram records
// (Record) under its name; Enabled answers as the no-op instruments do.
type instrument[N int64 | float64] struct {
	r    *Recorder
	name string
}

func (i instrument[N]) Add(_ context.Context, v N, opts ...metric.AddOption) {
	i.r.record(i.name, float64(v), metric.NewAddConfig(opts).Attributes(), false)
}

func (i instrument[N]) Record(_ context.Context, v N, opts ...metric.RecordOption) {
	i.r.record(i.name, float64(v), metric.NewRecordConfig(opts).Attributes(), true)
}

func (instrument[N]) Enabled(context.Context) bool { return false }

type int64Counter struct {
	embedded.Int64Counter
	instrument[int64]
}

type float64Counter struct {
	embedded.Float64Counter
	instrument[float64]
}

type int64Histogram struct {
	embedded.Int64Histogram
	instrument[int64]
}

type float64Histogram struct {
	embedded.Float64Histogram
	instrument[float64]
}
