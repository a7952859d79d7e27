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
	app := func(fields string) string {
		return `{` + tenant + `,"apps":[{"clientId":"6d2f4a8b-1c3e-4f5a-9b7d-2e4f6a8c0b16","homeTenant":"8f3c2a51-4b7e-4d7c-9a53-0c6d1e2f3a41",` + fields + `}]}`
	}
	app2 := func(fields string) string { // two tenants
		return `{"tenants":[{"id":"8f3c2a51-4b7e-4d7c-9a53-0c6d1e2f3a41"},{"id":"2b6e9d10-7c4a-4f0e-8d21-5a3b4c6d7e82"}],"apps":[{"clientId":"6d2f4a8b-1c3e-4f5a-9b7d-2e4f6a8c0b16","homeTenant":"8f3c2a51-4b7e-4d7c-9a53-0c6d1e2f3a41",` + fields + `}]}`
	}
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
		{"consent in unknown tenant", app(`"multiTenant":true,"consents":[{"tenant":"2b6e9d10-7c4a-4f0e-8d21-5a3b4c6d7e82","roles":[]}]`), "apps[0].consents[0].tenant"},
		{"consent of a single-tenant app", app2(`"consents":[{"tenant":"2b6e9d10-7c4a-4f0e-8d21-5a3b4c6d7e82","roles":[]}]`), "multiTenant is false"},
		{"tenant consented twice", app2(`"multiTenant":true,"consentedTenants":["2b6e9d10-7c4a-4f0e-8d21-5a3b4c6d7e82"],"consents":[{"tenant":"2B6E9D10-7c4a-4f0e-8d21-5a3b4c6d7e82","roles":[]}]`), "consented twice"},
		{"role with a space", app2(`"multiTenant":true,"consents":[{"tenant":"2b6e9d10-7c4a-4f0e-8d21-5a3b4c6d7e82","roles":["User Read"]}]`), "apps[0].consents[0].roles[0]"},
		{"empty app role", app(`"roles":[""]`), "apps[0].roles[0]"},
		{"bad rolesResource", app(`"rolesResource":"graph"`), "apps[0].rolesResource"},
		{"redirect URI http", app(`"redirectUris":["http://example.com/cb"]`), "must be https"},
		{"redirect URI relative", app(`"redirectUris":["/cb"]`), "not an absolute URL"},
		{"redirect URI fragment", app(`"redirectUris":["https://example.com/cb#x"]`), "fragment"},
		{"redirect URI wildcard", app(`"redirectUris":["https://*.example.com/cb"]`), "wildcard"},
		{"redirect URI too long", app(`"redirectUris":["https://example.com/` + strings.Repeat("a", 300) + `"]`), "longer than 256"},
		{"unknown lock field", app(`"servicePrincipalLockConfiguration":{"isEnabled":true,"all":true}`), "unknown field"},
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

func TestParseCustomerTenants(t *testing.T) {
	s, err := Parse([]byte(`{"tenants":[{"id":"8f3c2a51-4b7e-4d7c-9a53-0c6d1e2f3a41"},{"id":"2b6e9d10-7c4a-4f0e-8d21-5a3b4c6d7e82"},{"id":"c41d8e92-3f5b-4a6c-b7d8-9e0f1a2b3c93"}],
	"apps":[{"clientId":"6d2f4a8b-1c3e-4f5a-9b7d-2e4f6a8c0b16","homeTenant":"8f3c2a51-4b7e-4d7c-9a53-0c6d1e2f3a41","multiTenant":true,
	"roles":["Sites.Read.All"],"rolesResource":"https://graph.microsoft.com",
	"consentedTenants":["2b6e9d10-7c4a-4f0e-8d21-5a3b4c6d7e82"],
	"consents":[{"tenant":"c41d8e92-3f5b-4a6c-b7d8-9e0f1a2b3c93","roles":[]},{"tenant":"8f3c2a51-4b7e-4d7c-9a53-0c6d1e2f3a41","roles":["User.Read.All"]}],
	"redirectUris":["http://localhost/cb","https://app.example.com/consent?x=1"],
	"servicePrincipalLockConfiguration":{"isEnabled":true,"allProperties":true}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	a := s.Apps[0]
	if len(a.Consents) != 2 || a.Consents[0].Roles == nil || len(a.Consents[0].Roles) != 0 || len(a.RedirectURIs) != 2 ||
		a.ServicePrincipalLock == nil || !a.ServicePrincipalLock.AllProperties || a.ServicePrincipalLock.CredentialsWithUsageSign {
		t.Errorf("parsed %+v", a)
	}
	d := Demo()
	if _, ok := d.Tenant("tailspin"); !ok || len(d.Apps[0].RedirectURIs) == 0 || d.Apps[0].ServicePrincipalLock == nil {
		t.Errorf("demo lacks tailspin, redirect URIs or the lock: %+v", d.Apps[0])
	}
}
