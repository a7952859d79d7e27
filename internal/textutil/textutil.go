// Package textutil holds the small text helpers that kvassert's packages
// share when they quote user input in a message.
package textutil

import (
	"strings"
	"unicode/utf8"
)

// Truncate returns s cut to at most n bytes, followed by "…" when it was
// cut. It never splits a UTF-8 sequence, so a quoted value stays valid
// text.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	if n < 0 {
		n = 0
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// FirstLine returns the first line of s, truncated to n bytes as Truncate
// does.
func FirstLine(s string, n int) string {
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	return Truncate(s, n)
}
