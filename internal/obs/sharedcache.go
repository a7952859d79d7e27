package obs

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/kvassert/kvassert/telemetry"
)

// SharedCache holds the instruments of the shared (Redis) token cache. A
// nil *SharedCache records nothing.
type SharedCache struct {
	lookups   metric.Int64Counter
	lockWait  metric.Float64Histogram
	fallbacks metric.Int64Counter
	hit, miss []metric.AddOption
}

// NewSharedCache creates the shared cache's instruments from o.
func NewSharedCache(o telemetry.Options) *SharedCache {
	in := meterFor(o)
	return &SharedCache{
		lookups:   in.counter(MetricSharedCacheLookups, "{lookup}", "Shared-cache lookups, by outcome: hit, miss or error."),
		lockWait:  in.duration(MetricSharedCacheLockWaitDuration, "Time spent waiting for the shared cache's acquisition lock."),
		fallbacks: in.counter(MetricSharedCacheFallbacks, "{fallback}", "Acquisitions made locally because the shared cache failed."),
		hit:       addOpts(attribute.String(AttrSharedCacheOutcome, SharedCacheHit)),
		miss:      addOpts(attribute.String(AttrSharedCacheOutcome, SharedCacheMiss)),
	}
}

// Lookup counts one shared-cache lookup: a hit, a miss, or an error (err
// not nil).
//
// Call site: the shared cache's get, after Redis answered.
func (s *SharedCache) Lookup(ctx context.Context, hit bool, err error) {
	switch {
	case s == nil:
	case err != nil:
		s.lookups.Add(ctx, 1, metric.WithAttributes(attribute.String(AttrSharedCacheOutcome, SharedCacheError), attribute.String(AttrErrorType, ErrorType(err))))
	case hit:
		s.lookups.Add(ctx, 1, s.hit...)
	default:
		s.lookups.Add(ctx, 1, s.miss...)
	}
}

// LockWait records a wait of d for the acquisition lock; err is not nil
// when the lock was not obtained.
//
// Call site: the shared cache, after waiting for (or giving up on) the lock.
func (s *SharedCache) LockWait(ctx context.Context, d time.Duration, err error) {
	if s == nil {
		return
	}
	s.lockWait.Record(ctx, seconds(d), metric.WithAttributes(withError(nil, err)...))
}

// Fallback counts an acquisition made locally because the shared cache
// failed with err.
//
// Call site: where the credential gives up on the shared cache.
func (s *SharedCache) Fallback(ctx context.Context, err error) {
	if s == nil {
		return
	}
	s.fallbacks.Add(ctx, 1, metric.WithAttributes(withError(nil, err)...))
}
