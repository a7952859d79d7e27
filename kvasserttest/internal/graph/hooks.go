package graph

// Test hooks: faults that strike after an operation took effect (the
// caller loses the answer of a committed addKey or removeKey, as on a
// timeout or a connection cut after Graph wrote the change), and a callback
// run when addKey has added a key (to fail the caller's next step).

import (
	"net/http"
	"net/http/httptest"
	"sync"

	"github.com/kvassert/kvassert/kvasserttest/internal/emu"
	"github.com/kvassert/kvassert/kvasserttest/internal/entra"
)

// hooks holds the after-commit faults and the addKey callback.
type hooks struct {
	mu       sync.Mutex
	after    map[emu.Op]*afterFault
	onAddKey func(entra.KeyCredential)
}

type afterFault struct {
	emu.Fault
	left int
}

// SetFaultAfterCommit arms a fault for op that applies once the request
// has taken effect: the change is made, and the caller gets the fault's
// status (or a dropped connection) instead of the answer. Latency is
// ignored. Times limits it to the next n committed requests (0: until
// cleared). Requests that fail on their own pass through and do not
// consume it.
func (g *Graph) SetFaultAfterCommit(op emu.Op, f emu.Fault) {
	g.hooks.mu.Lock()
	defer g.hooks.mu.Unlock()
	if g.hooks.after == nil {
		g.hooks.after = map[emu.Op]*afterFault{}
	}
	g.hooks.after[op] = &afterFault{Fault: f, left: f.Times}
}

// ClearFaultsAfterCommit disarms the after-commit faults of ops, or all.
func (g *Graph) ClearFaultsAfterCommit(ops ...emu.Op) {
	g.hooks.mu.Lock()
	defer g.hooks.mu.Unlock()
	if len(ops) == 0 {
		g.hooks.after = nil
	}
	for _, op := range ops {
		delete(g.hooks.after, op)
	}
}

// OnAddKey sets a function called (synchronously, before the answer is
// written) each time addKey has added a key; nil removes it.
func (g *Graph) OnAddKey(fn func(entra.KeyCredential)) {
	g.hooks.mu.Lock()
	defer g.hooks.mu.Unlock()
	g.hooks.onAddKey = fn
}

func (g *Graph) addKeyHook() func(entra.KeyCredential) {
	g.hooks.mu.Lock()
	defer g.hooks.mu.Unlock()
	return g.hooks.onAddKey
}

// armedAfter reports whether an after-commit fault is armed for op.
func (g *Graph) armedAfter(op emu.Op) bool {
	g.hooks.mu.Lock()
	defer g.hooks.mu.Unlock()
	return g.hooks.after[op] != nil
}

// takeAfter consumes one use of op's after-commit fault.
func (g *Graph) takeAfter(op emu.Op) (emu.Fault, bool) {
	g.hooks.mu.Lock()
	defer g.hooks.mu.Unlock()
	a := g.hooks.after[op]
	if a == nil {
		return emu.Fault{}, false
	}
	if a.Times > 0 {
		a.left--
		if a.left <= 0 {
			delete(g.hooks.after, op)
		}
	}
	return a.Fault, true
}

// serveCommitted runs serve with its answer held back; when the request
// succeeded and an after-commit fault is armed for op, the fault answers
// instead, else the held answer is written.
func (g *Graph) serveCommitted(w http.ResponseWriter, r *http.Request, op emu.Op, serve func(*responder)) {
	rec := httptest.NewRecorder()
	rw := newResponder(rec, r, g.auth.Now())
	serve(rw)
	if rec.Code/100 == 2 {
		if f, ok := g.takeAfter(op); ok {
			out := newResponder(w, r, g.auth.Now())
			if f.Drop {
				if hj, ok := w.(http.Hijacker); ok {
					if conn, _, err := hj.Hijack(); err == nil {
						conn.Close()
						return
					}
				}
				panic(http.ErrAbortHandler)
			}
			status := f.Status
			if status == 0 {
				status = http.StatusGatewayTimeout
			}
			out.faultWriter(w, status)
			return
		}
	}
	for k, vs := range rec.Header() {
		w.Header()[k] = vs
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}
