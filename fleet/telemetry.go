package fleet

// errBreakerOpen is why a lookup was skipped while the circuit breaker is
// open (the fallbacks' error.type "breaker_open").
var errBreakerOpen = typedError{"fleet: Redis circuit breaker open", "breaker_open"}

// errWaitTimeout ends a wait for another replica's token after
// CacheOptions.WaitTimeout (error.type "timeout").
var errWaitTimeout = typedError{"fleet: waited too long for another replica's token", "timeout"}

// typedError is an error with a fixed OpenTelemetry error.type.
type typedError struct{ msg, typ string }

func (e typedError) Error() string { return e.msg }

// ErrorType returns the error's error.type (see internal/obs.ErrorTyper).
func (e typedError) ErrorType() string { return e.typ }
