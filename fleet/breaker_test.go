package fleet

import (
	"testing"
	"time"
)

func TestBreakerOpensProbesAndCloses(t *testing.T) {
	b := newBreaker(2, 50*time.Millisecond)
	b.failure()
	if !b.allow() {
		t.Fatal("open after one failure of two")
	}
	if !b.failure() || b.allow() {
		t.Fatal("not open after two failures")
	}
	time.Sleep(60 * time.Millisecond) // past the cool-down
	if !b.allow() {
		t.Fatal("no probe after the cool-down")
	}
	if b.allow() {
		t.Fatal("a second probe while the first runs")
	}
	b.failure() // the probe failed: open again
	if b.allow() {
		t.Fatal("closed after a failed probe")
	}
	time.Sleep(60 * time.Millisecond)
	if !b.allow() {
		t.Fatal("no second probe")
	}
	b.abort() // the caller gave up: the next call probes again
	if !b.allow() {
		t.Fatal("no probe after an aborted one")
	}
	b.success()
	if !b.allow() || !b.allow() || b.opens != 2 {
		t.Fatalf("not closed after a good probe (opens %d)", b.opens)
	}
}
