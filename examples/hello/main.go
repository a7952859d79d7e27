// Command hello is kvassert's first program: a multi-tenant app, whose
// certificate key never leaves Key Vault, asks Microsoft Graph which
// organization each of two customer tenants is.
//
// As written it runs offline against kvassert's emulators of Entra ID, Key
// Vault and Graph. To run it against Azure, delete the emulator lines and use
// your vault, certificate, tenants and app.
package main

import (
	"context"
	"fmt"
	"log"
	"net/http"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/kvasserttest"
)

func main() {
	ctx := context.Background()
	var azure policy.ClientOptions // Azure: the zero value

	// The emulators. To run against Azure, delete from here...
	emulators, err := kvasserttest.New(nil, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer emulators.Close()
	azure = emulators.ClientOptions() // every request goes to the emulators
	// ...to here.

	// The service's own identity reaches the vault: managed identity,
	// workload identity, az login... (it needs certificates/get, keys/sign).
	vaultCred, err := azidentity.NewDefaultAzureCredential(&azidentity.DefaultAzureCredentialOptions{ClientOptions: azure})
	if err != nil {
		log.Fatal(err)
	}
	// The app's certificate: kvassert signs its client assertions in the vault.
	src, err := kvassert.NewKeyVaultCertificateSource("https://kvassert-demo.vault.azure.net/", "saas-app-auth", vaultCred, nil)
	if err != nil {
		log.Fatal(err)
	}
	// One credential for every tenant that consented to the app
	// (an azcore.TokenCredential: any Azure SDK client takes it).
	cred, err := kvassert.NewCredential("kvassert-saas.onmicrosoft.com", "6d2f4a8b-1c3e-4f5a-9b7d-2e4f6a8c0b16", src, &kvassert.CredentialOptions{
		ClientOptions:              azure,
		AdditionallyAllowedTenants: []string{"*"},
	})
	if err != nil {
		log.Fatal(err)
	}

	for _, tenant := range []string{"contoso.onmicrosoft.com", "fabrikam.onmicrosoft.com"} {
		// A Microsoft Graph call in the customer's tenant, through an azcore
		// pipeline (retries, your transport) that gets its tokens from cred.
		customer, err := kvassert.ForTenant(cred, tenant)
		if err != nil {
			log.Fatal(err)
		}
		bearer := runtime.NewBearerTokenPolicy(customer, []string{"https://graph.microsoft.com/.default"}, nil)
		graph := runtime.NewPipeline("hello", "v1.0.0", runtime.PipelineOptions{PerRetry: []policy.Policy{bearer}}, &azure)
		req, err := runtime.NewRequest(ctx, http.MethodGet, "https://graph.microsoft.com/v1.0/organization")
		if err != nil {
			log.Fatal(err)
		}
		resp, err := graph.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		if !runtime.HasStatusCode(resp, http.StatusOK) {
			log.Fatalf("GET /organization in %s: HTTP %d", tenant, resp.StatusCode)
		}
		var org struct {
			Value []struct{ ID, DisplayName string }
		}
		if err := runtime.UnmarshalAsJSON(resp, &org); err != nil || len(org.Value) != 1 {
			log.Fatalf("GET /organization in %s: unexpected answer (%v)", tenant, err)
		}
		fmt.Printf("%s is %q (tenant ID %s)\n", tenant, org.Value[0].DisplayName, org.Value[0].ID)
	}
}
