package redistest

import (
	"context"
	"strings"
	"testing"
	"time"
)

// do is Do that fails the test on an error.
func do(t *testing.T, addr string, args ...string) string {
	t.Helper()
	v, err := Do(context.Background(), addr, args...)
	if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	return v
}

func TestServerLifecycle(t *testing.T) {
	s := Start(t)
	a := s.Addr()
	do(t, a, "SET", "k", "v")
	// No persistence: a restart starts empty.
	s.Restart()
	if n := do(t, a, "EXISTS", "k"); n != "0" {
		t.Fatalf("after restart: %s keys", n)
	}
	do(t, a, "SET", "k", "v")
	s.FlushAll()
	if n := do(t, a, "DBSIZE"); n != "0" {
		t.Fatalf("after FLUSHALL: %s keys", n)
	}
	s.Pause(500 * time.Millisecond)
	short, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := Do(short, a, "GET", "k"); err == nil {
		t.Fatal("a paused server answered")
	}
	s.Stop()
	if _, err := Do(context.Background(), a, "PING"); err == nil {
		t.Fatal("a stopped server answered")
	}
}

func TestCluster(t *testing.T) {
	cl := StartCluster(t, 3)
	// Keys land on different masters; hash-tagged keys share one slot.
	for _, k := range []string{"a", "b", "c", "d", "{t}:x", "{t}:y"} {
		stored := false
		for _, n := range cl.Nodes {
			_, err := Do(context.Background(), n.Addr(), "SET", k, "v", "EX", "60")
			if err == nil {
				stored = true
				break
			}
			if !strings.Contains(err.Error(), "MOVED") {
				t.Fatal(err)
			}
		}
		if !stored {
			t.Fatalf("no master took key %q", k)
		}
	}
	a := cl.Nodes[0].Addr()
	if x, y := do(t, a, "CLUSTER", "KEYSLOT", "{t}:x"), do(t, a, "CLUSTER", "KEYSLOT", "{t}:y"); x != y {
		t.Fatalf("hash tags: slots %s and %s", x, y)
	}
	holding := 0
	for _, n := range cl.Nodes {
		if do(t, n.Addr(), "DBSIZE") != "0" {
			holding++
		}
	}
	if holding < 2 {
		t.Fatalf("keys spread over %d masters (want 2 or more)", holding)
	}
}
