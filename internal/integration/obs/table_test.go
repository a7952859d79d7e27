package obs_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/kvassert/kvassert/internal/integration/obstest"
	"github.com/kvassert/kvassert/internal/obs"
)

// TestMetricTable: every metric of the documented table is produced by the
// hooks with the documented instrument type and unit.
func TestMetricTable(t *testing.T) {
	r := obstest.New(t)
	ctx := context.Background()
	c := obs.NewCredential(r.Options)
	k := obs.NewKeyVault(r.Options, vaultHost)
	s := obs.NewSharedCache(r.Options)
	owner := &credential{n: 1}
	obs.ObserveCachedTokens(c, owner, func(o *credential) int { return o.n })
	src := &source{state: obs.CertificateState{Version: "v1", NotAfter: time.Now().Add(time.Hour), NewestVersion: "v2"}, read: true}
	obs.ObserveCertificate(k, "app-auth", src, (*source).observed)
	c.Hit(tenantA)
	c.Served(tenantA, nil)
	c.Refreshed(ctx, tenantA, nil)
	_, end := c.StartAcquire(ctx, tenantA, graph)
	end(nil)
	sctx, end := k.StartSign(ctx)
	k.GateWait(sctx, time.Second)
	k.Throttled()
	end(nil)
	_, end = k.StartCertificateRead(ctx, "app-auth")
	end(errors.New("x"))
	s.Lookup(ctx, true, nil)
	s.LockWait(ctx, time.Millisecond, nil)
	s.Fallback(ctx, errors.New("x"))
	rm := r.Collect(t)

	const (
		counter   = "Counter"
		updown    = "UpDownCounter"
		histogram = "Histogram"
		gauge     = "Gauge"
	)
	for _, want := range []struct{ name, kind, unit string }{
		{obs.MetricTokenRequests, counter, "{request}"},
		{obs.MetricTokenAcquireDuration, histogram, "s"},
		{obs.MetricTokenRefreshes, counter, "{refresh}"},
		{obs.MetricTokenCachedCount, updown, "{token}"},
		{obs.MetricSignDuration, histogram, "s"},
		{obs.MetricThrottleWaitDuration, histogram, "s"},
		{obs.MetricThrottledResponses, counter, "{response}"},
		{obs.MetricCertificateReads, counter, "{read}"},
		{obs.MetricCertificateTimeLeft, gauge, "s"},
		{obs.MetricCertificateRotationPending, gauge, "1"},
		{obs.MetricSharedCacheLookups, counter, "{lookup}"},
		{obs.MetricSharedCacheLockWaitDuration, histogram, "s"},
		{obs.MetricSharedCacheFallbacks, counter, "{fallback}"},
	} {
		m, ok := obstest.Metric(rm, want.name)
		if !ok {
			t.Errorf("%s was not produced", want.name)
			continue
		}
		if kind := kindOf(m); kind != want.kind || m.Unit != want.unit || m.Description == "" {
			t.Errorf("%s is a %s in %q (description %q), want a %s in %q with a description", want.name, kind, m.Unit, m.Description, want.kind, want.unit)
		}
	}
}

func kindOf(m metricdata.Metrics) string {
	switch d := m.Data.(type) {
	case metricdata.Sum[int64]:
		if d.IsMonotonic {
			return "Counter"
		}
		return "UpDownCounter"
	case metricdata.Sum[float64]:
		if d.IsMonotonic {
			return "Counter"
		}
		return "UpDownCounter"
	case metricdata.Histogram[float64], metricdata.Histogram[int64]:
		return "Histogram"
	case metricdata.Gauge[float64], metricdata.Gauge[int64]:
		return "Gauge"
	}
	return fmt.Sprintf("%T", m.Data)
}
