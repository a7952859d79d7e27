// Package jwtassert decodes and checks client-assertion JWTs (the
// emulator's token endpoint, the CLI's decode command and the tests use
// it), parses thumbprints and algorithm names, and holds the assertion
// lifetime bounds that package assertion enforces. Standard library only.
package jwtassert

import (
	"time"

	"github.com/kvassert/kvassert/internal/inputerr"
	"github.com/kvassert/kvassert/internal/textutil"
)

// Lifetime bounds of a client assertion. Entra recommends 5 to 10 minutes.
const (
	DefaultLifetime = 10 * time.Minute
	MinLifetime     = 1 * time.Minute
	MaxLifetime     = 60 * time.Minute
)

// ParseAlgorithm accepts "PS256" or "RS256" (any case) and returns it in
// upper case (an assertion.Algorithm's value).
func ParseAlgorithm(s string) (string, error) {
	switch a := toUpperASCII(s); a {
	case "PS256", "RS256":
		return a, nil
	}
	return "", inputErr("algorithm", "algorithm %q is not supported; use PS256 (default) or RS256", textutil.Truncate(s, 40))
}

func toUpperASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 32
		}
	}
	return string(b)
}

// inputErr is the error for input this package refuses (a
// kvassert.InputError: read it with errors.As).
func inputErr(input, format string, args ...any) error {
	return inputerr.New("assertion", input, format, args...)
}
