package tenants_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
	"github.com/kvassert/kvassert/tenants"
)

// The admin-consent link for a customer tenant. Send it to an
// administrator of the tenant; Entra redirects to the redirect URI
// (registered on the app) with the state.
func ExampleConsentURL() {
	// The state is yours to check on the redirect: make it unguessable,
	// expiring and single-use (a Handler's ConsentURL does all of it).
	link, err := tenants.ConsentURL("6d2f4a8b-1c3e-4f5a-9b7d-2e4f6a8c0b16", "https://app.example.com/consent", "opaque-state",
		&tenants.ConsentURLOptions{Tenant: "contoso.onmicrosoft.com"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(link)
	// Output:
	// https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0/adminconsent?client_id=6d2f4a8b-1c3e-4f5a-9b7d-2e4f6a8c0b16&redirect_uri=https%3A%2F%2Fapp.example.com%2Fconsent&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default&state=opaque-state
}

// demoCredential is the demo app's credential against the emulators,
// allowing every tenant (a customer that consents is then served at once).
func demoCredential(emu *kvasserttest.Emulator) *kvassert.Credential {
	vaultCred, err := azidentity.NewDefaultAzureCredential(&azidentity.DefaultAzureCredentialOptions{ClientOptions: emu.ClientOptions()})
	if err != nil {
		log.Fatal(err)
	}
	src, err := kvassert.NewKeyVaultCertificateSource("https://kvassert-demo.vault.azure.net/", "saas-app-auth", vaultCred, nil)
	if err != nil {
		log.Fatal(err)
	}
	cred, err := kvassert.NewCredential(scenario.DemoHomeTenant, scenario.DemoAppClientID, src, &kvassert.CredentialOptions{
		ClientOptions: emu.ClientOptions(), AdditionallyAllowedTenants: []string{"*"}})
	if err != nil {
		log.Fatal(err)
	}
	return cred
}

// The redirect URI's handler: it makes the consent links (with a signed,
// single-use state), receives Entra's redirect, records the new customer,
// and proves the onboarding with a token in the customer's tenant.
func ExampleNewHandler() {
	emu, err := kvasserttest.New(scenario.Demo(), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer emu.Close()
	cred := demoCredential(emu) // as in the first program: a Key Vault certificate source, AdditionallyAllowedTenants "*"

	// In production: 32 random bytes from your secret store, the same on
	// every replica (whoever knows the key can forge consent redirects).
	stateKey := make([]byte, 32)
	if _, err := rand.Read(stateKey); err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux) // in production: https://your-app/consent, registered on the app
	defer srv.Close()
	h, err := tenants.NewHandler(cred, srv.URL+"/consent", stateKey, func(ctx context.Context, c tenants.Consent) error {
		fmt.Println("new customer:", c.Tenant) // store it
		return nil
	}, &tenants.HandlerOptions{
		Want:   &tenants.Want{Roles: map[string][]string{"https://graph.microsoft.com": {"Sites.Read.All"}}},
		Proved: func(ctx context.Context, r tenants.Report) { fmt.Println("proof:", r.State, r.Resources[0].Granted) },
	})
	if err != nil {
		log.Fatal(err)
	}
	mux.Handle("/consent", h)

	// The SaaS shows this link to the customer's administrator.
	link, err := h.ConsentURL("") // "organizations": the administrator's own tenant
	if err != nil {
		log.Fatal(err)
	}
	// Here the emulator stands in for the administrator of the tailspin
	// tenant clicking Accept, and for Entra's redirect.
	const tailspin = "4d6f8a0c-2e4a-4c6e-9a0c-3e5a7c9e1b66"
	if err := emu.SetConsent(scenario.DemoAppClientID, tailspin, true); err != nil {
		log.Fatal(err)
	}
	u, _ := url.Parse(link)
	resp, err := http.Get(srv.URL + "/consent?admin_consent=True&tenant=" + tailspin + "&state=" + u.Query().Get("state"))
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println("page:", resp.StatusCode)
	// Output:
	// new customer: 4d6f8a0c-2e4a-4c6e-9a0c-3e5a7c9e1b66
	// proof: ok [Organization.Read.All Sites.Read.All]
	// page: 200
}

// The health of every customer tenant: tokens and roles, or why not, and
// the link to send when a consent fixes it. Tenants with a cached token
// cost nothing.
func ExampleCheckAll() {
	emu, err := kvasserttest.New(scenario.Demo(), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer emu.Close()
	cred := demoCredential(emu) // as in the first program: a Key Vault certificate source, AdditionallyAllowedTenants "*"

	want := &tenants.Want{Roles: map[string][]string{"https://graph.microsoft.com": {"Sites.Read.All", "User.Read.All"}}}
	reports, err := tenants.CheckAll(context.Background(), cred,
		[]string{"contoso.onmicrosoft.com", "wingtip.onmicrosoft.com"}, want, nil)
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range reports {
		fmt.Println(r.Tenant, r.State, r.Code, r.ConsentURL != "")
		for _, res := range r.Resources {
			fmt.Println("  ", res.Resource, "granted", res.Granted, "missing", res.Missing)
		}
	}
	// Output:
	// contoso.onmicrosoft.com missing_roles 0 true
	//    https://graph.microsoft.com granted [Organization.Read.All Sites.Read.All] missing [User.Read.All]
	// wingtip.onmicrosoft.com app_not_found 700016 true
	//    https://graph.microsoft.com granted [] missing []
}

// One tenant.
func ExampleCheck() {
	emu, err := kvasserttest.New(scenario.Demo(), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer emu.Close()
	cred := demoCredential(emu) // as in the first program: a Key Vault certificate source, AdditionallyAllowedTenants "*"

	r, err := tenants.Check(context.Background(), cred, "fabrikam.onmicrosoft.com", nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(r.State, r.Resources[0].Granted)
	// Output: ok [Organization.Read.All Sites.Read.All]
}
