package kvassert

import (
	"testing"
	"time"
)

// A 4-minute token (shorter than the 5-minute refresh margin) is refreshed
// once, half-way through its lifetime, not on every call.
func TestShortTokenRefreshedAtHalfLife(t *testing.T) {
	v := newLifecycleEnv(t, 4*60, 0)
	v.want(t, testOther, "tok-1", "first token")
	const calls = 20
	for range calls {
		if tok := v.get(t, testOther); tok != "tok-1" {
			t.Fatalf("before half-life got %q, want the cached tok-1", tok)
		}
	}
	if got := v.entra.requests.Load(); got != 1 {
		t.Fatalf("%d calls within the first half of a 4-minute token made %d token requests, want 1", calls+1, got)
	}
	v.advance(2*time.Minute + time.Second) // past half-life: one refresh
	v.get(t, testOther)
	for range calls {
		if tok := v.get(t, testOther); tok != "tok-2" {
			t.Fatalf("after the refresh got %q, want tok-2", tok)
		}
	}
	if got := v.entra.requests.Load(); got != 2 {
		t.Fatalf("%d token requests after one half-life, want 2", got)
	}
}
