// Package kvasserttest runs emulators of Microsoft Entra ID (token service,
// managed identity endpoints), Azure Key Vault / Managed HSM and the part of
// Microsoft Graph that rolls an app's keys, over HTTPS on a loopback address,
// like net/http/httptest serves a handler. The real Azure SDK for Go, MSAL Go
// and kvassert run against it unchanged: ClientOptions is the one value that
// points them at the emulator.
//
//	emu, err := kvasserttest.New(nil, nil) // the demo scenario (scenario.Demo)
//	if err != nil { ... }
//	defer emu.Close()                      // in tests: emu := kvasserttest.NewTB(t, nil, nil)
//	co := emu.ClientOptions()
//	vaultCred, err := azidentity.NewDefaultAzureCredential(&azidentity.DefaultAzureCredentialOptions{ClientOptions: co})
//
// The world it serves (tenants, apps, managed identities, vaults with their
// keys, certificates and access rules) is a scenario.Scenario, built in Go or
// loaded from JSON. Tests inject faults and count requests per operation
// (InjectFault, Count), move the emulator's clock (SetClock), change access
// (Grant, Revoke, SetConsent) and app credentials (RegisterCertificate,
// RevokeCertificate, AppKeyCredentials).
//
// Key Vault certificate lifetime actions run on the emulator's clock: a
// policy's AutoRenew (lifetime_percentage or days_before_expiry) creates a
// new version, with a new key unless reuse_key, when a request reaches the
// vault after the clock (SetClock) has passed the trigger of the latest
// version; EmailContacts is kept in the policy and does nothing. Scenario
// certificates get the service's default policy: AutoRenew at 80 % of their
// lifetime. Certificates are issued, and their validity counted, on the
// emulator's clock, so a simulated year renews a 12-month certificate once
// (and a 6-month one twice).
//
// The package must not import the kvassert library it tests: it keeps its
// own copies of the checks it needs.
package kvasserttest
