package fleet

import "sync/atomic"

// Stats are a Cache's counters since it was made.
type Stats struct {
	// Hits counts tokens served from Redis (at once or after a wait).
	Hits int64
	// Misses counts calls that found no usable shared token at first:
	// absent, expiring, the stale one, or undecryptable.
	Misses int64
	// Acquired counts calls of acquire made as the fleet's lock owner.
	Acquired int64
	// LockWaits counts calls that waited for another replica's acquisition.
	LockWaits int64
	// Takeovers counts locks taken after waiting: the owner failed, or died
	// and its lock expired.
	Takeovers int64
	// Fallbacks counts calls of acquire made locally because Redis failed,
	// the circuit breaker was open, or the wait for another replica outlasted
	// Options.WaitTimeout.
	Fallbacks int64
	// DecryptFailures counts entries rejected: unknown key, tampered,
	// truncated, stored under another token's name, or not ours at all.
	DecryptFailures int64
	// Errors counts failed Redis operations (timeouts, refused connections,
	// OOM, ...).
	Errors int64
	// Bypassed counts calls not shared by design (tokens for a claims
	// challenge) or with a key that cannot be named in Redis.
	Bypassed int64
	// BreakerOpens counts the times the circuit breaker opened.
	BreakerOpens int64
}

// counters are the live Stats.
type counters struct {
	hits, misses, acquired, lockWaits, takeovers, fallbacks, decryptFailures, errors, bypassed atomic.Int64
}
