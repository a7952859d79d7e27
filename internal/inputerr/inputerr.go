// Package inputerr defines the error the library's packages return for bad
// input (kvassert.InputError). It is internal so that kvassert, keyvault and
// assertion share one type without importing each other; users name it
// kvassert.InputError.
package inputerr

import "fmt"

// Error is input the library refused.
type Error struct {
	// Package is the library package that refused the input ("kvassert",
	// "keyvault", "assertion"); Error starts with it.
	Package string
	// Input names what was refused: "vault URL", "key ID", "name",
	// "thumbprint", "algorithm", "certificate data", "tenant", ...
	Input string
	// Reason says, in one line without the package name, what was wrong and
	// what is expected. It quotes the offending value only in a safe form
	// (truncated; no query, fragment or user info of a URL), and never a
	// secret.
	Reason string
	// Err is the underlying error, if any.
	Err error
}

// Error returns "package: reason".
func (e *Error) Error() string { return e.Package + ": " + e.Reason }

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// New returns an Error whose Reason is fmt.Sprintf(format, args...).
func New(pkg, input, format string, args ...any) *Error {
	return &Error{Package: pkg, Input: input, Reason: fmt.Sprintf(format, args...)}
}
