package obs

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// The token requests counter is counted here and reported by an
// asynchronous counter at each collection: a synchronous SDK Add costs
// 250-350 ns on the reference machine (it re-normalises the attribute set on
// every call), more than the cache hit it would count, while a striped
// atomic add costs a few nanoseconds and never contends.

// striped is a counter spread over cache lines, so that concurrent cache
// hits on different cores do not contend.
type striped struct {
	cells [16]struct {
		n atomic.Int64
		_ [56]byte
	}
}

func (s *striped) add() { s.cells[rand.Uint32()&15].n.Add(1) }

func (s *striped) load() int64 {
	var n int64
	for i := range s.cells {
		n += s.cells[i].n.Load()
	}
	return n
}

// requestKey identifies one series of kvassert.token.requests other than
// the cache hits without tenant. An overflow key stands for every series
// of its outcome past maxSeries.
type requestKey struct {
	outcome, errorType, tenant string
	overflow                   bool
}

// maxSeries bounds the series of kvassert.token.requests one credential
// reports (below the OpenTelemetry SDK's default cardinality limit of 2000,
// so that the SDK's own overflow series is never needed). Past it, new
// series are counted in one series per outcome marked
// otel.metric.overflow=true, as the SDK does.
const maxSeries = 1024

// maxTenants bounds the distinct tenant label values of one credential
// (with Options.TenantAttribute); later tenants are reported as "_OTHER".
const maxTenants = 512

// attrOverflow marks the series that counts what did not fit (the
// OpenTelemetry SDK's name for it).
const attrOverflow = "otel.metric.overflow"

// requests counts GetToken outcomes.
type requests struct {
	hits    striped                 // outcome=cache_hit, no tenant
	hitSet  metric.ObserveOption    // its attributes, built once
	mu      sync.RWMutex            // guards byKey's map, not the counts
	byKey   map[requestKey]*striped // every other series, at most maxSeries+3
	tenants *boundedSet             // tenant label values; nil without TenantAttribute
}

func newRequests(tenants *boundedSet) *requests {
	return &requests{
		hitSet:  metric.WithAttributeSet(attribute.NewSet(attribute.String(AttrTokenOutcome, OutcomeCacheHit))),
		byKey:   map[requestKey]*striped{},
		tenants: tenants,
	}
}

// hit counts a cache hit; no allocation (with tenants: once per tenant).
func (r *requests) hit(tenant string) {
	if r.tenants == nil {
		r.hits.add()
		return
	}
	r.counter(requestKey{outcome: OutcomeCacheHit, tenant: tenant}).add()
}

func (r *requests) counter(k requestKey) *striped {
	r.mu.RLock()
	s := r.byKey[k]
	r.mu.RUnlock()
	if s != nil {
		return s
	}
	if r.tenants != nil {
		// The key's tenant is the caller's string: keep the set's copy
		// (bounded; "_OTHER" past maxTenants), never the caller's.
		k.tenant = r.tenants.add(k.tenant)
		r.mu.RLock()
		s = r.byKey[k]
		r.mu.RUnlock()
		if s != nil {
			return s
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if s = r.byKey[k]; s != nil {
		return s
	}
	if len(r.byKey) >= maxSeries {
		k = requestKey{outcome: k.outcome, overflow: true}
		if s = r.byKey[k]; s != nil {
			return s
		}
	}
	s = new(striped)
	r.byKey[k] = s
	return s
}

// observe reports every series.
func (r *requests) observe(o metric.Observer, inst metric.Int64Observable) {
	if r.tenants == nil {
		o.ObserveInt64(inst, r.hits.load(), r.hitSet)
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	for k, s := range r.byKey {
		kv := []attribute.KeyValue{attribute.String(AttrTokenOutcome, k.outcome)}
		if k.errorType != "" {
			kv = append(kv, attribute.String(AttrErrorType, k.errorType))
		}
		switch {
		case k.overflow:
			kv = append(kv, attribute.Bool(attrOverflow, true))
		case r.tenants != nil:
			kv = append(kv, attribute.String(AttrTenantID, k.tenant))
		}
		o.ObserveInt64(inst, s.load(), metric.WithAttributes(kv...))
	}
}

// served counts a GetToken that missed the cache.
func (r *requests) served(tenant string, err error) {
	k := requestKey{outcome: OutcomeAcquired}
	if err != nil {
		k = requestKey{outcome: OutcomeError, errorType: ErrorType(err)}
	}
	if r.tenants != nil {
		k.tenant = tenant
	}
	r.counter(k).add()
}
