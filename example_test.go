package kvassert_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"
	"go.opentelemetry.io/otel/metric"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/internal/rootaccess"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
	"github.com/kvassert/kvassert/telemetry"
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

	// Who reaches the vault (needs certificates/get and keys/sign): here the
	// emulator's managed identity.
	vaultCred, err := azidentity.NewDefaultAzureCredential(&azidentity.DefaultAzureCredentialOptions{ClientOptions: clientOptions})
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
	for _, tenant := range []string{"contoso.onmicrosoft.com", "fabrikam.onmicrosoft.com"} {
		tok, err := cred.GetToken(context.Background(), policy.TokenRequestOptions{
			TenantID: tenant, Scopes: []string{"https://graph.microsoft.com/.default"}})
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(tenant, tok.Token != "")
	}
	// Output:
	// contoso.onmicrosoft.com true
	// fabrikam.onmicrosoft.com true
}

// With MSAL Go directly: MSAL passes each tenant's token endpoint to the
// callback, which becomes the assertion's audience.
func ExampleNewMSALCredential() {
	emu, err := kvasserttest.New(scenario.Demo(), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer emu.Close()
	vaultCred, _ := emu.ClientSecretCredential(workloadID)
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
		confidential.WithTenantID("northwind.onmicrosoft.com"))
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
	vaultCred, _ := emu.ClientSecretCredential(workloadID)

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
		ClientOptions: emu.ClientOptions(), ID: azidentity.ClientID("7e9a1c3e-5b7d-4f9a-b1c3-d5e7f9a1b338")})
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
		TenantID: "fabrikam.onmicrosoft.com", Scopes: []string{"https://graph.microsoft.com/.default"}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tok.Token != "", emu.Count(kvasserttest.OpKeySign))
	// Output: true 0
}

// workloadID is the demo scenario's workload identity (scenario.Demo().Apps[1]),
// which may use the demo vault; its secret is the emulator's.
const workloadID = "3c5e7a9b-2d4f-4a6c-8e0a-1b3d5f7a9c27"

// In Azure, with a user-assigned managed identity that the app registration
// trusts as a federated credential: no certificate, no Key Vault.
func ExampleNewManagedIdentitySource_inAzure() {
	src, err := kvassert.NewManagedIdentitySource(&kvassert.ManagedIdentityOptions{
		ClientID: "7e9a1c3e-5b7d-4f9a-b1c3-d5e7f9a1b338", // the managed identity's client ID
	})
	if err != nil {
		log.Fatal(err)
	}
	cred, err := kvassert.NewCredential("contoso-saas.onmicrosoft.com", "6d2f4a8b-1c3e-4f5a-9b7d-2e4f6a8c0b16", src,
		&kvassert.CredentialOptions{AdditionallyAllowedTenants: []string{"*"}})
	if err != nil {
		log.Fatal(err)
	}
	_ = cred
}

// The credential is an azcore.TokenCredential: give it to any Azure SDK
// client. Key Vault's challenge names the vault's tenant, so one client per
// customer vault is all it takes. SDKs that never name a tenant (the
// Microsoft Graph SDK) get a view pinned to one tenant, sharing the cache.
func ExampleForTenant() {
	var cred *kvassert.Credential // NewCredential(..., &kvassert.CredentialOptions{AdditionallyAllowedTenants: []string{"*"}})

	keys, err := azkeys.NewClient("https://contoso-byok.vault.azure.net/", cred, nil) // a customer's vault
	if err != nil {
		log.Fatal(err)
	}
	_ = keys

	contoso, err := kvassert.ForTenant(cred, "contoso.onmicrosoft.com")
	if err != nil {
		log.Fatal(err)
	}
	// e.g. msgraphsdk.NewGraphServiceClientWithCredentials(contoso, []string{"https://graph.microsoft.com/.default"})
	_ = contoso
}

// Input refused before any network call is a *kvassert.InputError from every
// package: Input names the parameter, Reason says why (a value is quoted
// only truncated, never a URL's query or user info). Read errors by type,
// never by their wording.
func ExampleInputError() {
	vaultCred, err := azidentity.NewDefaultAzureCredential(nil)
	if err != nil {
		log.Fatal(err)
	}
	_, err = kvassert.NewKeyVaultCertificateSource("http://contoso-saas.vault.azure.net/", "saas-app-auth", vaultCred, nil)
	var ie *kvassert.InputError
	if errors.As(err, &ie) {
		fmt.Println(ie.Reason)
	}
	// Output: vault URL "http://contoso-saas.vault.azure.net/" uses http; Key Vault is reached over https only
}

// Telemetry is given once, to the credential: its sources report through
// the same providers. The zero value uses the global OpenTelemetry
// providers, so an application that set them up needs no option at all.
func ExampleCredentialOptions_telemetry() {
	var (
		src kvassert.Source      // e.g. NewKeyVaultCertificateSource(..., nil)
		mp  metric.MeterProvider // e.g. the OpenTelemetry SDK's, with an OTLP or Prometheus exporter
	)
	cred, err := kvassert.NewCredential("contoso-saas.onmicrosoft.com", "6d2f4a8b-1c3e-4f5a-9b7d-2e4f6a8c0b16", src, &kvassert.CredentialOptions{
		AdditionallyAllowedTenants: []string{"*"},
		Telemetry:                  telemetry.Options{MeterProvider: mp},
	})
	if err != nil {
		log.Fatal(err)
	}
	_ = cred
}
