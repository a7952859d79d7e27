package emu

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kvassert/kvassert/internal/emuhook"
)

// Op names an emulated operation, for fault injection and counters.
type Op = emuhook.Op

// Operations of the Key Vault emulator.
const (
	OpChallenge          Op = "keyvault/challenge" // unauthenticated request answered 401
	OpKeyCreate          Op = "keys/create"
	OpKeyImport          Op = "keys/import"
	OpKeyGet             Op = "keys/get"
	OpKeyList            Op = "keys/list"
	OpKeySign            Op = "keys/sign"
	OpKeyVerify          Op = "keys/verify"
	OpCertificateCreate  Op = "certificates/create"
	OpCertificatePending Op = "certificates/pending"
	OpCertificateGet     Op = "certificates/get"
	OpCertificateList    Op = "certificates/list"
	OpCertificateImport  Op = "certificates/import"
	OpCertificatePolicy  Op = "certificates/policy"
	OpCertificateUpdate  Op = "certificates/update"
	OpSecretGet          Op = "secrets/get"
)

// Operations of the Entra ID emulator.
const (
	OpDiscovery       Op = "entra/discovery"        // openid-configuration
	OpJWKS            Op = "entra/jwks"             // discovery/v2.0/keys
	OpInstance        Op = "entra/instance"         // instance discovery
	OpToken           Op = "entra/token"            // token endpoint
	OpManagedIdentity Op = "entra/managed-identity" // managed identity endpoint
	OpAdminConsent    Op = "entra/adminconsent"     // {tenant}/v2.0/adminconsent (page and form)
)

// Fault is what an injected failure does to matching requests.
type Fault = emuhook.Fault

// ErrorWriter writes a service-specific error body for status.
type ErrorWriter func(w http.ResponseWriter, status int)

// Faults holds injected faults and request counters. Safe for concurrent use;
// the zero value is ready.
type Faults struct {
	mu       sync.Mutex
	faults   map[Op]*armed
	counters sync.Map // Op -> *atomic.Int64
}

type armed struct {
	Fault
	left int // remaining uses when Times > 0
}

// Set arms a fault for op, replacing any previous one.
func (f *Faults) Set(op Op, fault Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.faults == nil {
		f.faults = map[Op]*armed{}
	}
	f.faults[op] = &armed{Fault: fault, left: fault.Times}
}

// Clear disarms the fault for op; with no op, every fault.
func (f *Faults) Clear(ops ...Op) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(ops) == 0 {
		f.faults = nil
	}
	for _, op := range ops {
		delete(f.faults, op)
	}
}

// Count returns how many requests for op have arrived (faulted ones included).
func (f *Faults) Count(op Op) int64 {
	if c, ok := f.counters.Load(op); ok {
		return c.(*atomic.Int64).Load()
	}
	return 0
}

// Counts returns a snapshot of every non-zero counter.
func (f *Faults) Counts() map[Op]int64 {
	out := map[Op]int64{}
	f.counters.Range(func(k, v any) bool {
		if n := v.(*atomic.Int64).Load(); n > 0 {
			out[k.(Op)] = n
		}
		return true
	})
	return out
}

// ResetCounts zeroes every counter.
func (f *Faults) ResetCounts() {
	f.counters.Range(func(_, v any) bool { v.(*atomic.Int64).Store(0); return true })
}

// Inc counts one request for op.
func (f *Faults) Inc(op Op) {
	c, ok := f.counters.Load(op)
	if !ok {
		c, _ = f.counters.LoadOrStore(op, new(atomic.Int64))
	}
	c.(*atomic.Int64).Add(1)
}

// takeLocked returns the fault to apply to one request for op, consuming a
// use. f.mu is held.
func (f *Faults) takeLocked(op Op) (Fault, bool) {
	a := f.faults[op]
	if a == nil {
		return Fault{}, false
	}
	if a.Times > 0 {
		a.left--
		if a.left <= 0 {
			delete(f.faults, op)
		}
	}
	return a.Fault, true
}

// arrive decides the fault of one request for op (consuming a use) and then
// counts the request, under one lock: once Count(op) reports a request, the
// fault that request gets is settled, so a test that waits for the count and
// then arms a new fault can never have that fault consumed by a request it
// already counted, nor see requests counted in another order than they took
// their faults.
func (f *Faults) arrive(op Op) (Fault, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fault, ok := f.takeLocked(op)
	f.Inc(op)
	return fault, ok
}

// Begin counts the request and applies any armed fault. It returns true when
// the fault answered the request (the handler must then return at once).
func (f *Faults) Begin(w http.ResponseWriter, r *http.Request, op Op, writeErr ErrorWriter) bool {
	fault, ok := f.arrive(op)
	if !ok {
		return false
	}
	if fault.Latency > 0 {
		t := time.NewTimer(fault.Latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return true
		}
	}
	if fault.Hold != nil {
		select {
		case <-fault.Hold:
		case <-r.Context().Done():
			return true
		}
	}
	if fault.Drop {
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return true
			}
		}
		panic(http.ErrAbortHandler) // HTTP/2 or no hijack: abort the stream
	}
	if fault.Status != 0 {
		if fault.RetryAfter > 0 {
			secs := int((fault.RetryAfter + time.Second - 1) / time.Second)
			w.Header().Set("Retry-After", strconv.Itoa(secs))
		}
		writeErr(w, fault.Status)
		return true
	}
	return false
}
