package scenario_test

import (
	"fmt"

	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// A scenario in JSON: one tenant, a multi-tenant app whose certificate lives
// in a vault of that tenant, and a managed identity that may sign with it.
// Parse refuses what the emulators could not serve, naming every field.
func ExampleParse() {
	s, err := scenario.Parse([]byte(`{
	  "tenants": [{"id": "11111111-1111-4111-8111-111111111111", "name": "home"}],
	  "apps": [{"clientId": "22222222-2222-4222-8222-222222222222", "homeTenant": "11111111-1111-4111-8111-111111111111",
	            "certificates": [{"vault": "my-vault", "name": "app-cert"}]}],
	  "managedIdentities": [{"clientId": "33333333-3333-4333-8333-333333333333",
	                         "objectId": "44444444-4444-4444-8444-444444444444",
	                         "tenant": "11111111-1111-4111-8111-111111111111"}],
	  "vaults": [{"name": "my-vault", "tenant": "11111111-1111-4111-8111-111111111111",
	              "certificates": [{"name": "app-cert"}],
	              "access": [{"principal": "33333333-3333-4333-8333-333333333333",
	                          "permissions": ["keys/sign", "certificates/get"]}]}]
	}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(s.Apps), "app,", len(s.Vaults), "vault")

	_, err = scenario.Parse([]byte(`{"tenants": [{"id": "home"}], "vaults": [{"name": "my--vault", "tenant": "home"}]}`))
	fmt.Println(err)
	// Output:
	// 1 app, 1 vault
	// scenario: tenants[0].id "home" is not a GUID
	// scenario: vaults[0].name "my--vault" is not a valid vault name (3-24 letters, digits, '-', starting with a letter, no "--")
}
