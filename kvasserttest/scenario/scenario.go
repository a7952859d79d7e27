// Package scenario defines the world the kvassert emulators serve: Entra ID
// tenants, app registrations, managed identities and Key Vault / Managed HSM
// vaults with their keys, certificates and access rules.
//
// A scenario is built in Go or loaded from JSON (see Parse and Load). The JSON
// field names are the lower-camel-case names of the Go fields; unknown fields
// are rejected so that a typo in a test fixture fails loudly.
package scenario

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"github.com/kvassert/kvassert/internal/inputerr"
	"github.com/kvassert/kvassert/kvasserttest/internal/names"
	"os"
	"regexp"
	"slices"
	"strings"
	"unicode"
)

// Scenario is the complete state an emulator starts from.
type Scenario struct {
	// Tenants are the Entra ID directories. Every tenant an app, identity or
	// vault names must be listed here.
	Tenants []Tenant `json:"tenants"`
	// Apps are application registrations (and their service principals).
	Apps []App `json:"apps"`
	// ManagedIdentities can get tokens from the emulated managed identity
	// endpoint and can be granted vault permissions.
	ManagedIdentities []ManagedIdentity `json:"managedIdentities,omitempty"`
	// Vaults are Key Vaults or Managed HSMs. The first one is the default
	// vault, served at the emulator's bare loopback address.
	Vaults []Vault `json:"vaults,omitempty"`
}

// Tenant is an Entra ID directory.
type Tenant struct {
	// ID is the tenant's GUID.
	ID string `json:"id"`
	// Name is a short label such as "contoso"; the tenant is also reachable
	// as "{name}.onmicrosoft.com" in token endpoint URLs.
	Name string `json:"name,omitempty"`
}

// App is an application registration in its home tenant.
type App struct {
	// ClientID is the application (client) ID, a GUID.
	ClientID string `json:"clientId"`
	// ObjectID is the object ID of the application object in its home tenant
	// (a GUID, not the client ID): Microsoft Graph addresses the app by it
	// (/v1.0/applications/{objectId}) and the addKey/removeKey proof names it
	// as its issuer. When empty, a stable one is derived from the client ID;
	// read it with AppObjectID.
	ObjectID string `json:"objectId,omitempty"`
	// DisplayName is informational.
	DisplayName string `json:"displayName,omitempty"`
	// HomeTenant is the tenant the app is registered in. The app always has a
	// service principal there.
	HomeTenant string `json:"homeTenant"`
	// MultiTenant allows the app to sign in to other tenants where it has
	// been consented (ConsentedTenants, Consents).
	MultiTenant bool `json:"multiTenant,omitempty"`
	// ConsentedTenants are the other tenants with a service principal of the
	// app (admin consent given) that granted all of the app's Roles.
	ConsentedTenants []string `json:"consentedTenants,omitempty"`
	// Consents are tenants with a service principal of the app that granted
	// the roles they list (an empty list: consented, no role granted; the
	// app's tokens there carry no "roles" claim). A tenant is listed here or
	// in ConsentedTenants, not both; listing the home tenant sets the roles
	// granted there.
	Consents []Consent `json:"consents,omitempty"`
	// RedirectURIs are the app's web platform redirect URIs, where the
	// emulated admin-consent page sends the administrator back. As in Entra,
	// an http://localhost/... or http://127.0.0.1/... URI matches a request
	// with any port; any other URI must be https and match exactly.
	RedirectURIs []string `json:"redirectUris,omitempty"`
	// ServicePrincipalLock is the app's app instance property lock
	// (Microsoft Graph servicePrincipalLockConfiguration); nil: not set
	// (Graph answers null).
	ServicePrincipalLock *ServicePrincipalLock `json:"servicePrincipalLockConfiguration,omitempty"`
	// Secrets are client secrets accepted for client_secret authentication.
	Secrets []string `json:"secrets,omitempty"`
	// Certificates are the app's certificate credentials (keyCredentials).
	Certificates []CertificateRef `json:"certificates,omitempty"`
	// FederatedCredentials are federated identity credentials (FIC).
	FederatedCredentials []FederatedCredential `json:"federatedCredentials,omitempty"`
	// Roles are the app's application permissions (app roles) on
	// RolesResource, granted in its home tenant and in every tenant of
	// ConsentedTenants; they appear in the "roles" claim of its access
	// tokens for that resource only (a token for another resource has no
	// "roles" claim, as in Entra).
	Roles []string `json:"roles,omitempty"`
	// RolesResource is the resource whose application permissions Roles
	// are: an application ID URI such as "https://graph.microsoft.com" (the
	// default, Microsoft Graph, also matched by its other cloud hosts and its
	// app ID 00000003-0000-0000-c000-000000000000).
	RolesResource string `json:"rolesResource,omitempty"`
}

