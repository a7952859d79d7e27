package kvassert

import (
	"log/slog"
	"reflect"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/kvassert/kvassert/telemetry"
)

// This file is how settings are given once: NewCredential hands its
// ClientOptions (transport, cloud, retry), Telemetry and Logger to the
// built-in Sources whose own were left zero.
//
// A built-in Source is configured once, before its first use: by the first
// NewCredential it is given to (even when that credential has nothing to
// give), or, when it is used before any credential is made, by its own
// options alone. A Source shared by two credentials keeps the first
// credential's settings; the second changes nothing.

// inherited is what a Credential gives its Source.
type inherited struct {
	clientOptions policy.ClientOptions
	telemetry     telemetry.Options
	logger        *slog.Logger
}

// configurable is implemented by the built-in Sources that take a
// Credential's settings (and by WrapSource's wrapper, which forwards).
type configurable interface {
	// configure applies d to the settings left zero, once; later calls,
	// and calls after the first use, change nothing.
	configure(d inherited) error
}

// configureOnce is a built-in Source's configure: under mu, and only while
// its settings are not final (no configure or use yet), it makes them final,
// lets inherit fill a copy of *opts from the Credential's settings and, when
// inherit filled any, calls rebuild with the copy (mu still held).
func configureOnce[O any](mu *sync.Mutex, final *bool, opts *O, inherit func(*O) bool, rebuild func(O) error) error {
	mu.Lock()
	defer mu.Unlock()
	if *final {
		return nil
	}
	*final = true
	o := *opts
	if !inherit(&o) {
		return nil
	}
	return rebuild(o)
}

// inheritAll fills the ClientOptions, Telemetry and Logger left zero from d;
// it reports whether it filled any.
func inheritAll(co *policy.ClientOptions, t *telemetry.Options, l **slog.Logger, d inherited) bool {
	c, tt, ll := inheritClient(co, d), inheritTelemetry(t, d), inheritLogger(l, d)
	return c || tt || ll
}

// inheritClient sets *co from d when *co is zero; it reports whether it did.
func inheritClient(co *policy.ClientOptions, d inherited) bool {
	if !reflect.ValueOf(*co).IsZero() || reflect.ValueOf(d.clientOptions).IsZero() {
		return false
	}
	*co = d.clientOptions
	return true
}

// inheritTelemetry sets *t from d when *t is zero; it reports whether it did.
func inheritTelemetry(t *telemetry.Options, d inherited) bool {
	if !reflect.ValueOf(*t).IsZero() || reflect.ValueOf(d.telemetry).IsZero() {
		return false
	}
	*t = d.telemetry
	return true
}

// inheritLogger sets *l from d when *l is nil; it reports whether it did.
func inheritLogger(l **slog.Logger, d inherited) bool {
	if *l != nil || d.logger == nil {
		return false
	}
	*l = d.logger
	return true
}
