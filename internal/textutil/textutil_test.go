package textutil

import (
	"testing"
	"unicode/utf8"
)

func TestTruncate(t *testing.T) {
	for _, tc := range []struct {
		s    string
		n    int
		want string
	}{
		{"", 3, ""},
		{"abc", 3, "abc"},
		{"abcd", 3, "abc…"},
		{"abcd", 0, "…"},
		{"abcd", -1, "…"},
		{"aé", 2, "a…"}, // é is 2 bytes: not split
		{"日本語", 4, "日…"},
		{"日本語", 6, "日本…"},
	} {
		got := Truncate(tc.s, tc.n)
		if got != tc.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tc.s, tc.n, got, tc.want)
		}
		if !utf8.ValidString(got) {
			t.Errorf("Truncate(%q, %d) = %q is not valid UTF-8", tc.s, tc.n, got)
		}
	}
}

func TestFirstLine(t *testing.T) {
	for _, tc := range []struct {
		s    string
		n    int
		want string
	}{
		{"one", 10, "one"},
		{"one\ntwo", 10, "one"},
		{"one\r\ntwo", 10, "one"},
		{"a long first line\ntwo", 6, "a long…"},
		{"\nsecond", 10, ""},
	} {
		if got := FirstLine(tc.s, tc.n); got != tc.want {
			t.Errorf("FirstLine(%q, %d) = %q, want %q", tc.s, tc.n, got, tc.want)
		}
	}
}