// Consent is an admin consent of an app in a tenant: the app has a service
// principal there with the application permissions Roles (on the app's
// RolesResource) granted.
type Consent struct {
	// Tenant is the tenant's ID.
	Tenant string `json:"tenant"`
	// Roles are the granted application permissions; empty: none.
	Roles []string `json:"roles"`
	// Disabled: the tenant's administrator disabled the app's service
	// principal (its token requests there answer AADSTS7000112).
	Disabled bool `json:"disabled,omitempty"`
}

// ServicePrincipalLock is Microsoft Graph's servicePrincipalLockConfiguration
// of an application: which properties of its service principals in other
// tenants are locked against change by those tenants' administrators.
type ServicePrincipalLock struct {
	IsEnabled                  bool `json:"isEnabled"`
	AllProperties              bool `json:"allProperties"`
	CredentialsWithUsageVerify bool `json:"credentialsWithUsageVerify"`
	CredentialsWithUsageSign   bool `json:"credentialsWithUsageSign"`
	IdentifierUris             bool `json:"identifierUris"`
	TokenEncryptionKeyID       bool `json:"tokenEncryptionKeyId"`
}

// CertificateRef registers a certificate credential on an app: either the
// current version of a vault certificate (Vault + Name) or a PEM certificate.
type CertificateRef struct {
	// Vault and Name name a certificate of a vault in this scenario.
	Vault string `json:"vault,omitempty"`
	Name  string `json:"name,omitempty"`
	// PEM is a PEM-encoded X.509 certificate.
	PEM string `json:"pem,omitempty"`
}

// FederatedCredential is a federated identity credential on an app.
type FederatedCredential struct {
	// Issuer is the token issuer URL, e.g. "https://login.microsoftonline.com/{tenant}/v2.0".
	Issuer string `json:"issuer"`
	// Subject is the subject claim expected, e.g. a managed identity's object ID.
	Subject string `json:"subject"`
	// Audiences accepted, e.g. "api://AzureADTokenExchange".
	Audiences []string `json:"audiences"`
}

// ManagedIdentity is a user-assigned managed identity.
type ManagedIdentity struct {
	// ClientID is the identity's client ID, a GUID.
	ClientID string `json:"clientId"`
	// ObjectID is the identity's principal (object) ID, a GUID.
	ObjectID string `json:"objectId"`
	// Tenant is the identity's tenant.
	Tenant string `json:"tenant"`
	// Name is informational.
	Name string `json:"name,omitempty"`
}

// Vault is a Key Vault (name.vault.azure.net) or a Managed HSM
// (name.managedhsm.azure.net).
type Vault struct {
	// Name is the vault's DNS label (3-24 characters, letters, digits, '-').
	Name string `json:"name"`
	// Tenant is the tenant whose tokens the vault accepts.
	Tenant string `json:"tenant"`
	// ManagedHSM makes this a Managed HSM (resource https://managedhsm.azure.net).
	ManagedHSM bool `json:"managedHsm,omitempty"`
	// Certificates are created (self-signed) when the emulator starts.
	Certificates []VaultCertificate `json:"certificates,omitempty"`
	// Keys are created when the emulator starts.
	Keys []VaultKey `json:"keys,omitempty"`
	// Access grants data-plane permissions to principals.
	Access []Access `json:"access,omitempty"`
}

// VaultCertificate is a self-signed certificate created at start.
type VaultCertificate struct {
	Name string `json:"name"`
	// Subject is the X.500 subject, e.g. "CN=app". Defaults to "CN={name}".
	Subject string `json:"subject,omitempty"`
	// Exportable lets the backing secret return the private key.
	Exportable bool `json:"exportable,omitempty"`
	// KeyType is "RSA" (default) or "EC".
	KeyType string `json:"keyType,omitempty"`
	// KeySize is the RSA modulus size: 2048 (default), 3072 or 4096.
	KeySize int `json:"keySize,omitempty"`
	// Curve is the EC curve: "P-256" (default for EC), "P-384" or "P-521".
	Curve string `json:"curve,omitempty"`
	// ValidityMonths defaults to 12.
	ValidityMonths int `json:"validityMonths,omitempty"`
}

