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
	return int64Counter{r: m.r, name: name}, nil
}

func (m meter) Float64Counter(name string, _ ...metric.Float64CounterOption) (metric.Float64Counter, error) {
	return float64Counter{r: m.r, name: name}, nil
}

func (m meter) Int64Histogram(name string, _ ...metric.Int64HistogramOption) (metric.Int64Histogram, error) {
	return int64Histogram{r: m.r, name: name}, nil
}

func (m meter) Float64Histogram(name string, _ ...metric.Float64HistogramOption) (metric.Float64Histogram, error) {
	return float64Histogram{r: m.r, name: name}, nil
}

type int64Counter struct {
	noop.Int64Counter
	r    *Recorder
	name string
}

func (c int64Counter) Add(_ context.Context, v int64, opts ...metric.AddOption) {
	c.r.record(c.name, float64(v), metric.NewAddConfig(opts).Attributes(), false)
}

type float64Counter struct {
	noop.Float64Counter
	r    *Recorder
	name string
}

func (c float64Counter) Add(_ context.Context, v float64, opts ...metric.AddOption) {
	c.r.record(c.name, v, metric.NewAddConfig(opts).Attributes(), false)
}

type int64Histogram struct {
	noop.Int64Histogram
	r    *Recorder
	name string
}

func (h int64Histogram) Record(_ context.Context, v int64, opts ...metric.RecordOption) {
	h.r.record(h.name, float64(v), metric.NewRecordConfig(opts).Attributes(), true)
}

type float64Histogram struct {
	noop.Float64Histogram
	r    *Recorder
	name string
}

func (h float64Histogram) Record(_ context.Context, v float64, opts ...metric.RecordOption) {
	h.r.record(h.name, v, metric.NewRecordConfig(opts).Attributes(), true)
}
