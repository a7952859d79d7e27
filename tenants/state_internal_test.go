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
	bind := stateBinding("2B6E9D10-7C4A-4F0E-8D21-5A3B4C6D7E82", "https://app.example.com/consent")
	tenant, ok := tenantGUID("9F8E7D6C-5b4a-4392-8170-6f5e4d3c2b1a")
	if !ok {
		t.Fatal("tenantGUID")
	}
	s, err := mintState(testKey, bind, now.Add(time.Minute), tenant, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(s) != stateMinText || strings.ContainsAny(s, "+/=") {
		t.Fatalf("state %q: %d bytes, want %d URL-safe", s, len(s), stateMinText)
	}
	v, err := verifyState(testKey, bind, s, now)
	if err != nil || len(v.nonce) != 2*stateNonce || !v.exp.Equal(now.Add(time.Minute)) || v.tenant != tenant || v.domain != "" {
		t.Fatalf("%+v %v", v, err)
	}
	if _, err := verifyState(testKey, bind, s, now.Add(time.Minute)); err == nil {
		t.Fatal("accepted at its expiry")
	}
	if _, err := verifyState([]byte("another key, 32 bytes long......"), bind, s, now); err == nil {
		t.Fatal("accepted under another key")
	}
	for _, other := range [][]byte{
		stateBinding("2b6e9d10-7c4a-4f0e-8d21-5a3b4c6d7e83", "https://app.example.com/consent"),
		stateBinding("2b6e9d10-7c4a-4f0e-8d21-5a3b4c6d7e82", "https://app.example.com/consent2"),
		nil,
	} {
		if _, err := verifyState(testKey, other, s, now); err == nil {
			t.Fatalf("accepted for another app or redirect URI %q", other)
		}
	}
	if _, err := verifyState(testKey, stateBinding("2b6e9d10-7c4a-4f0e-8d21-5a3b4c6d7e82", "https://app.example.com/consent"), s, now); err != nil {
		t.Fatal("the client ID's case matters", err)
	}
	for i := range s { // every single-character change is refused
		b := []byte(s)
		b[i] = map[bool]byte{true: 'A', false: 'B'}[b[i] != 'A']
		if _, err := verifyState(testKey, bind, string(b), now); err == nil {
			t.Fatalf("accepted with byte %d changed", i)
		}
	}
	s2, _ := mintState(testKey, bind, now.Add(time.Minute), [16]byte{}, "")
	if s2 == s {
		t.Fatal("two states alike: no nonce")
	}
	if v, err := verifyState(testKey, bind, s2, now); err != nil || v.tenant != ([16]byte{}) {
		t.Fatalf("a state for any tenant: %x %v", v.tenant, err)
	}
	for _, bad := range []string{"", "organizations", "contoso.com", "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1"} {
		if _, ok := tenantGUID(bad); ok {
			t.Fatalf("tenantGUID(%q)", bad)
		}
	}
}

// A state made for a domain carries it under the MAC: the domain comes
// back as minted, and any change of it (or of its length) is refused.
func TestStateCarriesTheDomain(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	bind := stateBinding("2b6e9d10-7c4a-4f0e-8d21-5a3b4c6d7e82", "https://app.example.com/consent")
	for _, domain := range []string{"contoso.onmicrosoft.com", "a", strings.Repeat("d", stateMaxName)} {
		s, err := mintState(testKey, bind, now.Add(time.Minute), [16]byte{}, domain)
		if err != nil || len(s) < stateMinText || len(s) > stateMaxText {
			t.Fatalf("%q: %d bytes, %v", domain, len(s), err)
		}
		v, err := verifyState(testKey, bind, s, now)
		if err != nil || v.domain != domain || v.tenant != ([16]byte{}) {
			t.Fatalf("%q: %+v %v", domain, v, err)
		}
		for i := range s {
			b := []byte(s)
			b[i] = map[bool]byte{true: 'A', false: 'B'}[b[i] != 'A']
			if _, err := verifyState(testKey, bind, string(b), now); err == nil {
				t.Fatalf("%q: accepted with byte %d changed", domain, i)
			}
		}
		if _, err := verifyState(testKey, bind, s[:len(s)-4], now); err == nil {
			t.Fatalf("%q: accepted shortened", domain)
		}
	}
	if _, err := mintState(testKey, bind, now.Add(time.Minute), [16]byte{}, strings.Repeat("d", stateMaxName+1)); err == nil {
		t.Fatal("minted a state for a 256-byte domain")
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
