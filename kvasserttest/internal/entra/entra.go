// Package entra emulates the Entra ID token service: OpenID discovery, the
// v2.0 token endpoint (client secrets, certificate client assertions,
// federated credentials) and the managed identity endpoint.
//
// The emulator is strict where Entra ID is strict, so that code which works
// against it works against Entra: the client assertion is checked claim by
// claim, the certificate is looked up by its x5t or x5t#S256 thumbprint among
// the app's credentials, and each failure answers with the AADSTS code, OAuth
// error and HTTP status Entra uses (see the table on oauthError in errors.go).
// All times come from the Authority's clock (Authority.SetClock).
package entra

import (
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kvassert/kvassert/kvasserttest/internal/emu"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// Config configures the emulated token service.
type Config struct {
	// Scenario holds tenants, apps and managed identities.
	Scenario *scenario.Scenario
	// Authority signs the access tokens it issues (and verifies federated
	// assertions that it issued itself).
	Authority *emu.Authority
	// Faults counts requests and injects faults (shared by the emulator).
	Faults *emu.Faults
	// CertificateDER resolves an app's {vault, name} certificate reference to
	// the DER of that vault certificate's current version.
	CertificateDER func(vault, name string) ([]byte, error)
	// IdentityHeader is the secret the managed identity endpoint requires
	// (X-IDENTITY-HEADER for the App Service protocol).
	IdentityHeader string
	// TokenLifetime of issued access tokens; 0 means 1 hour.
	TokenLifetime time.Duration
}

// maxBody caps request bodies (a client assertion with an x5c chain is a few
// kilobytes; Entra itself refuses very large requests).
const maxBody = 256 << 10

// clockSkew is what Entra allows between the client's clock and its own for
// a client assertion's nbf and exp.
const clockSkew = 5 * time.Minute

// Entra is the emulated token service. Safe for concurrent use.
type Entra struct {
	cfg      Config
	auth     *emu.Authority
	faults   *emu.Faults
	lifetime time.Duration

	tenants  map[string]*tenant // by lower-case ID
	domains  map[string]*tenant // by lower-case {name}.onmicrosoft.com
	ids      []*identity        // immutable after New
	mu       sync.RWMutex       // guards apps and what they hold
	apps     map[string]*app    // by lower-case client ID
	jtis     *jtiCache
	noReplay atomic.Bool // replay protection disabled
	// propagation is the addKey propagation delay (a time.Duration).
	propagation atomic.Int64
	replays     atomic.Int64
	issued      atomic.Int64
	// consentDelay is how long a consent given on the admin-consent page
	// takes to reach the token endpoint (a time.Duration).
	consentDelay atomic.Int64
	// formKey signs the admin-consent page's anti-forgery tokens.
	formKey []byte
}

// New builds the token service from the scenario. Vault certificate
// references are resolved now, with Config.CertificateDER.
func New(cfg Config) (*Entra, error) {
	if cfg.Scenario == nil {
		return nil, errors.New("entra: Config.Scenario is nil")
	}
	if cfg.Authority == nil {
		return nil, errors.New("entra: Config.Authority is nil")
	}
	if err := cfg.Scenario.Validate(); err != nil {
		return nil, err
	}
	tenants, apps, ids, err := loadDirectory(cfg.Scenario, cfg.CertificateDER)
	if err != nil {
		return nil, err
	}
	e := &Entra{
		cfg:      cfg,
		auth:     cfg.Authority,
		faults:   cfg.Faults,
		lifetime: cfg.TokenLifetime,
		tenants:  tenants,
		domains:  map[string]*tenant{},
		ids:      ids,
		apps:     apps,
		jtis:     newJTICache(100_000),
		formKey:  make([]byte, 32),
	}
	if _, err := rand.Read(e.formKey); err != nil {
		return nil, err
	}
	if e.faults == nil {
		e.faults = &emu.Faults{}
	}
	if e.lifetime <= 0 {
		e.lifetime = time.Hour
	}
	e.propagation.Store(int64(DefaultPropagationDelay))
	for _, t := range tenants {
		if d := t.domain(); d != "" {
			e.domains[d] = t
		}
	}
	return e, nil
}

func (e *Entra) now() time.Time { return e.auth.Now() }

// tenantKind classifies the tenant segment of a path.
type tenantKind int

const (
	tenantSpecific  tenantKind = iota
	tenantCommon               // "common"
	tenantOrgs                 // "organizations"
	tenantConsumers            // "consumers"
	tenantUnknown
)

// resolveTenant maps a path segment (GUID in any case, or
// {name}.onmicrosoft.com) to a tenant.
func (e *Entra) resolveTenant(seg string) (*tenant, tenantKind) {
	s := strings.ToLower(seg)
	switch s {
	case "common":
		return nil, tenantCommon
	case "organizations":
		return nil, tenantOrgs
	case "consumers":
		return nil, tenantConsumers
	}
	if t := e.tenants[s]; t != nil {
		return t, tenantSpecific
	}
	if t := e.domains[s]; t != nil {
		return t, tenantSpecific
	}
	return nil, tenantUnknown
}

func tenantNotFound(seg string) *oauthError {
	return newErr(http.StatusBadRequest, "invalid_tenant", 90002,
		"Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.",
		seg)
}

// ServeHTTP serves the Entra paths (/{tenant}/v2.0/.well-known/openid-configuration,
// /{tenant}/discovery/v2.0/keys, /{tenant}/oauth2/v2.0/token, /common/discovery/instance,
// /{tenant}/v2.0/adminconsent).
func (e *Entra) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case len(p) == 3 && strings.EqualFold(p[1], "discovery") && strings.EqualFold(p[2], "instance"):
		e.serveInstanceDiscovery(w, r)
	case len(p) == 4 && strings.EqualFold(p[1], "v2.0") && p[2] == ".well-known" && p[3] == "openid-configuration":
		e.serveOpenIDConfiguration(w, r, p[0])
	case len(p) == 4 && strings.EqualFold(p[1], "discovery") && strings.EqualFold(p[2], "v2.0") && p[3] == "keys",
		len(p) == 3 && strings.EqualFold(p[1], "discovery") && p[2] == "keys":
		e.serveJWKS(w, r, p[0])
	case len(p) == 3 && strings.EqualFold(p[1], "v2.0") && strings.EqualFold(p[2], "adminconsent"):
		e.serveAdminConsent(w, r, p[0], false)
	case len(p) == 2 && strings.EqualFold(p[1], "adminconsent"):
		e.serveAdminConsent(w, r, p[0], true)
	case len(p) == 4 && strings.EqualFold(p[1], "oauth2") && strings.EqualFold(p[2], "v2.0") && strings.EqualFold(p[3], "token"):
		e.serveToken(w, r, p[0])
	default:
		http.NotFound(w, r)
	}
}

