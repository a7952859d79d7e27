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
	"runtime/debug"
	"sync"
	"time"
)

// Group runs at most one call per key at a time. The zero value is ready to
// use. Unlike golang.org/x/sync/singleflight, the call is detached from the
// caller that started it: it keeps that caller's context values but not its
// cancellation, and is bounded by its own timeout, so one caller giving up
// does not fail the others, and every caller returns as soon as its own
// context ends.
//
// A panic in fn does not escape: the call's goroutine recovers it, every
// caller of the call gets a *PanicError, the key is released, and the next
// call for the key runs fn again.
type Group[K comparable, V any] struct {
	// Name says what the calls do ("token acquisition"); a PanicError
	// names it. Empty: "detached call".
	Name string
	// OnPanic, when set, is told once of each recovered panic (to log its
	// value and stack at debug level). A panic in OnPanic is ignored.
	OnPanic func(*PanicError)

	mu    sync.Mutex
	calls map[K]*call[V]
}

// PanicError is the error of a call whose fn panicked. Its message names
// what panicked, not the panic value, whose text may hold anything (a
// token, a request body): Value and Stack are for debug logging only.
type PanicError struct {
	// What is the Group's Name.
	What string
	// Value is what fn panicked with (recover's result).
	Value any
	// Stack is the panicking goroutine's stack.
	Stack []byte
}

// Error returns "panic in <what> (recovered)".
func (e *PanicError) Error() string { return "panic in " + e.What + " (recovered)" }

// ErrorType is the error.type of telemetry: "panic".
func (e *PanicError) ErrorType() string { return "panic" }

type call[V any] struct {
	done chan struct{}
	v    V
	err  error
}

// Do returns the result of fn for key: it joins the call in flight for key,
// or starts fn in a new goroutine with a context detached from ctx and
// bounded by timeout (no bound when timeout <= 0). It returns when the call
// completes or ctx ends, whichever is first; in the second case the call goes
// on and its result still reaches the other callers. A caller whose ctx has
// ended already starts nothing: it gets ctx.Err() at once.
func (g *Group[K, V]) Do(ctx context.Context, key K, timeout time.Duration, fn func(context.Context) (V, error)) (V, error) {
	if err := ctx.Err(); err != nil {
		var zero V
		return zero, err
	}
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

// Len returns the number of calls in flight.
func (g *Group[K, V]) Len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.calls)
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
	returned := false
	defer func() {
		if !returned {
			// fn panicked (or called runtime.Goexit, where recover
			// returns nil): no caller may wait forever or get a zero
			// value without an error.
			pe := &PanicError{What: g.Name, Value: recover(), Stack: debug.Stack()}
			if pe.What == "" {
				pe.What = "detached call"
			}
			var zero V
			c.v, c.err = zero, pe
			g.report(pe)
		}
		// The result is published before the key is freed, so a caller
		// that arrives after a failure starts a new call instead of
		// reading an old result, and one that arrives before sees this
		// one.
		g.mu.Lock()
		delete(g.calls, key)
		g.mu.Unlock()
		close(c.done)
	}()
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	c.v, c.err = fn(ctx)
	returned = true
}

// report tells OnPanic of pe; a panic there is dropped.
func (g *Group[K, V]) report(pe *PanicError) {
	if g.OnPanic == nil {
		return
	}
	defer func() { _ = recover() }()
	g.OnPanic(pe)
}
