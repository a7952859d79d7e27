package kvassert_test

import (
	"testing"

	"github.com/kvassert/kvassert"
)

// TestAuthErrorType: the error.type telemetry records for a refusal is the
// AADSTS code, else the HTTP status; never the description.
func TestAuthErrorType(t *testing.T) {
	for _, c := range []struct {
		err  kvassert.AuthError
		want string
	}{
		{kvassert.AuthError{Code: 700016, StatusCode: 400, Description: "AADSTS700016: Application not found"}, "AADSTS700016"},
		{kvassert.AuthError{StatusCode: 401, Description: "secret text"}, "http_401"},
		{kvassert.AuthError{Description: "AADSTS7000215 in text only"}, ""},
	} {
		if got := c.err.ErrorType(); got != c.want {
			t.Errorf("%+v: ErrorType() = %q, want %q", c.err, got, c.want)
		}
	}
}
