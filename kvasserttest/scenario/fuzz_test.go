package scenario_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// FuzzParse: scenario JSON loading never panics; what it accepts validates,
// and marshals back to JSON that parses to the same scenario.
func FuzzParse(f *testing.F) {
	demo, err := json.Marshal(scenario.Demo())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(demo)
	for _, s := range []string{
		"", "null", "{}", "[]", `{"tenants":[{"id":"8f3c2a51-4b7e-4d7c-9a53-0c6d1e2f3a41"}]}`,
		`{"tenants":[{"id":"8f3c2a51-4b7e-4d7c-9a53-0c6d1e2f3a41","name":"home"}],"apps":[{"clientId":"6d2f4a8b-1c3e-4f5a-9b7d-2e4f6a8c0b16","homeTenant":"home.onmicrosoft.com"}]}`,
		`{"tenants":[{"id":"8f3c2a51-4b7e-4d7c-9a53-0c6d1e2f3a41"}],"vaults":[{"name":"v1x","tenant":"8f3c2a51-4b7e-4d7c-9a53-0c6d1e2f3a41","managedHsm":true,"keys":[{"name":"k","kty":"EC-HSM","curve":"P-384"}],"access":[{"principal":"p","permissions":["keys/*"]}]}]}`,
		`{"tenants":[{"id":"8f3c2a51-4b7e-4d7c-9a53-0c6d1e2f3a41"}]} {}`,
		`{"tenants":[{"id":"8F3C2A51-4B7E-4D7C-9A53-0C6D1E2F3A41"},{"id":"8f3c2a51-4b7e-4d7c-9a53-0c6d1e2f3a41"}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := scenario.Parse(data)
		if err != nil {
			if s != nil || err.Error() == "" {
				t.Fatalf("error %v with a scenario", err)
			}
			return
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("Parse accepted what Validate refuses: %v", err)
		}
		out, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		back, err := scenario.Parse(out)
		if err != nil {
			t.Fatalf("re-marshalled scenario refused: %v\n%s", err, out)
		}
		again, _ := json.Marshal(back)
		if !bytes.Equal(out, again) {
			t.Fatalf("round trip changed the scenario:\n%s\n%s", out, again)
		}
		for _, tn := range s.Tenants {
			if _, ok := s.Tenant(tn.ID); !ok {
				t.Fatalf("tenant %q not found by ID", tn.ID)
			}
		}
	})
}
