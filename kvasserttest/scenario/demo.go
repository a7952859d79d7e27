package scenario

// Well-known identifiers of the demo scenario.
const (
	DemoHomeTenant      = "8f3c2a51-4b7e-4d7c-9a53-0c6d1e2f3a41" // where the SaaS app lives
	DemoContosoTenant   = "2b6e9d10-7c4a-4f0e-8d21-5a3b4c6d7e82"
	DemoFabrikamTenant  = "c41d8e92-3f5b-4a6c-b7d8-9e0f1a2b3c93"
	DemoNorthwindTenant = "5e7a0b23-9c1d-4e2f-a3b4-c5d6e7f8a9b4"
	DemoWingtipTenant   = "9a1b2c3d-4e5f-4a6b-8c7d-0e1f2a3b4c55" // never consented

	DemoAppClientID      = "6d2f4a8b-1c3e-4f5a-9b7d-2e4f6a8c0b16" // the multi-tenant SaaS app
	DemoAppObjectID      = "b2d4f6a8-0c1e-4a3b-8d5f-7a9c1e3b5d70" // its application object (Graph addresses it by this ID)
	DemoWorkloadClientID = "3c5e7a9b-2d4f-4a6c-8e0a-1b3d5f7a9c27" // the app's workload identity (reaches the vault)
	DemoWorkloadSecret   = "demo-workload-secret-not-a-real-credential"
	DemoIdentityClientID = "7e9a1c3e-5b7d-4f9a-b1c3-d5e7f9a1b338" // user-assigned managed identity
	DemoIdentityObjectID = "1f3a5c7e-9b1d-4e3f-a5b7-c9d1e3f5a749"

	DemoVault       = "kvassert-demo"
	DemoCertificate = "saas-app-auth"
)

// Demo returns the scenario that `kvassert demo` and `kvassert emulate` use
// when given no file: a multi-tenant app in a home tenant, consented in three
// customer tenants (and not in a fourth), whose credential is a
// non-exportable certificate in a vault of the home tenant. A workload app
// (with a client secret) and a managed identity may sign with the vault key
// but cannot read the private key; the managed identity is also a federated
// credential of the app.
func Demo() *Scenario {
	return &Scenario{
		Tenants: []Tenant{
			{ID: DemoHomeTenant, Name: "kvassert-saas"},
			{ID: DemoContosoTenant, Name: "contoso"},
			{ID: DemoFabrikamTenant, Name: "fabrikam"},
			{ID: DemoNorthwindTenant, Name: "northwind"},
			{ID: DemoWingtipTenant, Name: "wingtip"},
		},
		Apps: []App{
			{
				ClientID:         DemoAppClientID,
				ObjectID:         DemoAppObjectID,
				DisplayName:      "kvassert demo SaaS",
				HomeTenant:       DemoHomeTenant,
				MultiTenant:      true,
				ConsentedTenants: []string{DemoContosoTenant, DemoFabrikamTenant, DemoNorthwindTenant},
				Certificates:     []CertificateRef{{Vault: DemoVault, Name: DemoCertificate}},
				FederatedCredentials: []FederatedCredential{{
					Issuer:    "https://login.microsoftonline.com/" + DemoHomeTenant + "/v2.0",
					Subject:   DemoIdentityObjectID,
					Audiences: []string{"api://AzureADTokenExchange"},
				}},
				Roles: []string{"Sites.Read.All"},
			},
			{
				ClientID:    DemoWorkloadClientID,
				DisplayName: "kvassert demo workload",
				HomeTenant:  DemoHomeTenant,
				Secrets:     []string{DemoWorkloadSecret},
			},
		},
		ManagedIdentities: []ManagedIdentity{
			{ClientID: DemoIdentityClientID, ObjectID: DemoIdentityObjectID, Tenant: DemoHomeTenant, Name: "kvassert-demo-identity"},
		},
		Vaults: []Vault{{
			Name:         DemoVault,
			Tenant:       DemoHomeTenant,
			Certificates: []VaultCertificate{{Name: DemoCertificate, Subject: "CN=kvassert demo SaaS", KeySize: 2048, ValidityMonths: 12}},
			Keys:         []VaultKey{{Name: "signing", Kty: "RSA", Size: 2048}},
			Access: []Access{
				{Principal: DemoWorkloadClientID, Permissions: []string{"keys/sign", "keys/get", "certificates/*"}},
				{Principal: DemoIdentityClientID, Permissions: []string{"keys/sign", "certificates/get"}},
			},
		}},
	}
}
