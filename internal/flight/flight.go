// Package flight merges concurrent calls for the same key into one call that
// runs detached from its callers, and remembers failures of background work
// so that it is not retried in a loop.
//
// It is the one single-flight of kvassert: the credential's token
// acquisitions, the certificate cache's vault reads and the proxy's lazily
// made sources all use it, so they share one timeout rule and one failure
// rule.
package flight

import (
	"context"
	"sync"
	"time"
)

// Group runs at most one call per key at a time. The zero value is ready to
// use. Unlike golang.org/x/sync/singleflight, the call is detached from the
// caller that started it: it keeps that caller's context values but not its
// cancellation, and is bounded by its own timeout, so one caller giving up
// does not fail the others, and every caller returns as soon as its own
// context ends.
type Group[K comparable, V any] struct {
	mu    sync.Mutex
	calls map[K]*call[V]
}

type call[V any] struct {
	done chan struct{}
	v    V
	err  error
}

// Do returns the result of fn for key: it joins the call in flight for key,
// or starts fn in a new goroutine with a context detached from ctx and
// bounded by timeout (no bound when timeout <= 0). It returns when the call
// completes or ctx ends, whichever is first; in the second case the call goes
// on and its result still reaches the other callers.
func (g *Group[K, V]) Do(ctx context.Context, key K, timeout time.Duration, fn func(context.Context) (V, error)) (V, error) {
	c, _ := g.start(ctx, key, timeout, fn)
	select {
	case <-c.done:
		return c.v, c.err
	case <-ctx.Done():
		var zero V
		return zero, ctx.Err()
	}
}

// Start starts fn for key as Do does, unless a call for key is in flight,
// and does not wait for it. It reports whether it started a call.
func (g *Group[K, V]) Start(ctx context.Context, key K, timeout time.Duration, fn func(context.Context) (V, error)) bool {
	_, started := g.start(ctx, key, timeout, fn)
	return started
}

// InFlight reports whether a call for key is running.
func (g *Group[K, V]) InFlight(key K) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	_, ok := g.calls[key]
	return ok
}

func (g *Group[K, V]) start(ctx context.Context, key K, timeout time.Duration, fn func(context.Context) (V, error)) (*call[V], bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if c := g.calls[key]; c != nil {
		return c, false
	}
	if g.calls == nil {
		g.calls = map[K]*call[V]{}
	}
	c := &call[V]{done: make(chan struct{})}
	g.calls[key] = c
	go g.run(context.WithoutCancel(ctx), key, timeout, fn, c)
	return c, true
}

func (g *Group[K, V]) run(ctx context.Context, key K, timeout time.Duration, fn func(context.Context) (V, error), c *call[V]) {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	// The result is published before the key is freed, so a caller that
	// arrives after a failure starts a new call instead of reading an old
	// result, and one that arrives before sees this one.
	c.v, c.err = fn(ctx)
	g.mu.Lock()
	delete(g.calls, key)
	g.mu.Unlock()
	close(c.done)
}
