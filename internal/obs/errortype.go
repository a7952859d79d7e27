package obs

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
)

// ErrorTyper is implemented by errors that know their error.type (for
// example kvassert.AuthError: its AADSTS code; the Key Vault throttling
// error: "throttled"). ErrorType finds it anywhere in an error's chain.
type ErrorTyper interface {
	ErrorType() string
}

// ErrorType returns the low-cardinality error.type of err ("" for nil): the
// value of an ErrorTyper in its chain; else the AADSTS code its message
// names ("AADSTS700016"); "throttled" for a 429 from Azure; "timeout" or
// "canceled" for context errors; the Azure error code ("Forbidden",
// "KeyNotFound") or "http_<status>" for other Azure answers; "network" for
// network errors; "_OTHER" otherwise. Never the error's text.
func ErrorType(err error) string {
	if err == nil {
		return ""
	}
	var et ErrorTyper
	if errors.As(err, &et) {
		if t := et.ErrorType(); t != "" && len(t) <= 64 {
			return t
		}
	}
	if code, ok := aadsts(err.Error()); ok {
		return code
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
		if re.ErrorCode != "" && len(re.ErrorCode) <= 64 {
			return re.ErrorCode
		}
		return "http_" + strconv.Itoa(re.StatusCode)
	}
	var ne net.Error
	if errors.As(err, &ne) {
		if ne.Timeout() {
			return "timeout"
		}
		return "network"
	}
	return "_OTHER"
}

// aadsts finds "AADSTS" followed by digits in msg and returns that code.
func aadsts(msg string) (string, bool) {
	const p = "AADSTS"
	for i := 0; i+len(p) < len(msg); i++ {
		if msg[i:i+len(p)] != p {
			continue
		}
		j := i + len(p)
		for j < len(msg) && j-i < len(p)+10 && '0' <= msg[j] && msg[j] <= '9' {
			j++
		}
		if j > i+len(p) {
			return msg[i:j], true
		}
	}
	return "", false
}

// StatusError is a token endpoint's (or another server's) non-2xx answer,
// for the end func of StartTokenRequest: its error.type is "http_<code>".
type StatusError int

// Error returns "HTTP <code>".
func (e StatusError) Error() string { return "HTTP " + strconv.Itoa(int(e)) }

// ErrorType returns "http_<code>".
func (e StatusError) ErrorType() string { return "http_" + strconv.Itoa(int(e)) }
