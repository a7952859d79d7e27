package obstest_test

import (
	"context"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/kvassert/kvassert/internal/integration/obstest"
)

const secret = "eyJhbGciOiJQUzI1NiJ9.eyJzdWIiOiJ0ZXN0In0.c2lnbmF0dXJlLW5vdC1yZWFs"

// TestLeaksFindsPlantedSecrets: the scan must find a forbidden string, or a
// 16-byte piece of it, wherever kvassert could put one.
func TestLeaksFindsPlantedSecrets(t *testing.T) {
	for _, tc := range []struct {
		where string
		plant func(context.Context, metric.Meter, trace.Tracer)
	}{
		{"metric attribute", func(ctx context.Context, m metric.Meter, _ trace.Tracer) {
			c, _ := m.Int64Counter("c")
			c.Add(ctx, 1, metric.WithAttributes(attribute.String("k", "x"+secret)))
		}},
		{"truncated in a metric attribute", func(ctx context.Context, m metric.Meter, _ trace.Tracer) {
			h, _ := m.Float64Histogram("h")
			h.Record(ctx, 1, metric.WithAttributes(attribute.String("k", secret[10:40]+"…")))
		}},
		{"span attribute", func(ctx context.Context, _ metric.Meter, tr trace.Tracer) {
			_, s := tr.Start(ctx, "s", trace.WithAttributes(attribute.StringSlice("k", []string{"a", secret})))
			s.End()
		}},
		{"span event", func(ctx context.Context, _ metric.Meter, tr trace.Tracer) {
			_, s := tr.Start(ctx, "s")
			s.RecordError(&leakyErr{})
			s.End()
		}},
		{"span status", func(ctx context.Context, _ metric.Meter, tr trace.Tracer) {
			_, s := tr.Start(ctx, "s")
			s.SetStatus(codes.Error, "refused: "+secret)
			s.End()
		}},
		{"span name", func(ctx context.Context, _ metric.Meter, tr trace.Tracer) {
			_, s := tr.Start(ctx, "GET /?token="+secret)
			s.End()
		}},
	} {
		r := obstest.New(t)
		ctx := context.Background()
		tc.plant(ctx, r.Options.MeterProvider.Meter("t"), r.Options.TracerProvider.Tracer("t"))
		leaks := obstest.Leaks(r.Collect(t), r.Spans.Ended(), "unrelated-secret", secret)
		if len(leaks) == 0 {
			t.Errorf("%s: the planted secret was not found", tc.where)
		}
		for _, l := range leaks {
			if strings.Contains(l, secret[:16]) || !strings.Contains(l, "#1") {
				t.Errorf("%s: finding %q must name forbidden string #1 and not quote it", tc.where, l)
			}
		}
	}
	// And nothing is reported when nothing is there.
	r := obstest.New(t)
	c, _ := r.Options.MeterProvider.Meter("t").Int64Counter("c")
	c.Add(context.Background(), 1, metric.WithAttributes(attribute.String("k", "harmless")))
	if leaks := obstest.Leaks(r.Collect(t), r.Spans.Ended(), secret, ""); len(leaks) != 0 {
		t.Errorf("false positives: %v", leaks)
	}
}

type leakyErr struct{}

func (*leakyErr) Error() string { return "bad token " + secret }
