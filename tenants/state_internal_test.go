package tenants

import (
	"context"
	"strings"
	"testing"
	"time"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

func TestStateRoundTrip(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s, err := mintState(testKey, now.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(s) != stateText || strings.ContainsAny(s, "+/=") {
		t.Fatalf("state %q: %d bytes, want %d URL-safe", s, len(s), stateText)
	}
	nonce, exp, err := verifyState(testKey, s, now)
	if err != nil || len(nonce) != 2*stateNonce || !exp.Equal(now.Add(time.Minute)) {
		t.Fatalf("%q %v %v", nonce, exp, err)
	}
	if _, _, err := verifyState(testKey, s, now.Add(time.Minute)); err == nil {
		t.Fatal("accepted at its expiry")
	}
	if _, _, err := verifyState([]byte("another key, 32 bytes long......"), s, now); err == nil {
		t.Fatal("accepted under another key")
	}
	for i := range s { // every single-character change is refused
		b := []byte(s)
		b[i] = map[bool]byte{true: 'A', false: 'B'}[b[i] != 'A']
		if _, _, err := verifyState(testKey, string(b), now); err == nil {
			t.Fatalf("accepted with byte %d changed", i)
		}
	}
	s2, _ := mintState(testKey, now.Add(time.Minute))
	if s2 == s {
		t.Fatal("two states alike: no nonce")
	}
}

// TestMemoryStatesBounded: used states are refused; the store never holds
// more than its bound, dropping expired ones first.
func TestMemoryStatesBounded(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	m := &memoryStates{used: map[string]time.Time{}, max: 3, now: func() time.Time { return now }}
	ctx := context.Background()
	use := func(n string, until time.Duration) (bool, error) { return m.Use(ctx, n, now.Add(until)) }
	for _, n := range []string{"a", "b", "c"} {
		if ok, err := use(n, time.Minute); !ok || err != nil {
			t.Fatal(n, ok, err)
		}
	}
	if ok, err := use("a", time.Minute); ok || err != nil {
		t.Fatal("replay accepted", ok, err)
	}
	if ok, err := use("d", time.Minute); ok || err == nil {
		t.Fatal("over the bound", ok, err)
	}
	now = now.Add(2 * time.Minute)
	if ok, err := use("d", time.Minute); !ok || err != nil || len(m.used) != 1 {
		t.Fatal("expired ones not dropped", ok, err, len(m.used))
	}
}
