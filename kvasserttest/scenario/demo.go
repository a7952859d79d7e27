package scenario

import "github.com/kvassert/kvassert/internal/emuhook"

// Identifiers of the demo scenario a test usually names. The others (two
// more consented customer tenants, fabrikam and northwind; wingtip, never
// consented; tailspin, a customer to onboard through the admin-consent page;
// the workload app with a client secret; the managed identity) are in
// Demo()'s fields.
const (
	DemoHomeTenant    = "8f3c2a51-4b7e-4d7c-9a53-0c6d1e2f3a41" // where the SaaS app lives
	DemoContosoTenant = "2b6e9d10-7c4a-4f0e-8d21-5a3b4c6d7e82" // a customer tenant that consented

	DemoAppClientID = "6d2f4a8b-1c3e-4f5a-9b7d-2e4f6a8c0b16" // the multi-tenant SaaS app
	DemoAppObjectID = "b2d4f6a8-0c1e-4a3b-8d5f-7a9c1e3b5d70" // its application object (Graph addresses it by this ID)

	DemoVault       = "kvassert-demo" // https://kvassert-demo.vault.azure.net/
	DemoCertificate = "saas-app-auth" // the app's non-exportable certificate in DemoVault
)

// The rest of the demo's identifiers, for Demo (kvassert's own tests read
// them from internal/emuhook).
const (
	demoFabrikamTenant   = emuhook.DemoFabrikamTenant
	demoNorthwindTenant  = emuhook.DemoNorthwindTenant
	demoWingtipTenant    = emuhook.DemoWingtipTenant
	demoTailspinTenant   = emuhook.DemoTailspinTenant
	demoWorkloadClientID = emuhook.DemoWorkloadClientID
	demoWorkloadSecret   = emuhook.DemoWorkloadSecret
	demoIdentityClientID = emuhook.DemoIdentityClientID
	demoIdentityObjectID = emuhook.DemoIdentityObjectID
)

// Demo returns the scenario that kvasserttest.New(nil, nil), `kvassert demo`
// and `kvassert emulate` use when given no scenario: a multi-tenant app
// (Apps[0]) in a home tenant, consented in three customer tenants
// (Tenants[1:4]) and not in a fourth (Tenants[4], wingtip) nor a fifth
// (Tenants[5], tailspin, the customer the demo onboards through the emulated
// admin-consent page and its loopback redirect URIs), whose credential is a
// non-exportable certificate in a vault of the home tenant. The app's roles
// are the Microsoft Graph application permissions Sites.Read.All and
// Organization.Read.All, granted in the home tenant and the three consented
// tenants; its app instance property lock is on. A workload app
// (Apps[1], with a client secret) and a managed identity
// (ManagedIdentities[0], the identity the emulated IMDS answers as) may sign
// with the vault key but cannot read the private key; the managed identity is
// also a federated credential of the app.
func Demo() *Scenario {
	return &Scenario{
		Tenants: []Tenant{
			{ID: DemoHomeTenant, Name: "kvassert-saas"},
			{ID: DemoContosoTenant, Name: "contoso"},
			{ID: demoFabrikamTenant, Name: "fabrikam"},
			{ID: demoNorthwindTenant, Name: "northwind"},
			{ID: demoWingtipTenant, Name: "wingtip"},
			{ID: demoTailspinTenant, Name: "tailspin"},
		},
		Apps: []App{
			{
				ClientID:         DemoAppClientID,
				ObjectID:         DemoAppObjectID,
				DisplayName:      "kvassert demo SaaS",
				HomeTenant:       DemoHomeTenant,
				MultiTenant:      true,
				ConsentedTenants: []string{DemoContosoTenant, demoFabrikamTenant, demoNorthwindTenant},
				Certificates:     []CertificateRef{{Vault: DemoVault, Name: DemoCertificate}},
				FederatedCredentials: []FederatedCredential{{
					Issuer:    "https://login.microsoftonline.com/" + DemoHomeTenant + "/v2.0",
					Subject:   demoIdentityObjectID,
					Audiences: []string{"api://AzureADTokenExchange"},
				}},
				Roles:        []string{"Sites.Read.All", "Organization.Read.All"},
				RedirectURIs: []string{emuhook.DemoRedirectURI, emuhook.DemoRedirectURIIP},
				ServicePrincipalLock: &ServicePrincipalLock{
					IsEnabled: true, AllProperties: true, CredentialsWithUsageVerify: true, CredentialsWithUsageSign: true,
					IdentifierUris: true, TokenEncryptionKeyID: true,
				},
			},
			{
				ClientID:    demoWorkloadClientID,
				DisplayName: "kvassert demo workload",
				HomeTenant:  DemoHomeTenant,
				Secrets:     []string{demoWorkloadSecret},
			},
		},
		ManagedIdentities: []ManagedIdentity{
			{ClientID: demoIdentityClientID, ObjectID: demoIdentityObjectID, Tenant: DemoHomeTenant, Name: "kvassert-demo-identity"},
		},
		Vaults: []Vault{{
			Name:         DemoVault,
			Tenant:       DemoHomeTenant,
			Certificates: []VaultCertificate{{Name: DemoCertificate, Subject: "CN=kvassert demo SaaS", KeySize: 2048, ValidityMonths: 12}},
			Keys:         []VaultKey{{Name: "signing", Kty: "RSA", Size: 2048}},
			Access: []Access{
				{Principal: demoWorkloadClientID, Permissions: []string{"keys/sign", "keys/get", "certificates/*"}},
				{Principal: demoIdentityClientID, Permissions: []string{"keys/sign", "certificates/get"}},
			},
		}},
	}
}