// VaultKey is a key created at start.
type VaultKey struct {
	Name string `json:"name"`
	// Kty is "RSA" (default), "RSA-HSM", "EC" or "EC-HSM".
	Kty string `json:"kty,omitempty"`
	// Size is the RSA modulus size: 2048 (default), 3072 or 4096.
	Size int `json:"size,omitempty"`
	// Curve is the EC curve: "P-256" (default for EC), "P-384" or "P-521".
	Curve string `json:"curve,omitempty"`
}

// Access grants permissions on a vault to a principal.
type Access struct {
	// Principal is an app's client ID or a managed identity's client or
	// object ID.
	Principal string `json:"principal"`
	// Permissions: "keys/get", "keys/list", "keys/create", "keys/import",
	// "keys/update", "keys/delete", "keys/sign", "keys/verify",
	// "keys/wrapKey", "keys/unwrapKey", "certificates/get",
	// "certificates/list", "certificates/create", "certificates/import",
	// "certificates/update", "certificates/delete", "secrets/get",
	// "secrets/list", "secrets/set", "secrets/delete"; "keys/*",
	// "certificates/*", "secrets/*" and "*" grant a whole family.
	Permissions []string `json:"permissions"`
}

// Parse decodes a scenario from JSON and validates it. Unknown fields are
// errors. A refused scenario is an *inputerr.Error (kvassert.InputError).
func Parse(data []byte) (*Scenario, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var s Scenario
	if err := dec.Decode(&s); err != nil {
		return nil, &inputerr.Error{Package: "scenario", Input: "scenario JSON", Reason: "invalid JSON: " + err.Error(), Err: err}
	}
	if dec.More() {
		return nil, inputerr.New("scenario", "scenario JSON", "invalid JSON: more than one value")
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return &s, nil
}

// Load reads and parses a scenario JSON file.
func Load(path string) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("scenario: %w", err)
	}
	return Parse(data)
}

var tenantLabel = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// Validate checks references and formats and returns every problem found,
// one per line, each naming the offending field, as an *inputerr.Error
// (kvassert.InputError).
func (s *Scenario) Validate() error {
	c := &checker{tenants: map[string]bool{}, vaults: map[string]*Vault{}, ids: map[string]bool{}, objectIDs: map[string]bool{}}
	c.checkTenants(s.Tenants)
	for i := range s.Vaults {
		c.checkVault(i, &s.Vaults[i])
	}
	for i := range s.Apps {
		c.checkApp(i, &s.Apps[i])
	}
	for i, m := range s.ManagedIdentities {
		c.checkIdentity(i, m)
	}
	if len(c.problems) == 0 {
		return nil
	}
	return &inputerr.Error{Package: "scenario", Input: "scenario", Reason: strings.Join(c.problems, "\nscenario: ")}
}

// checker collects the problems of one Validate call and what the sections
// checked so far declare (tenants, vaults, principal IDs).
type checker struct {
	problems  []string
	tenants   map[string]bool
	vaults    map[string]*Vault
	ids       map[string]bool
	objectIDs map[string]bool
}

// bad records a problem. Values are echoed, but never at length.
func (c *checker) bad(format string, args ...any) {
	for i, a := range args {
		if str, ok := a.(string); ok && len(str) > 64 {
			args[i] = str[:64] + "…"
		}
	}
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
}

func (c *checker) knownTenant(field, id string) {
	if !c.tenants[strings.ToLower(id)] {
		c.bad("%s %q is not a tenant of this scenario", field, id)
	}
}

func (c *checker) checkTenants(tenants []Tenant) {
	for i, t := range tenants {
		switch {
		case !names.IsGUID(t.ID):
			c.bad("tenants[%d].id %q is not a GUID", i, t.ID)
		case c.tenants[strings.ToLower(t.ID)]:
			c.bad("tenants[%d].id %q is listed twice", i, t.ID)
		}
		if t.Name != "" && !tenantLabel.MatchString(t.Name) {
			c.bad("tenants[%d].name %q must be lower-case letters, digits and '-'", i, t.Name)
		}
		c.tenants[strings.ToLower(t.ID)] = true
	}
	if len(tenants) == 0 {
		c.bad("no tenants: list at least one in \"tenants\"")
	}
}

