package flight

import (
	"testing"
	"time"
)

func TestBackoffDoublesWithJitterAndResets(t *testing.T) {
	b := Backoff{Base: time.Second, Max: 8 * time.Second}
	now := time.Unix(1000, 0)
	if !b.Ready(now) {
		t.Fatal("a new Backoff is not ready")
	}
	for i, want := range []time.Duration{1, 2, 4, 8, 8} {
		want *= time.Second
		next := b.Failed(now)
		d := next.Sub(now)
		if d < want || d > want+want/2 {
			t.Fatalf("failure %d: next try after %v, want %v..%v", i+1, d, want, want+want/2)
		}
		if b.Ready(now) || b.Ready(next.Add(-time.Nanosecond)) {
			t.Fatalf("failure %d: ready before the next try", i+1)
		}
		if !b.Ready(next) {
			t.Fatalf("failure %d: not ready at the next try", i+1)
		}
	}
	if b.Failures() != 5 {
		t.Fatalf("Failures = %d", b.Failures())
	}
	b.Succeeded()
	if !b.Ready(now) || b.Failures() != 0 {
		t.Fatal("Succeeded did not reset")
	}
}
