package obs

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
)

type typedErr string

func (e typedErr) Error() string     { return "typed" }
func (e typedErr) ErrorType() string { return string(e) }

func TestErrorType(t *testing.T) {
	throttled := &azcore.ResponseError{StatusCode: http.StatusTooManyRequests, ErrorCode: "Throttled"}
	forbidden := &azcore.ResponseError{StatusCode: http.StatusForbidden, ErrorCode: "Forbidden"}
	bare := &azcore.ResponseError{StatusCode: http.StatusBadGateway}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nil, ""},
		{fmt.Errorf("wrapped: %w", typedErr("throttled")), "throttled"},
		{errors.New("kvassert: token request for tenant x failed (HTTP 400): AADSTS700016: Application with identifier 'y' was not found"), "AADSTS700016"},
		{errors.New("AADSTS is not followed by digits"), "_OTHER"},
		{fmt.Errorf("Key Vault is throttling: %w", throttled), "throttled"},
		{fmt.Errorf("deadline with a 429 inside: %w %w", context.DeadlineExceeded, throttled), "throttled"},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), "timeout"},
		{context.Canceled, "canceled"},
		{forbidden, "Forbidden"},
		{bare, "http_502"},
		{&net.OpError{Op: "dial", Err: errors.New("connection refused")}, "network"},
		{errors.New("something else"), "_OTHER"},
		{StatusError(400), "http_400"},
	} {
		if got := ErrorType(tc.err); got != tc.want {
			t.Errorf("ErrorType(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
