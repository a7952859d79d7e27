package fleet

import (
	"sync/atomic"

	"github.com/kvassert/kvassert/internal/fleetstats"
)

// Stats and ThrottleStats are internal (internal/fleetstats): users watch
// a fleet through OpenTelemetry (CacheOptions.Telemetry).
type (
	stats         = fleetstats.Cache
	throttleStats = fleetstats.Throttle
)

func init() {
	fleetstats.OfCache = func(c any) fleetstats.Cache {
		if c, ok := c.(*Cache); ok && c != nil {
			return c.stats()
		}
		return fleetstats.Cache{}
	}
	fleetstats.OfThrottle = func(t any) fleetstats.Throttle {
		if t, ok := t.(*Throttle); ok && t != nil {
			return t.stats()
		}
		return fleetstats.Throttle{}
	}
}

// counters are the live stats.
type counters struct {
	hits, misses, acquired, lockWaits, takeovers, fallbacks, decryptFailures, errors, bypassed atomic.Int64
	refusalsShared, refusalsFound, refusalsForgotten                                           atomic.Int64
}

// stats returns the cache's counters.
func (c *Cache) stats() stats {
	c.br.mu.Lock()
	opens := c.br.opens
	c.br.mu.Unlock()
	return stats{
		Hits: c.c.hits.Load(), Misses: c.c.misses.Load(), Acquired: c.c.acquired.Load(),
		LockWaits: c.c.lockWaits.Load(), Takeovers: c.c.takeovers.Load(), Fallbacks: c.c.fallbacks.Load(),
		DecryptFailures: c.c.decryptFailures.Load(), Errors: c.c.errors.Load(), Bypassed: c.c.bypassed.Load(),
		BreakerOpens:   opens,
		RefusalsShared: c.c.refusalsShared.Load(), RefusalsFound: c.c.refusalsFound.Load(), RefusalsForgotten: c.c.refusalsForgotten.Load(),
	}
}

// stats returns the throttle's counters.
func (t *Throttle) stats() throttleStats {
	return throttleStats{Waits: t.waits.Load(), HoldOffs: t.holds.Load(), BudgetWaits: t.budgetWaits.Load(), Fallbacks: t.fallbacks.Load(), Errors: t.errs.Load()}
}
