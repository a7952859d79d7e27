package entra

import (
	"crypto/sha1" //nolint:gosec // x5t is a SHA-1 thumbprint by definition
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// tenant is a directory of the scenario.
type tenant struct {
	id   string // lower-case GUID
	name string // short label, may be empty
}

// domain is the tenant's initial domain, {name}.onmicrosoft.com.
func (t *tenant) domain() string {
	if t.name == "" {
		return ""
	}
	return t.name + ".onmicrosoft.com"
}

// display is how Entra names the tenant in error messages.
func (t *tenant) display() string {
	if t.name != "" {
		return t.name
	}
	return t.id
}

// keyCredential is a certificate credential of an app.
type keyCredential struct {
	keyID       string // Graph's keyId, a GUID
	displayName string
	cert        *x509.Certificate
	sha1        [20]byte
	sha256      [32]byte
	revoked     bool
	// activeAt is when the token endpoint starts to accept the credential
	// (zero: at once); a key added through Graph's addKey propagates.
	activeAt time.Time
}

func newKeyCredential(cert *x509.Certificate) *keyCredential {
	return &keyCredential{
		keyID: newGUID(), displayName: cert.Subject.String(),
		cert: cert, sha1: sha1.Sum(cert.Raw), sha256: sha256.Sum256(cert.Raw), //nolint:gosec
	}
}

// app is an application registration with its service principals.
type app struct {
	clientID    string // lower-case GUID
	objectID    string // application object ID, lower-case GUID
	name        string
	home        string // home tenant ID (lower case)
	multiTenant bool
	sp          map[string]*servicePrincipal // by tenant ID
	refusals    map[string]int               // tenant ID -> AADSTS code the token endpoint answers with
	secrets     []string
	certs       []*keyCredential
	fics        []scenario.FederatedCredential
	roles       []string // the app's roles (application permissions on rolesResource)
	// rolesResource is the resource whose application permissions roles
	// are ("" is Microsoft Graph).
	rolesResource string
	redirectURIs  []string
	lock          *scenario.ServicePrincipalLock
}

// identity is a user-assigned managed identity.
type identity struct {
	clientID string
	objectID string
	tenant   string
	name     string
}

// resourceID is a plausible ARM ID for the identity, matched by mi_res_id.
func (m *identity) resourceID() string {
	name := m.name
	if name == "" {
		name = m.clientID
	}
	return "/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/kvasserttest/providers/Microsoft.ManagedIdentity/userAssignedIdentities/" + name
}

var guidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

func isGUID(s string) bool { return guidRE.MatchString(s) }

// loadDirectory builds the tenants, apps and identities of a scenario.
func loadDirectory(s *scenario.Scenario, certDER func(vault, name string) ([]byte, error)) (map[string]*tenant, map[string]*app, []*identity, error) {
	tenants := map[string]*tenant{}
	for _, t := range s.Tenants {
		id := strings.ToLower(t.ID)
		tenants[id] = &tenant{id: id, name: strings.ToLower(t.Name)}
	}
	lookup := func(idOrName string) (string, bool) {
		k := strings.ToLower(idOrName)
		if t := tenants[k]; t != nil {
			return t.id, true
		}
		for _, t := range tenants { // names: only for small hand-written scenarios (Validate wants IDs)
			if t.name != "" && (t.name == k || t.domain() == k) {
				return t.id, true
			}
		}
		return "", false
	}
	apps := map[string]*app{}
	for _, a := range s.Apps {
		home, ok := lookup(a.HomeTenant)
		if !ok {
			return nil, nil, nil, fmt.Errorf("entra: app %s: home tenant %q not found", a.ClientID, a.HomeTenant)
		}
		ap := &app{
			clientID:      strings.ToLower(a.ClientID),
			objectID:      a.AppObjectID(),
			name:          a.DisplayName,
			home:          home,
			multiTenant:   a.MultiTenant,
			sp:            map[string]*servicePrincipal{home: {allRoles: true}},
			refusals:      map[string]int{},
			secrets:       append([]string(nil), a.Secrets...),
			fics:          append([]scenario.FederatedCredential(nil), a.FederatedCredentials...),
			roles:         append([]string(nil), a.Roles...),
			rolesResource: a.RolesResource,
			redirectURIs:  append([]string(nil), a.RedirectURIs...),
			lock:          cloneLock(a.ServicePrincipalLock),
		}
		for _, c := range a.ConsentedTenants {
			tid, ok := lookup(c)
			if !ok {
				return nil, nil, nil, fmt.Errorf("entra: app %s: consented tenant %q not found", a.ClientID, c)
			}
			ap.sp[tid] = &servicePrincipal{allRoles: true}
		}
		for _, c := range a.Consents {
			tid, ok := lookup(c.Tenant)
			if !ok {
				return nil, nil, nil, fmt.Errorf("entra: app %s: consented tenant %q not found", a.ClientID, c.Tenant)
			}
			ap.sp[tid] = &servicePrincipal{roles: append([]string{}, c.Roles...), disabled: c.Disabled}
		}
		for i, ref := range a.Certificates {
			cert, err := resolveCertificate(ref, certDER)
			if err != nil {
				return nil, nil, nil, fmt.Errorf("entra: app %s: certificates[%d]: %w", a.ClientID, i, err)
			}
			ap.certs = append(ap.certs, newKeyCredential(cert))
		}
		apps[ap.clientID] = ap
	}
	var ids []*identity
	for _, m := range s.ManagedIdentities {
		t, ok := s.Tenant(m.Tenant)
		if !ok {
			return nil, nil, nil, fmt.Errorf("entra: managed identity %s: tenant %q not found", m.ClientID, m.Tenant)
		}
		ids = append(ids, &identity{
			clientID: strings.ToLower(m.ClientID),
			objectID: strings.ToLower(m.ObjectID),
			tenant:   strings.ToLower(t.ID),
			name:     m.Name,
		})
	}
	return tenants, apps, ids, nil
}

func resolveCertificate(ref scenario.CertificateRef, certDER func(vault, name string) ([]byte, error)) (*x509.Certificate, error) {
	if ref.PEM != "" {
		block, _ := pem.Decode([]byte(ref.PEM))
		if block == nil || block.Type != "CERTIFICATE" {
			return nil, errors.New("pem holds no CERTIFICATE block")
		}
		return x509.ParseCertificate(block.Bytes)
	}
	if certDER == nil {
		return nil, fmt.Errorf("vault certificate %s/%s: Config.CertificateDER is nil", ref.Vault, ref.Name)
	}
	der, err := certDER(ref.Vault, ref.Name)
	if err != nil {
		return nil, fmt.Errorf("vault certificate %s/%s: %w", ref.Vault, ref.Name, err)
	}
	return x509.ParseCertificate(der)
}

// servicePrincipalID is the stable object ID of an app's service principal
// in a tenant: a name-based (version 5 style) GUID of the pair.
func servicePrincipalID(tenantID, clientID string) string {
	sum := sha256.Sum256([]byte("kvasserttest/service-principal\x00" + strings.ToLower(tenantID) + "\x00" + strings.ToLower(clientID)))
	var b [16]byte
	copy(b[:], sum[:16])
	return formatGUID(b, 5)
}

func cloneLock(l *scenario.ServicePrincipalLock) *scenario.ServicePrincipalLock {
	if l == nil {
		return nil
	}
	c := *l
	return &c
}