// RegisterCertificate adds a certificate credential to an app. Registering a
// certificate it already has clears a revocation.
func (e *Entra) RegisterCertificate(clientID string, cert *x509.Certificate) error {
	return e.withAppCertificate(clientID, cert, func(a *app, kc *keyCredential, i int) error {
		if i >= 0 {
			a.certs[i] = kc
		} else {
			a.certs = append(a.certs, kc)
		}
		return nil
	})
}

// RemoveCertificate removes the certificate credential with this DER from an app.
func (e *Entra) RemoveCertificate(clientID string, cert *x509.Certificate) error {
	return e.withAppCertificate(clientID, cert, func(a *app, _ *keyCredential, i int) error {
		if i < 0 {
			return fmt.Errorf("entra: app %s has no such certificate", clientID)
		}
		a.certs = append(a.certs[:i:i], a.certs[i+1:]...)
		return nil
	})
}

// RevokeCertificate marks a registered certificate as revoked (AADSTS7000277).
func (e *Entra) RevokeCertificate(clientID string, cert *x509.Certificate) error {
	return e.withAppCertificate(clientID, cert, func(a *app, _ *keyCredential, i int) error {
		if i < 0 {
			return fmt.Errorf("entra: app %s has no such certificate", clientID)
		}
		a.certs[i].revoked = true
		return nil
	})
}

// withAppCertificate runs f under the lock with the app, the key credential
// made from cert, and the index of the app's credential for the same
// certificate (-1 when it has none).
func (e *Entra) withAppCertificate(clientID string, cert *x509.Certificate, f func(a *app, kc *keyCredential, i int) error) error {
	if cert == nil {
		return errors.New("entra: nil certificate")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	a := e.apps[strings.ToLower(clientID)]
	if a == nil {
		return fmt.Errorf("entra: no app with client ID %q", clientID)
	}
	kc := newKeyCredential(cert)
	for i, c := range a.certs {
		if c.sha256 == kc.sha256 {
			return f(a, kc, i)
		}
	}
	return f(a, kc, -1)
}

// ServicePrincipalID returns the object ID of the app's service principal in
// a tenant (the oid and sub of its app-only tokens there). It is derived from
// the pair, so it is stable across runs.
func (e *Entra) ServicePrincipalID(clientID, tenantID string) string {
	return servicePrincipalID(tenantID, clientID)
}

// SetReplayProtection turns the client-assertion jti replay check on (the
// default) or off. Entra ID itself accepts a reused certificate assertion
// until it expires; the check makes a client that reuses assertions visible.
func (e *Entra) SetReplayProtection(on bool) { e.noReplay.Store(!on) }

// Replays returns how many client assertions were refused because their jti
// had already been used.
func (e *Entra) Replays() int64 { return e.replays.Load() }

// Issued returns how many access tokens the token endpoint has issued
// (managed identity tokens not included).
func (e *Entra) Issued() int64 { return e.issued.Load() }

// SetConsentDelay sets how long, on the emulator's clock, a consent given
// on the admin-consent page takes before the token endpoint finds the new
// service principal (AADSTS700016 until then), as Entra replicates
// (negative values count as 0). It applies to consents given afterwards.
func (e *Entra) SetConsentDelay(d time.Duration) { e.consentDelay.Store(int64(max(d, 0))) }

// ConsentDelay is the current consent delay.
func (e *Entra) ConsentDelay() time.Duration { return time.Duration(e.consentDelay.Load()) }
