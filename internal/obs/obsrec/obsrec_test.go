package obsrec

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

func TestRecorder(t *testing.T) {
	r := New(t)
	m := r.Options.MeterProvider.Meter("test")
	c, _ := m.Int64Counter("c")
	h, _ := m.Float64Histogram("h")
	ctx := context.Background()
	c.Add(ctx, 2, metric.WithAttributes(attribute.String("k", "a")))
	c.Add(ctx, 3, metric.WithAttributes(attribute.String("k", "a")))
	c.Add(ctx, 1, metric.WithAttributes(attribute.String("k", "b")))
	h.Record(ctx, 0.5)
	h.Record(ctx, 1.5)
	got := r.Collect(t)
	if p := Points(got, "c"); len(p) != 2 || Attrs(p[0].Attrs) != "k=a" || p[0].Value != 5 || p[1].Value != 1 {
		t.Fatalf("counter points %+v", p)
	}
	if p := Points(got, "h"); len(p) != 1 || p[0].Value != 2 || p[0].Sum != 2 {
		t.Fatalf("histogram points %+v", p)
	}
	if p := Points(got, "none"); len(p) != 0 {
		t.Fatalf("unrecorded metric: %+v", p)
	}
}
