// Package fleetstats holds the counters of package fleet's Cache and
// Throttle, for this repository's tests, benchmarks and internal/replica.
// They are not part of fleet's API (the fleet reports to users through
// OpenTelemetry); package fleet sets the accessors when it is initialised.
package fleetstats

// Cache are a fleet.Cache's counters since it was made.
type Cache struct {
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
	// CacheOptions.WaitTimeout.
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
	// RefusalsShared counts tenant refusals shared (Refuse calls that
	// reached Redis).
	RefusalsShared int64
	// RefusalsFound counts Refusal calls that found a refusal in force.
	RefusalsFound int64
	// RefusalsForgotten counts Forget calls that reached Redis.
	RefusalsForgotten int64
}

// Throttle are a fleet.Throttle's counters.
type Throttle struct {
	// Waits counts Wait calls.
	Waits int64
	// HoldOffs counts Wait calls held off by a 429 (this replica's or the
	// fleet's).
	HoldOffs int64
	// BudgetWaits counts the times a Wait found the fleet budget spent.
	BudgetWaits int64
	// Fallbacks counts Wait calls decided locally because Redis failed.
	Fallbacks int64
	// Errors counts failed Redis operations.
	Errors int64
}

// OfCache returns the counters of a *fleet.Cache (zero for anything
// else). Package fleet sets it.
var OfCache = func(any) Cache { return Cache{} }

// OfThrottle returns the counters of a *fleet.Throttle (zero for anything
// else). Package fleet sets it.
var OfThrottle = func(any) Throttle { return Throttle{} }
