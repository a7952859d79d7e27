package kvasserttest_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"regexp"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/kvassert/kvassert/kvasserttest"
)

// A tenant's Conditional Access for workload identities blocks the demo's
// workload app in its home tenant: azidentity gets Entra's AADSTS53003
// answer, until the test clears the refusal.
func ExampleEmulator_SetTenantRefusal() {
	emu, err := kvasserttest.New(nil, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer emu.Close()
	app := emu.Scenario().Apps[1] // the demo's workload app, with a client secret
	if err := emu.SetTenantRefusal(app.ClientID, app.HomeTenant, 53003); err != nil {
		log.Fatal(err)
	}
	cred, err := emu.ClientSecretCredential(app.ClientID)
	if err != nil {
		log.Fatal(err)
	}
	scope := policy.TokenRequestOptions{Scopes: []string{"https://vault.azure.net/.default"}}
	_, err = cred.GetToken(context.Background(), scope)
	var afe *azidentity.AuthenticationFailedError
	if errors.As(err, &afe) {
		fmt.Println("refused:", regexp.MustCompile(`AADSTS\d+`).FindString(err.Error()), "HTTP", afe.RawResponse.StatusCode)
	}
	_ = emu.SetTenantRefusal(app.ClientID, app.HomeTenant, 0)
	_, err = cred.GetToken(context.Background(), scope)
	fmt.Println("after clearing:", err == nil)
	// Output:
	// refused: AADSTS53003 HTTP 400
	// after clearing: true
}
