// Package tenants onboards and watches the customer tenants of a
// multi-tenant app whose tokens come from a kvassert.Credential.
//
//   - ConsentURL builds the Microsoft identity platform's v2 admin-consent
//     link for the cloud in use.
//   - Handler serves the app's redirect URI: it mints signed, expiring,
//     single-use states and consent links (Handler.ConsentURL), checks the
//     state Entra sends back, calls the SaaS's callback with the consenting
//     tenant, and proves the onboarding by getting a token there (waiting out
//     Entra's replication) and reporting the roles the tenant granted.
//   - Check and CheckAll report, per tenant, whether the app gets tokens
//     there, which app roles (application permissions) each resource granted
//     against the ones the SaaS requires, the classified refusal otherwise, and
//     the consent link to send the customer. They use the credential's token
//     cache: a tenant with a cached token costs no Key Vault signature.
//   - AuditApp checks the home app registration's hygiene: the app instance
//     property lock on its credentials (Microsoft Graph
//     servicePrincipalLockConfiguration), and which of the SaaS's known
//     tenants refuse the app.
//
// Nothing here reads or keeps a token beyond its roles claim: reports hold
// no token, and errors and pages never quote a state, a token or the
// callback's error text.
package tenants
