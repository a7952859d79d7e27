package obs

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/kvassert/kvassert/internal/inputerr"
)

// ErrorTyper is implemented by errors that know their error.type (for
// example kvassert.AuthError: its AADSTS code; the Key Vault throttling
// error: "throttled"). ErrorType finds it anywhere in an error's chain.
type ErrorTyper interface {
	ErrorType() string
}

// Fixed error.type values.
const (
	// TypeInput is the error.type of every kvassert.InputError: input
	// refused before any network call. It is one value whatever the input
	// was, so that a caller's text can never pick a metric label.
	TypeInput = "input"
	// TypeOther is the error.type of an error with no known type, and of
	// typed values past the bound of distinct ones (see ErrorType).
	TypeOther = "_OTHER"
)

// ErrorType returns the low-cardinality error.type of err ("" for nil),
// from typed errors only, never from the error's text:
//
//   - "input" for a kvassert.InputError anywhere in the chain;
//   - the value of an ErrorTyper in the chain ("AADSTS700016" from a
//     kvassert.AuthError), when it is label-shaped (ASCII letters, digits,
//     '_', '.', '-'; at most 32 bytes) and among the first maxTypedValues
//     distinct values the process has seen, else "_OTHER";
//   - "throttled" for a 429 from Azure;
//   - "timeout" or "canceled" for context errors;
//   - for another Azure answer (azcore.ResponseError), its error code when
//     it is one of Key Vault's documented codes (knownServiceCodes), else
//     "http_<status>" for the usual statuses, else "http_4xx"/"http_5xx"/
//     "http_other": a server cannot create label values;
//   - "network" for network errors ("timeout" when they timed out);
//   - "_OTHER" otherwise.
//
// The set of values it can return is therefore bounded.
func ErrorType(err error) string {
	if err == nil {
		return ""
	}
	var ie *inputerr.Error
	if errors.As(err, &ie) {
		return TypeInput
	}
	var et ErrorTyper
	if errors.As(err, &et) {
		if t := typedValues.admit(et.ErrorType()); t != "" {
			return t
		}
	}
	var re *azcore.ResponseError
	if errors.As(err, &re) && re.StatusCode == http.StatusTooManyRequests {
		return "throttled"
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	if re != nil {
		if knownServiceCodes[re.ErrorCode] {
			return re.ErrorCode
		}
		return StatusType(re.StatusCode)
	}
	var ne net.Error
	if errors.As(err, &ne) {
		if ne.Timeout() {
			return "timeout"
		}
		return "network"
	}
	return TypeOther
}

// knownServiceCodes are the Key Vault (and azcore) error codes reported as
// error.type as they are; any other code a server sends is reported by its
// HTTP status only.
var knownServiceCodes = map[string]bool{
	"BadParameter":          true,
	"Forbidden":             true,
	"Unauthorized":          true,
	"NotFound":              true,
	"KeyNotFound":           true,
	"CertificateNotFound":   true,
	"SecretNotFound":        true,
	"Conflict":              true,
	"Throttled":             true,
	"InternalServerError":   true,
	"ServiceUnavailable":    true,
	"KeyDisabled":           true,
	"AccessDenied":          true,
	"ForbiddenByPolicy":     true,
	"ForbiddenByRbac":       true,
	"ForbiddenByFirewall":   true,
	"ForbiddenByConnection": true,
}

// statusTypes are the statuses reported as "http_<status>".
var statusTypes = func() map[int]string {
	m := map[int]string{}
	for _, s := range []int{300, 301, 302, 304, 307, 308, 400, 401, 403, 404, 405, 408, 409, 410, 412, 413, 415, 429, 500, 501, 502, 503, 504} {
		m[s] = "http_" + strconv.Itoa(s)
	}
	return m
}()

// StatusType is the error.type of an HTTP answer with status: "http_403"
// for the usual statuses, else "http_4xx", "http_5xx" or "http_other".
func StatusType(status int) string {
	if t, ok := statusTypes[status]; ok {
		return t
	}
	switch {
	case status >= 400 && status < 500:
		return "http_4xx"
	case status >= 500 && status < 600:
		return "http_5xx"
	}
	return "http_other"
}

// maxTypedValues bounds the distinct values ErrorTyper errors may add to
// error.type in one process. Real AADSTS codes and kvassert's own types
// are a few dozen; a token endpoint or a Source sending endless new ones
// gets "_OTHER" past the bound.
const maxTypedValues = 128

// typedValues are the ErrorTyper values admitted so far.
var typedValues = &boundedSet{max: maxTypedValues}

// boundedSet admits at most max distinct label values; the zero value
// with max set is ready. Safe for concurrent use.
type boundedSet struct {
	mu  sync.RWMutex
	m   map[string]string
	max int
}

// admit returns v (a copy owned by the set, so that no caller's larger
// string stays reachable through a label) when it is label-shaped and admitted, "_OTHER"
// when it is label-shaped but the set is full, and "" when v is not a
// label at all.
func (s *boundedSet) admit(v string) string {
	if !labelShaped(v) {
		return ""
	}
	return s.add(v)
}

// add returns v (a copy owned by the set) when it is in the set or could be
// added, else "_OTHER".
func (s *boundedSet) add(v string) string {
	s.mu.RLock()
	t, ok := s.m[v]
	full := len(s.m) >= s.max
	s.mu.RUnlock()
	switch {
	case ok:
		return t
	case full: // the common case past the bound: no write lock
		return TypeOther
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.m[v]; ok {
		return t
	}
	if len(s.m) >= s.max {
		return TypeOther
	}
	if s.m == nil {
		s.m = map[string]string{}
	}
	t = string([]byte(v))
	s.m[t] = t
	return t
}

// labelShaped reports whether v may be a label value: 1 to 32 bytes of
// ASCII letters, digits, '_', '.', '-'.
func labelShaped(v string) bool {
	if v == "" || len(v) > 32 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// StatusError is a token endpoint's (or another server's) non-2xx answer,
// for the end func of StartTokenRequest: its error.type is StatusType's.
type StatusError int

// Error returns "HTTP <code>".
func (e StatusError) Error() string { return "HTTP " + strconv.Itoa(int(e)) }

// ErrorType returns StatusType(code): "http_<code>" for the usual statuses.
func (e StatusError) ErrorType() string { return StatusType(int(e)) }
