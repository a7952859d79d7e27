package fleet

// What the external tests (package fleet_test) read of the package's
// internals; none of it is API.

// DefaultPrefix is the default Redis key prefix.
const DefaultPrefix = defaultPrefix

// KeySize is the size of a data key.
const KeySize = keySize

// Stats returns the cache's counters (internal/fleetstats.OfCache).
func (c *Cache) Stats() stats { return c.stats() }

// Stats returns the throttle's counters (internal/fleetstats.OfThrottle).
func (t *Throttle) Stats() throttleStats { return t.stats() }

// Stats and ThrottleStats are the counters' types.
type (
	Stats         = stats
	ThrottleStats = throttleStats
)
