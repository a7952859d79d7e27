package keyvault

import (
	"testing"
	"time"

	"github.com/kvassert/kvassert/internal/holdoff"
	"github.com/kvassert/kvassert/internal/kvid"
)

// Without SignerOptions.Throttle, the signers of one vault host share the
// process-wide gate of that host (whatever the case of its name); another
// host has its own, and SignerOptions.Throttle replaces it.
func TestDefaultThrottleIsPerVaultHost(t *testing.T) {
	a, _ := kvid.ParseVaultURL("https://kvassert-default-a.vault.azure.net/")
	upper, _ := kvid.ParseVaultURL("https://KVASSERT-DEFAULT-A.vault.azure.net/")
	b, _ := kvid.ParseVaultURL("https://kvassert-default-b.vault.azure.net/")
	var none *SignerOptions
	if none.throttle(a) != (&SignerOptions{}).throttle(upper) {
		t.Fatal("two signers of one vault host do not share its gate")
	}
	if none.throttle(a) == none.throttle(b) {
		t.Fatal("two vault hosts share a gate")
	}
	own := holdoff.New()
	if (&SignerOptions{Throttle: own}).throttle(a) != own {
		t.Fatal("SignerOptions.Throttle is not used")
	}
	s := (&SignerOptions{MaxThrottleWait: time.Second}).signer(nil, kvid.ObjectID{Vault: a, Kind: "keys", Name: "k"}, nil)
	if s.gate != none.throttle(a) || s.maxWait != time.Second {
		t.Fatalf("signer gate %p, budget %v", s.gate, s.maxWait)
	}
	if none.maxThrottleWait() != defaultMaxThrottleWait {
		t.Fatal("no default budget")
	}
}
