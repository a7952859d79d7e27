package scenario

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestDemoIsValidAndRoundTrips(t *testing.T) {
	d := Demo()
	if err := d.Validate(); err != nil {
		t.Fatalf("demo scenario invalid: %v", err)
	}
	data, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(data)
	if err != nil {
		t.Fatalf("Parse(Marshal(Demo())): %v", err)
	}
	if len(back.Tenants) != len(d.Tenants) || back.Apps[0].ClientID != DemoAppClientID {
		t.Fatalf("round trip lost data: %+v", back)
	}
}

func TestParseRejects(t *testing.T) {
	const tenant = `"tenants":[{"id":"8f3c2a51-4b7e-4d7c-9a53-0c6d1e2f3a41"}]`
	cases := []struct{ name, json, want string }{
		{"not json", `{`, "invalid JSON"},
		{"unknown field", `{` + tenant + `,"appz":[]}`, "unknown field"},
		{"trailing value", `{` + tenant + `} {}`, "more than one value"},
		{"no tenants", `{}`, "no tenants"},
		{"bad tenant id", `{"tenants":[{"id":"contoso"}]}`, `tenants[0].id "contoso" is not a GUID`},
		{"unknown home tenant", `{` + tenant + `,"apps":[{"clientId":"6d2f4a8b-1c3e-4f5a-9b7d-2e4f6a8c0b16","homeTenant":"2b6e9d10-7c4a-4f0e-8d21-5a3b4c6d7e82"}]}`, "apps[0].homeTenant"},
		{"consent without multi-tenant", `{` + tenant + `,"apps":[{"clientId":"6d2f4a8b-1c3e-4f5a-9b7d-2e4f6a8c0b16","homeTenant":"8f3c2a51-4b7e-4d7c-9a53-0c6d1e2f3a41","consentedTenants":["8f3c2a51-4b7e-4d7c-9a53-0c6d1e2f3a41"]}]}`, "multiTenant is false"},
		{"cert ref to missing vault", `{` + tenant + `,"apps":[{"clientId":"6d2f4a8b-1c3e-4f5a-9b7d-2e4f6a8c0b16","homeTenant":"8f3c2a51-4b7e-4d7c-9a53-0c6d1e2f3a41","certificates":[{"vault":"nope","name":"c"}]}]}`, `vault "nope" is not a vault`},
		{"bad vault name", `{` + tenant + `,"vaults":[{"name":"../etc","tenant":"8f3c2a51-4b7e-4d7c-9a53-0c6d1e2f3a41"}]}`, "not a valid vault name"},
		{"bad key size", `{` + tenant + `,"vaults":[{"name":"demo","tenant":"8f3c2a51-4b7e-4d7c-9a53-0c6d1e2f3a41","keys":[{"name":"k","size":1024}]}]}`, "RSA key size 1024"},
		{"unknown permission", `{` + tenant + `,"vaults":[{"name":"demo","tenant":"8f3c2a51-4b7e-4d7c-9a53-0c6d1e2f3a41","access":[{"principal":"x","permissions":["keys/steal"]}]}]}`, `unknown permission "keys/steal"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.json))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Parse error = %v, want it to contain %q", err, c.want)
			}
		})
	}
}

func TestTenantLookup(t *testing.T) {
	d := Demo()
	for _, q := range []string{DemoContosoTenant, strings.ToUpper(DemoContosoTenant), "contoso", "contoso.onmicrosoft.com"} {
		if got, ok := d.Tenant(q); !ok || got.ID != DemoContosoTenant {
			t.Errorf("Tenant(%q) = %v, %v", q, got, ok)
		}
	}
	if _, ok := d.Tenant("unknown"); ok {
		t.Error("Tenant(unknown) found")
	}
}
