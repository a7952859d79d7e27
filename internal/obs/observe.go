package obs

import (
	"context"
	"runtime"
	"sync"
	"weak"

	"go.opentelemetry.io/otel/metric"
)

// observe registers cb with m for the observable instruments insts, on
// behalf of owner: cb gets owner while it lives, and the registration is
// removed once owner is garbage collected (or when unregister is called),
// so that registering does not keep the owner alive. cb must not capture
// owner itself.
func observe[T any](m metric.Meter, owner *T, cb func(*T, metric.Observer), insts ...metric.Observable) (unregister func()) {
	if m == nil || owner == nil || len(insts) == 0 {
		return func() {}
	}
	for _, i := range insts {
		if i == nil {
			return func() {}
		}
	}
	w := weak.Make(owner)
	reg, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		if p := w.Value(); p != nil {
			cb(p, o)
		}
		return nil
	}, insts...)
	if err != nil {
		return func() {}
	}
	var once sync.Once
	unregister = func() { once.Do(func() { _ = reg.Unregister() }) }
	runtime.AddCleanup(owner, func(u func()) { u() }, unregister)
	return unregister
}

// ObserveCachedTokens reports count(owner) as kvassert.token.cached.count at
// each collection, for as long as owner (the kvassert.Credential) lives.
// count must not capture owner.
//
// Call site: NewCredential, once the credential exists.
func ObserveCachedTokens[T any](c *Credential, owner *T, count func(*T) int) (unregister func()) {
	if c == nil || c.cached == nil {
		return func() {}
	}
	return observe(c.meter, owner, func(p *T, o metric.Observer) {
		o.ObserveInt64(c.cached, int64(count(p)))
	}, c.cached)
}
