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
	"github.com/kvassert/kvassert/internal/certcache"
	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/keyvault"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// A multi-tenant app gets Microsoft Graph tokens in its customers' tenants,
// signed by a non-exportable Key Vault key. In production, vaultCred is e.g.
// azidentity.NewDefaultAzureCredential(nil) and no ClientOptions are needed;
// here everything runs against the kvasserttest emulators.
func ExampleNewCredential() {
	emu, err := kvasserttest.New(scenario.Demo(), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer emu.Close()
	vaultCred, _ := emu.ClientSecretCredential(emuhook.DemoWorkloadClientID)

	src, err := kvassert.NewKeyVaultCertificateSource("https://kvassert-demo.vault.azure.net/", "saas-app-auth", vaultCred,
		&kvassert.KeyVaultCertificateOptions{Options: certcache.Options{ClientOptions: emu.ClientOptions()}})
	if err != nil {
		log.Fatal(err)
	}
	cred, err := kvassert.NewCredential(scenario.DemoHomeTenant, scenario.DemoAppClientID, src, &kvassert.CredentialOptions{
		ClientOptions:              emu.ClientOptions(),
		AdditionallyAllowedTenants: []string{"*"}, // every tenant that consented to the app
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
		fmt.Println(tok.Token != "", emu.Count(kvasserttest.OpKeySign))
	}
	// Output:
	// true 1
	// true 2
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
	src, _ := kvassert.NewKeyVaultCertificateSource(emu.VaultURL(scenario.DemoVault), scenario.DemoCertificate, vaultCred,
		&kvassert.KeyVaultCertificateOptions{Options: certcache.Options{ClientOptions: emu.ClientOptions()}})

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
	opts := keyvault.SignerOptions{ClientOptions: emu.ClientOptions()}

	// What the operator looked up once (kvassert cert show / cert export).
	certs, _ := certcache.New(emu.VaultURL(scenario.DemoVault), scenario.DemoCertificate, vaultCred,
		(&certcache.Options{}).WithSigner(opts))
	c, err := certs.Certificate(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	emu.ResetCounts()

	src, err := kvassert.NewKeyVaultKeySource(c.KeyID, c.Certificate, vaultCred, &kvassert.KeyVaultKeyOptions{SignerOptions: opts})
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
