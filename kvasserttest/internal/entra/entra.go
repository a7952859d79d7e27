// Package entra emulates the Entra ID token service: OpenID discovery, the
// v2.0 token endpoint (client secrets, certificate client assertions,
// federated credentials) and the managed identity endpoint.
package entra

import (
	"crypto/x509"
	"errors"
	"net/http"
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

// Entra is the emulated token service. Safe for concurrent use.
type Entra struct{ cfg Config }

// New builds the token service from the scenario.
func New(cfg Config) (*Entra, error) { return &Entra{cfg: cfg}, errors.New("entra: not implemented") }

// ServeHTTP serves the Entra paths (/{tenant}/v2.0/.well-known/openid-configuration,
// /{tenant}/discovery/v2.0/keys, /{tenant}/oauth2/v2.0/token, /common/discovery/instance).
func (e *Entra) ServeHTTP(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }

// ServeManagedIdentity serves the managed identity endpoint (App Service
// protocol: GET + X-IDENTITY-HEADER; Cloud Shell protocol: POST + Metadata: true).
func (e *Entra) ServeManagedIdentity(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }

// RegisterCertificate adds a certificate credential to an app.
func (e *Entra) RegisterCertificate(clientID string, cert *x509.Certificate) error {
	return errors.New("not implemented")
}

// RemoveCertificate removes the certificate credential with this DER from an app.
func (e *Entra) RemoveCertificate(clientID string, cert *x509.Certificate) error {
	return errors.New("not implemented")
}

// RevokeCertificate marks a registered certificate as revoked (AADSTS7000277).
func (e *Entra) RevokeCertificate(clientID string, cert *x509.Certificate) error {
	return errors.New("not implemented")
}

// SetConsent adds (true) or removes (false) the app's service principal in a tenant.
func (e *Entra) SetConsent(clientID, tenant string, consented bool) error {
	return errors.New("not implemented")
}
