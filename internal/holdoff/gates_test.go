package holdoff

import (
	"fmt"
	"testing"
	"time"
)

// The process-wide gates are per vault host, and hosts can come from
// callers (the developer proxy's kv-key route): the map of gates stays
// bounded, and a host keeps its gate while it is held off.
func TestProcessGatesAreBounded(t *testing.T) {
	held := For("held.vault.azure.net")
	held.Throttled(30 * time.Second)
	for i := range 5 * maxGates {
		For(fmt.Sprintf("v%d.vault.azure.net", i))
	}
	if n := gateCount(); n > maxGates {
		t.Fatalf("%d gates after %d vault hosts, want at most %d", n, 5*maxGates, maxGates)
	}
	if For("HELD.vault.azure.net") != held {
		t.Fatal("a held-off host lost its gate: its signers would not wait")
	}
	a, b := For("same.vault.azure.net"), For("same.vault.azure.net")
	if a != b {
		t.Fatal("one host, two gates")
	}
}

// gateCount is the number of process-wide gates.
func gateCount() int {
	gates.Lock()
	defer gates.Unlock()
	return len(gates.m)
}