func (c *checker) checkVault(i int, v *Vault) {
	if !names.ValidVaultName(v.Name) {
		c.bad("vaults[%d].name %q is not a valid vault name (3-24 letters, digits, '-', starting with a letter, no \"--\")", i, v.Name)
	}
	if c.vaults[strings.ToLower(v.Name)] != nil {
		c.bad("vaults[%d].name %q is listed twice", i, v.Name)
	}
	c.vaults[strings.ToLower(v.Name)] = v
	c.knownTenant(fmt.Sprintf("vaults[%d].tenant", i), v.Tenant)
	if v.ManagedHSM && len(v.Certificates) > 0 {
		c.bad("vaults[%d] is a Managed HSM, which has keys only: move its certificates to a Key Vault", i)
	}
	objects := map[string]bool{}
	for j, cert := range v.Certificates {
		f := fmt.Sprintf("vaults[%d].certificates[%d]", i, j)
		c.checkObjectName(objects, f, cert.Name, "")
		c.checkKeyShape(f, cert.KeyType, cert.KeySize, cert.Curve)
		if cert.ValidityMonths < 0 || cert.ValidityMonths > 1200 {
			c.bad("%s.validityMonths %d is out of range 1-1200", f, cert.ValidityMonths)
		}
	}
	for j, k := range v.Keys {
		f := fmt.Sprintf("vaults[%d].keys[%d]", i, j)
		c.checkObjectName(objects, f, k.Name, " (certificates own a key of the same name)")
		c.checkKeyShape(f, strings.TrimSuffix(k.Kty, "-HSM"), k.Size, k.Curve)
	}
	for j, a := range v.Access {
		c.checkAccess(fmt.Sprintf("vaults[%d].access[%d]", i, j), a)
	}
}

func (c *checker) checkObjectName(seen map[string]bool, field, name, twiceHint string) {
	if !names.ValidObjectName(name) {
		c.bad("%s.name %q is not a valid name (letters, digits, '-')", field, name)
	}
	if seen[strings.ToLower(name)] {
		c.bad("%s.name %q is used twice in the vault%s", field, name, twiceHint)
	}
	seen[strings.ToLower(name)] = true
}

func (c *checker) checkAccess(field string, a Access) {
	if a.Principal == "" {
		c.bad("%s.principal is empty", field)
	}
	for _, p := range a.Permissions {
		if p != "*" && !strings.HasSuffix(p, "/*") && !slices.Contains(names.Permissions, p) {
			c.bad("%s.permissions: unknown permission %q (known: %s)", field, p, strings.Join(names.Permissions, ", "))
		}
	}
}

// checkClientID checks a principal's client ID: a GUID, used once.
func (c *checker) checkClientID(field, id string) {
	if !names.IsGUID(id) {
		c.bad("%s.clientId %q is not a GUID", field, id)
	} else if c.ids[strings.ToLower(id)] {
		c.bad("%s.clientId %q is used twice", field, id)
	}
	c.ids[strings.ToLower(id)] = true
}

func (c *checker) checkApp(i int, a *App) {
	f := fmt.Sprintf("apps[%d]", i)
	c.checkClientID(f, a.ClientID)
	if a.ObjectID != "" {
		switch {
		case !names.IsGUID(a.ObjectID):
			c.bad("%s.objectId %q is not a GUID", f, a.ObjectID)
		case strings.EqualFold(a.ObjectID, a.ClientID):
			c.bad("%s.objectId equals its clientId: the application object ID is a different GUID (Entra admin center: App registrations > Overview > Object ID)", f)
		case c.objectIDs[strings.ToLower(a.ObjectID)]:
			c.bad("%s.objectId %q is used twice", f, a.ObjectID)
		}
		c.objectIDs[strings.ToLower(a.ObjectID)] = true
	}
	c.knownTenant(f+".homeTenant", a.HomeTenant)
	c.checkConsents(f, a)
	c.checkRoles(f+".roles", a.Roles)
	if a.RolesResource != "" && !names.ValidResource(a.RolesResource) {
		c.bad("%s.rolesResource %q is not an application ID URI (https://... or api://...) or a GUID", f, a.RolesResource)
	}
	for j, u := range a.RedirectURIs {
		if reason := names.CheckRedirectURI(u); reason != "" {
			c.bad("%s.redirectUris[%d] %q: %s", f, j, u, reason)
		}
	}
	for j, ref := range a.Certificates {
		c.checkCertificateRef(fmt.Sprintf("%s.certificates[%d]", f, j), ref)
	}
	for j, fc := range a.FederatedCredentials {
		if fc.Issuer == "" || fc.Subject == "" || len(fc.Audiences) == 0 {
			c.bad("%s.federatedCredentials[%d] needs issuer, subject and at least one audience", f, j)
		}
	}
}

