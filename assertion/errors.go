package assertion

import "github.com/kvassert/kvassert/internal/inputerr"

// inputErr is the error for input this package refuses (a
// kvassert.InputError: read it with errors.As).
func inputErr(input, format string, args ...any) error {
	return inputerr.New("assertion", input, format, args...)
}
