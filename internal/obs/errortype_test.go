package obs

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/kvassert/kvassert/internal/flight"
	"github.com/kvassert/kvassert/internal/inputerr"
)

type typedErr string

func (e typedErr) Error() string     { return "typed" }
func (e typedErr) ErrorType() string { return string(e) }

// authErr stands in for kvassert.AuthError (which imports this package's
// importers): its error.type is its typed code, whatever its text says.
type authErr struct {
	code int
	text string
}

func (e authErr) Error() string     { return e.text }
func (e authErr) ErrorType() string { return fmt.Sprintf("AADSTS%d", e.code) }

// TestErrorType: error.type comes from typed errors only. Texts holding
// "AADSTS<digits>" (a refused tenant is quoted in its error) are "_OTHER",
// or "input" when they are an InputError; a typed AADSTS code is reported
// whatever the text; a server's error codes outside Key Vault's documented
// set are reported by status only.
func TestErrorType(t *testing.T) {
	throttled := &azcore.ResponseError{StatusCode: http.StatusTooManyRequests, ErrorCode: "Throttled"}
	forbidden := &azcore.ResponseError{StatusCode: http.StatusForbidden, ErrorCode: "Forbidden"}
	bare := &azcore.ResponseError{StatusCode: http.StatusBadGateway}
	refusedTenant := inputerr.New("kvassert", "tenant", "this credential is not configured for tenant %q", "AADSTS700016.example.com")
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"typed, wrapped", fmt.Errorf("wrapped: %w", typedErr("throttled")), "throttled"},
		{"typed AADSTS code", fmt.Errorf("x: %w", authErr{700016, "token request for tenant x failed"}), "AADSTS700016"},
		{"typed code, another code in the text", authErr{700027, "tenant AADSTS1234.example.com: AADSTS999"}, "AADSTS700027"},
		{"AADSTS in plain text", errors.New("kvassert: token request for tenant x failed (HTTP 400): AADSTS700016: Application with identifier 'y' was not found"), TypeOther},
		{"AADSTS in a refused tenant", refusedTenant, TypeInput},
		{"AADSTS in a wrapped refused tenant", fmt.Errorf("get token: %w", refusedTenant), TypeInput},
		{"input error wrapping a typed error", &inputerr.Error{Package: "kvassert", Input: "claims", Reason: "AADSTS1", Err: typedErr("throttled")}, TypeInput},
		{"input error wrapping a context error", &inputerr.Error{Package: "kvassert", Input: "x", Reason: "r", Err: context.Canceled}, TypeInput},
		{"AADSTS without digits", errors.New("AADSTS is not followed by digits"), TypeOther},
		{"typed value with spaces", typedErr("not a label"), TypeOther},
		{"typed value too long", typedErr(strings.Repeat("A", 33)), TypeOther},
		{"typed empty value falls through", fmt.Errorf("%w %w", typedErr(""), context.DeadlineExceeded), "timeout"},
		{"recovered panic", fmt.Errorf("token: %w", &flight.PanicError{What: "token acquisition", Value: "AADSTS700016 secret"}), "panic"},
		{"429", fmt.Errorf("Key Vault is throttling: %w", throttled), "throttled"},
		{"deadline with a 429 inside", fmt.Errorf("deadline with a 429 inside: %w %w", context.DeadlineExceeded, throttled), "throttled"},
		{"deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), "timeout"},
		{"canceled", context.Canceled, "canceled"},
		{"documented code", forbidden, "Forbidden"},
		{"made-up code", &azcore.ResponseError{StatusCode: 400, ErrorCode: "AADSTS123 made up"}, "http_400"},
		{"made-up code, odd status", &azcore.ResponseError{StatusCode: 461, ErrorCode: "X"}, "http_4xx"},
		{"made-up code, odd 5xx", &azcore.ResponseError{StatusCode: 599, ErrorCode: "X"}, "http_5xx"},
		{"made-up status", &azcore.ResponseError{StatusCode: 9999}, "http_other"},
		{"no code", bare, "http_502"},
		{"network", &net.OpError{Op: "dial", Err: errors.New("connection refused")}, "network"},
		{"other", errors.New("something else"), TypeOther},
		{"status", StatusError(400), "http_400"},
		{"odd status", StatusError(477), "http_4xx"},
	} {
		if got := ErrorType(tc.err); got != tc.want {
			t.Errorf("%s: ErrorType(%v) = %q, want %q", tc.name, tc.err, got, tc.want)
		}
	}
}

// TestTypedValuesAreBounded: ErrorTyper values come from servers too (an
// AADSTS code is the token endpoint's error_codes); past maxTypedValues
// distinct ones, new values are "_OTHER" and the ones admitted stay.
func TestTypedValuesAreBounded(t *testing.T) {
	saved := typedValues
	typedValues = &boundedSet{max: maxTypedValues}
	t.Cleanup(func() { typedValues = saved })

	if got := ErrorType(authErr{700016, ""}); got != "AADSTS700016" {
		t.Fatalf("first code: %q", got)
	}
	seen := map[string]bool{}
	for i := range 10 * maxTypedValues {
		seen[ErrorType(authErr{1000000 + i, ""})] = true
	}
	if len(seen) > maxTypedValues {
		t.Errorf("%d distinct values, want at most %d", len(seen), maxTypedValues)
	}
	if !seen[TypeOther] {
		t.Error("no _OTHER past the bound")
	}
	if got := ErrorType(authErr{700016, ""}); got != "AADSTS700016" {
		t.Errorf("an admitted code after the bound: %q", got)
	}
}