// checkConsents checks consentedTenants and consents: known tenants, each
// listed once, and other tenants only for a multi-tenant app.
func (c *checker) checkConsents(f string, a *App) {
	seen := make(map[string]bool, len(a.ConsentedTenants)+len(a.Consents))
	other := false
	home := strings.ToLower(a.HomeTenant)
	note := func(field, t string) {
		c.knownTenant(field, t)
		id := strings.ToLower(t)
		if seen[id] {
			c.bad("%s %q is consented twice (consentedTenants and consents list a tenant once)", field, t)
		}
		seen[id] = true
		if id != home {
			other = true
		}
	}
	for j, t := range a.ConsentedTenants {
		note(fmt.Sprintf("%s.consentedTenants[%d]", f, j), t)
		other = true // even the home tenant: consentedTenants is for other tenants
	}
	for j, cs := range a.Consents {
		note(fmt.Sprintf("%s.consents[%d].tenant", f, j), cs.Tenant)
		c.checkRoles(fmt.Sprintf("%s.consents[%d].roles", f, j), cs.Roles)
	}
	if other && !a.MultiTenant {
		c.bad("%s has consentedTenants or consents in other tenants but multiTenant is false", f)
	}
}

// checkRoles refuses empty roles and roles with white space.
func (c *checker) checkRoles(field string, roles []string) {
	for j, r := range roles {
		if r == "" || strings.ContainsFunc(r, unicode.IsSpace) || len(r) > 120 {
			c.bad("%s[%d] %q is empty, too long or holds white space", field, j, r)
		}
	}
}

func (c *checker) checkCertificateRef(field string, ref CertificateRef) {
	switch {
	case ref.PEM != "" && (ref.Vault != "" || ref.Name != ""):
		c.bad("%s: give either pem or vault+name, not both", field)
	case ref.PEM != "":
		if err := checkCertificatePEM(ref.PEM); err != nil {
			c.bad("%s.pem: %v", field, err)
		}
	case ref.Vault == "" || ref.Name == "":
		c.bad("%s: give pem, or both vault and name", field)
	default:
		v := c.vaults[strings.ToLower(ref.Vault)]
		if v == nil {
			c.bad("%s.vault %q is not a vault of this scenario", field, ref.Vault)
		} else if !slices.ContainsFunc(v.Certificates, func(vc VaultCertificate) bool { return strings.EqualFold(vc.Name, ref.Name) }) {
			c.bad("%s.name %q is not a certificate of vault %q", field, ref.Name, ref.Vault)
		}
	}
}

func (c *checker) checkIdentity(i int, m ManagedIdentity) {
	f := fmt.Sprintf("managedIdentities[%d]", i)
	c.checkClientID(f, m.ClientID)
	if !names.IsGUID(m.ObjectID) {
		c.bad("%s.objectId %q is not a GUID", f, m.ObjectID)
	}
	c.knownTenant(f+".tenant", m.Tenant)
}

// checkCertificatePEM accepts exactly PEM CERTIFICATE blocks holding X.509
// certificates (never a private key).
func checkCertificatePEM(text string) error {
	rest := []byte(text)
	n := 0
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return fmt.Errorf("holds a %q PEM block; give only the public certificate (never a private key)", truncateString(block.Type, 40))
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return errors.New("is not a valid X.509 certificate")
		}
		n++
	}
	if n == 0 {
		return errors.New(`holds no PEM "CERTIFICATE" block`)
	}
	return nil
}

func truncateString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func (c *checker) checkKeyShape(field, kty string, size int, curve string) {
	switch kty {
	case "", "RSA":
		if size != 0 && size != 2048 && size != 3072 && size != 4096 {
			c.bad("%s: RSA key size %d is not 2048, 3072 or 4096", field, size)
		}
		if curve != "" {
			c.bad("%s: curve %q given for an RSA key", field, curve)
		}
	case "EC":
		if curve != "" && curve != "P-256" && curve != "P-384" && curve != "P-521" {
			c.bad("%s: curve %q is not P-256, P-384 or P-521", field, curve)
		}
		if size != 0 {
			c.bad("%s: key size given for an EC key", field)
		}
	default:
		c.bad("%s: key type %q is not RSA or EC", field, kty)
	}
}

// Tenant returns the tenant with the given ID or name (case-insensitive).
func (s *Scenario) Tenant(idOrName string) (Tenant, bool) {
	for _, t := range s.Tenants {
		if strings.EqualFold(t.ID, idOrName) || (t.Name != "" && (strings.EqualFold(t.Name, idOrName) || strings.EqualFold(t.Name+".onmicrosoft.com", idOrName))) {
			return t, true
		}
	}
	return Tenant{}, false
}
