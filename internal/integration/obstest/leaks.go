package obstest

import (
	"fmt"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Leaks returns where any of the forbidden strings (tokens, assertions,
// secrets; also any non-empty substring of 16 bytes or more of them, so that
// a truncated or split copy is found too) appears in rm's metric names,
// descriptions, units, resource and point attributes (exemplars included),
// or in spans' names, attributes, events, links, status and resource. Each
// finding names the place and the index of the forbidden string, never the
// string itself.
func Leaks(rm metricdata.ResourceMetrics, spans []sdktrace.ReadOnlySpan, forbidden ...string) []string {
	var found []string
	// label names a place by name, or by number when the name itself holds
	// a forbidden string (a finding must never quote one).
	label := func(kind, name string, i int) string {
		for _, f := range forbidden {
			if contains(name, f) {
				return fmt.Sprintf("%s #%d", kind, i)
			}
		}
		return kind + " " + name
	}
	check := func(where, text string) {
		for i, f := range forbidden {
			if contains(text, f) {
				found = append(found, fmt.Sprintf("%s holds forbidden string #%d", where, i))
			}
		}
	}
	checkSet := func(where string, s attribute.Set) {
		for i, kv := range s.ToSlice() {
			check(where+" "+label("attribute", string(kv.Key), i), string(kv.Key)+"="+kv.Value.Emit())
		}
	}
	checkKVs := func(where string, kvs []attribute.KeyValue) { checkSet(where, attribute.NewSet(kvs...)) }

	if rm.Resource != nil {
		checkSet("metric resource", *rm.Resource.Set())
	}
	for _, sm := range rm.ScopeMetrics {
		for i, m := range sm.Metrics {
			where := label("metric", m.Name, i)
			check(where+" (name, unit, description)", m.Name+" "+m.Unit+" "+m.Description)
			for _, p := range points(m) {
				checkSet(where, p.attrs)
				for _, ex := range p.exemplars {
					checkKVs(where+" exemplar", ex)
				}
			}
		}
	}
	for i, s := range spans {
		where := label("span", s.Name(), i)
		check(where+" name", s.Name())
		checkKVs(where, s.Attributes())
		check(where+" status", s.Status().Description)
		for j, ev := range s.Events() {
			check(where+" event name", ev.Name)
			checkKVs(where+" "+label("event", ev.Name, j), ev.Attributes)
		}
		for _, l := range s.Links() {
			checkKVs(where+" link", l.Attributes)
		}
		if s.Resource() != nil {
			checkSet(where+" resource", *s.Resource().Set())
		}
	}
	return found
}

// contains reports whether text holds f or a 16-byte piece of it.
func contains(text, f string) bool {
	if f == "" {
		return false
	}
	if strings.Contains(text, f) {
		return true
	}
	const piece = 16
	for i := 0; i+piece <= len(f); i += piece / 2 {
		if strings.Contains(text, f[i:i+piece]) {
			return true
		}
	}
	return false
}

// point is one data point of any kind: its attributes, its exemplars
// attributes, its value (a histogram's count) and a histogram's sum.
type point struct {
	attrs      attribute.Set
	exemplars  [][]attribute.KeyValue
	value, sum float64
}

// points flattens m's data points, whatever their kind.
func points(m metricdata.Metrics) []point {
	if out, ok := numberPoints[int64](m.Data); ok {
		return out
	}
	out, _ := numberPoints[float64](m.Data)
	return out
}

// numberPoints flattens a sum, gauge or histogram of N; false for any other
// data.
func numberPoints[N int64 | float64](data metricdata.Aggregation) ([]point, bool) {
	switch d := data.(type) {
	case metricdata.Sum[N]:
		return plainPoints(d.DataPoints), true
	case metricdata.Gauge[N]:
		return plainPoints(d.DataPoints), true
	case metricdata.Histogram[N]:
		return histogramPoints(d.DataPoints), true
	}
	return nil, false
}

func plainPoints[N int64 | float64](ps []metricdata.DataPoint[N]) []point {
	out := make([]point, 0, len(ps))
	for _, p := range ps {
		out = append(out, point{attrs: p.Attributes, exemplars: exemplarAttrs(p.Exemplars), value: float64(p.Value)})
	}
	return out
}

func histogramPoints[N int64 | float64](ps []metricdata.HistogramDataPoint[N]) []point {
	out := make([]point, 0, len(ps))
	for _, p := range ps {
		out = append(out, point{attrs: p.Attributes, exemplars: exemplarAttrs(p.Exemplars), value: float64(p.Count), sum: float64(p.Sum)})
	}
	return out
}

func exemplarAttrs[N int64 | float64](exs []metricdata.Exemplar[N]) [][]attribute.KeyValue {
	out := make([][]attribute.KeyValue, 0, len(exs))
	for _, e := range exs {
		out = append(out, e.FilteredAttributes)
	}
	return out
}
