package obs

import (
	"context"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/tracing"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/kvassert/kvassert/telemetry"
)

// Credential holds the instruments of one kvassert.Credential. A nil
// *Credential records nothing.
type Credential struct {
	tracer      trace.Tracer
	httpTracer  tracing.Tracer // azcore tracer injected for the token POST's HTTP span
	meter       metric.Meter
	requests    metric.Int64ObservableCounter
	counts      *requests
	acquire     metric.Float64Histogram
	refreshes   metric.Int64Counter
	tenantState metric.Int64Counter
	cached      metric.Int64ObservableUpDownCounter
	tenants     *boundedSet // tenant label values (at most maxTenants); nil without TenantAttribute
}

// NewCredential creates the credential's instruments from o.
func NewCredential(o telemetry.Options) *Credential {
	in := meterFor(o)
	var tenants *boundedSet
	if o.TenantAttribute {
		tenants = &boundedSet{max: maxTenants}
	}
	c := &Credential{
		tracer:      tracerFor(o),
		httpTracer:  httpOnlyTracer(AzureTracingProvider(o).NewTracer(ScopeName, "")),
		meter:       in.m,
		counts:      newRequests(tenants),
		acquire:     in.duration(MetricTokenAcquireDuration, "Duration of one network token acquisition: assertion, Key Vault sign and token request."),
		refreshes:   in.counter(MetricTokenRefreshes, "{refresh}", "Background token refreshes finished; error.type is set on the failed ones."),
		tenants:     tenants,
		tenantState: in.counter(MetricTenantState, "{transition}", "Tenants that worked and are now refused (the app was removed or disabled there), by reason."),
	}
	requests, _ := in.m.Int64ObservableCounter(MetricTokenRequests, metric.WithUnit("{request}"),
		metric.WithDescription("GetToken calls, by outcome: cache_hit, acquired (waited for the network) or error."))
	if requests != nil {
		c.requests = requests
		// c is the owner: the registration ends when c is collected.
		observe(in.m, c, func(c *Credential, o metric.Observer) { c.counts.observe(o, c.requests) }, requests)
	}
	if cached, _ := in.m.Int64ObservableUpDownCounter(MetricTokenCachedCount, metric.WithUnit("{token}"),
		metric.WithDescription("Tokens in the credential's cache.")); cached != nil {
		c.cached = cached
	}
	return c
}

// Hit counts a GetToken answered from the cache: one atomic add, no
// allocation (with TenantAttribute: a read-locked map lookup, allocating
// once per tenant), no span. The count is reported at each collection.
//
// Call site: GetToken, just before returning a cached token.
func (c *Credential) Hit(tenant string) {
	if c == nil {
		return
	}
	c.counts.hit(tenant)
}

// Served counts a GetToken that was not a cache hit: outcome "acquired", or
// "error" with error.type when err is not nil.
//
// Call site: GetToken, on every return after the cache lookup missed
// (validation errors included).
func (c *Credential) Served(tenant string, err error) {
	if c == nil {
		return
	}
	c.counts.served(tenant, err)
}

// Refreshed counts a finished background refresh (error.type set when err
// is not nil).
//
// Call site: the background refresh, once its acquisition returned.
func (c *Credential) Refreshed(ctx context.Context, tenant string, err error) {
	if c == nil {
		return
	}
	c.refreshes.Add(ctx, 1, metric.WithAttributes(withError(c.base(tenant), err)...))
}

// TenantState counts a tenant that worked and is now refused, with the
// refusal's reason label (and the tenant only with TenantAttribute).
//
// Call site: the credential, once per such transition.
func (c *Credential) TenantState(tenant, reason string) {
	if c == nil {
		return
	}
	c.tenantState.Add(context.Background(), 1, metric.WithAttributes(c.base(tenant, attribute.String(AttrTenantReason, reason))...))
}

// StartAcquire starts the span of one network acquisition for tenant and
// scope; the returned func ends it and records the acquisition's duration.
// Call it once per acquisition (not per waiting caller), with the context
// the acquisition runs in, so that the Key Vault sign and the token request
// become its children.
func (c *Credential) StartAcquire(ctx context.Context, tenant, scope string) (context.Context, func(error)) {
	if c == nil {
		return ctx, func(error) {}
	}
	start := time.Now()
	ctx, span := c.tracer.Start(ctx, SpanAcquireToken, trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithAttributes(attribute.String(AttrTenantID, tenant), attribute.String(AttrTokenScope, scope)))
	return ctx, func(err error) {
		c.acquire.Record(ctx, seconds(time.Since(start)), metric.WithAttributes(withError(c.base(tenant), err)...))
		endSpan(span, err)
	}
}

// StartTokenRequest starts the span of one POST to a token endpoint. The
// returned context also makes the azcore pipeline that sends the request
// add its HTTP span as a child.
func (c *Credential) StartTokenRequest(ctx context.Context) (context.Context, func(error)) {
	if c == nil {
		return ctx, func(error) {}
	}
	ctx, span := c.tracer.Start(ctx, SpanTokenRequest, trace.WithSpanKind(trace.SpanKindInternal))
	// runtime.StartSpan puts the tracer where azcore's HTTP trace policy
	// looks for it; httpOnlyTracer makes no span of its own here.
	ctx, _ = runtime.StartSpan(ctx, SpanTokenRequest, c.httpTracer, nil)
	return ctx, func(err error) { endSpan(span, err) }
}

// base returns the metric attributes every token measurement has: with
// TenantAttribute, the tenant, or "_OTHER" past maxTenants distinct ones.
func (c *Credential) base(tenant string, kv ...attribute.KeyValue) []attribute.KeyValue {
	if c.tenants != nil {
		kv = append(kv, attribute.String(AttrTenantID, c.tenants.add(tenant)))
	}
	return kv
}

// httpOnlyTracer wraps an azcore tracer so that it makes no span for
// SpanTokenRequest (kvassert's own span is already there) and
// delegates every other span (azcore's HTTP spans) to t.
func httpOnlyTracer(t tracing.Tracer) tracing.Tracer {
	return tracing.NewTracer(func(ctx context.Context, name string, o *tracing.SpanOptions) (context.Context, tracing.Span) {
		if name == SpanTokenRequest {
			return ctx, tracing.Span{}
		}
		return t.Start(ctx, name, o)
	}, &tracing.TracerOptions{SpanFromContext: t.SpanFromContext})
}
