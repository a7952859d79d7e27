package kvassert_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/internal/rootaccess"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// A multi-tenant app gets Microsoft Graph tokens in its customers' tenants,
// signed by a non-exportable Key Vault key. Here everything runs against the
// kvasserttest emulators, named by one value, clientOptions; in Azure, leave
// it zero (policy.ClientOptions{}) and use e.g.
// azidentity.NewDefaultAzureCredential or a managed identity for the vault.
func ExampleNewCredential() {
	emu, err := kvasserttest.New(scenario.Demo(), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer emu.Close()
	clientOptions := emu.ClientOptions() // in Azure: policy.ClientOptions{}

	// Who reaches the vault (needs certificates/get and keys/sign).
	vaultCred, err := azidentity.NewClientSecretCredential(scenario.DemoHomeTenant, emuhook.DemoWorkloadClientID, emuhook.DemoWorkloadSecret,
		&azidentity.ClientSecretCredentialOptions{ClientOptions: clientOptions})
	if err != nil {
		log.Fatal(err)
	}
	// The app's certificate, whose key never leaves the vault.
	src, err := kvassert.NewKeyVaultCertificateSource("https://kvassert-demo.vault.azure.net/", "saas-app-auth", vaultCred, nil)
	if err != nil {
		log.Fatal(err)
	}
	// One credential for every tenant that consented to the app; it gives
	// its clientOptions to the source too.
	cred, err := kvassert.NewCredential(scenario.DemoHomeTenant, scenario.DemoAppClientID, src, &kvassert.CredentialOptions{
		ClientOptions:              clientOptions,
		AdditionallyAllowedTenants: []string{"*"},
	})
	if err != nil {
		log.Fatal(err)
	}
	// Any Azure SDK client or the Graph SDK takes cred; here we ask directly.
	for _, tenant := range []string{scenario.DemoContosoTenant, emuhook.DemoFabrikamTenant} {
		tok, err := cred.GetToken(context.Background(), policy.TokenRequestOptions{
			TenantID: tenant, Scopes: []string{"https://graph.microsoft.com/.default"}})
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(tenant, tok.Token != "")
	}
	// Output:
	// 2b6e9d10-7c4a-4f0e-8d21-5a3b4c6d7e82 true
	// c41d8e92-3f5b-4a6c-b7d8-9e0f1a2b3c93 true
}

// With MSAL Go directly: MSAL passes each tenant's token endpoint to the
// callback, which becomes the assertion's audience.
func ExampleNewMSALCredential() {
	emu, err := kvasserttest.New(scenario.Demo(), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer emu.Close()
	vaultCred, _ := emu.ClientSecretCredential(emuhook.DemoWorkloadClientID)
	src, _ := kvassert.NewKeyVaultCertificateSource("https://kvassert-demo.vault.azure.net/", "saas-app-auth", vaultCred,
		&kvassert.KeyVaultCertificateOptions{ClientOptions: emu.ClientOptions()}) // no Credential to give them: MSAL's own

	cred, err := kvassert.NewMSALCredential(src)
	if err != nil {
		log.Fatal(err)
	}
	app, err := confidential.New("https://login.microsoftonline.com/"+scenario.DemoHomeTenant, scenario.DemoAppClientID, cred,
		confidential.WithHTTPClient(emu.Client()), confidential.WithInstanceDiscovery(false))
	if err != nil {
		log.Fatal(err)
	}
	res, err := app.AcquireTokenByCredential(context.Background(), []string{"https://graph.microsoft.com/.default"},
		confidential.WithTenantID(emuhook.DemoNorthwindTenant))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.AccessToken != "")
	// Output: true
}

// The key source needs only keys/sign: the operator pins the key version (the
// certificate's kid) and ships the public certificate with the app. No
// lookups are made; each new token costs one sign.
func ExampleNewKeyVaultKeySource() {
	emu, err := kvasserttest.New(scenario.Demo(), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer emu.Close()
	vaultCred, _ := emu.ClientSecretCredential(emuhook.DemoWorkloadClientID)

	// What the operator looked up once (kvassert cert show / cert export).
	kv, _ := kvassert.NewKeyVaultCertificateSource("https://kvassert-demo.vault.azure.net/", "saas-app-auth", vaultCred,
		&kvassert.KeyVaultCertificateOptions{ClientOptions: emu.ClientOptions()})
	c, err := rootaccess.Cache(kv).Certificate(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	emu.ResetCounts()

	src, err := kvassert.NewKeyVaultKeySource(c.KeyID, c.Certificate, vaultCred, nil) // the credential gives it its ClientOptions
	if err != nil {
		log.Fatal(err)
	}
	cred, _ := kvassert.NewCredential(scenario.DemoHomeTenant, scenario.DemoAppClientID, src, &kvassert.CredentialOptions{
		ClientOptions: emu.ClientOptions(), AdditionallyAllowedTenants: []string{"*"}})
	_, err = cred.GetToken(context.Background(), policy.TokenRequestOptions{
		TenantID: scenario.DemoContosoTenant, Scopes: []string{"https://graph.microsoft.com/.default"}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("signs:", emu.Count(kvasserttest.OpKeySign), "lookups:", emu.Count(kvasserttest.OpKeyGet)+emu.Count(kvasserttest.OpCertificateGet))
	// Output: signs: 1 lookups: 0
}

// A managed identity trusted by the app as a federated credential: no
// certificate or key at all. In Azure, ManagedIdentityOptions{ClientID: ...}
// is all it takes; here the identity comes from the emulator's endpoint.
func ExampleNewManagedIdentitySource() {
	emu, err := kvasserttest.New(scenario.Demo(), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer emu.Close()
	os.Setenv("IDENTITY_ENDPOINT", emu.ManagedIdentityEndpoint()) // what App Service sets
	os.Setenv("IDENTITY_HEADER", emu.IdentityHeader())
	defer os.Unsetenv("IDENTITY_ENDPOINT")
	defer os.Unsetenv("IDENTITY_HEADER")
	mi, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{
		ClientOptions: emu.ClientOptions(), ID: azidentity.ClientID(emuhook.DemoIdentityClientID)})
	if err != nil {
		log.Fatal(err)
	}

	// freshMI only makes MSAL skip its process-wide managed identity cache,
	// needed here because this test binary starts many emulators; pass mi
	// itself in an app.
	src, err := kvassert.NewManagedIdentitySource(&kvassert.ManagedIdentityOptions{Credential: freshMI{mi}})
	if err != nil {
		log.Fatal(err)
	}
	cred, _ := kvassert.NewCredential(scenario.DemoHomeTenant, scenario.DemoAppClientID, src, &kvassert.CredentialOptions{
		ClientOptions: emu.ClientOptions(), AdditionallyAllowedTenants: []string{"*"}})
	tok, err := cred.GetToken(context.Background(), policy.TokenRequestOptions{
		TenantID: emuhook.DemoFabrikamTenant, Scopes: []string{"https://graph.microsoft.com/.default"}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tok.Token != "", emu.Count(kvasserttest.OpKeySign))
	// Output: true 0
}
