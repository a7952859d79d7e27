package kvassert_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// A tenant that refuses the app (here wingtip, which never consented) is
// remembered: later calls fail fast with the same classified error, without
// signing in Key Vault, until its back-off ends. Once an administrator
// consented, ForgetTenant lets the next call through at once. A customer
// who removes the app later is reported once through TenantOffboarded.
func ExampleCredential_ForgetTenant() {
	emu, err := kvasserttest.New(scenario.Demo(), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer emu.Close()
	vaultCred, err := azidentity.NewDefaultAzureCredential(&azidentity.DefaultAzureCredentialOptions{ClientOptions: emu.ClientOptions()})
	if err != nil {
		log.Fatal(err)
	}
	src, err := kvassert.NewKeyVaultCertificateSource("https://kvassert-demo.vault.azure.net/", "saas-app-auth", vaultCred, nil)
	if err != nil {
		log.Fatal(err)
	}
	offboarded := make(chan string, 1)
	cred, err := kvassert.NewCredential(scenario.DemoHomeTenant, scenario.DemoAppClientID, src, &kvassert.CredentialOptions{
		ClientOptions:              emu.ClientOptions(),
		AdditionallyAllowedTenants: []string{"*"},
		TenantOffboarded: func(tenant string, err *kvassert.AuthError) {
			offboarded <- fmt.Sprintf("%s left (AADSTS%d)", tenant, err.Code)
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	get := func(tenant, scope string) error {
		_, err := cred.GetToken(ctx, policy.TokenRequestOptions{TenantID: tenant, Scopes: []string{scope}})
		var ae *kvassert.AuthError
		if errors.As(err, &ae) {
			fmt.Printf("AADSTS%d, remembered: %v\n", ae.Code, !ae.RefusedUntil.IsZero())
		}
		return err
	}
	wingtip := "wingtip.onmicrosoft.com"
	graph, vault := "https://graph.microsoft.com/.default", "https://vault.azure.net/.default"
	_ = get(wingtip, graph) // Entra refuses: AADSTS700016, with the consent URL in ae.Hint
	_ = get(wingtip, graph) // remembered: no sign, no request
	// An administrator of wingtip grants admin consent (the tenants
	// package's handler calls ForgetTenant itself).
	if err := emu.SetConsent(scenario.DemoAppClientID, wingtip, true); err != nil {
		log.Fatal(err)
	}
	if err := cred.ForgetTenant(ctx, wingtip); err != nil {
		log.Fatal(err)
	}
	fmt.Println("after consent:", get(wingtip, graph) == nil)
	// Later the customer removes the app: the next token request there
	// (here for another resource; else the background refresh) is refused,
	// the tenant's tokens are evicted, and it is reported once.
	if err := emu.SetConsent(scenario.DemoAppClientID, wingtip, false); err != nil {
		log.Fatal(err)
	}
	_ = get(wingtip, vault)
	fmt.Println(<-offboarded)
	_ = get(wingtip, graph) // its cached token is gone
	// Output:
	// AADSTS700016, remembered: false
	// AADSTS700016, remembered: true
	// after consent: true
	// AADSTS700016, remembered: false
	// wingtip.onmicrosoft.com left (AADSTS700016)
	// AADSTS700016, remembered: true
}
