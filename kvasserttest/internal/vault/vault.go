// Package vault emulates one Azure Key Vault or Managed HSM data plane.
package vault

import (
	"errors"
	"net/http"

	"github.com/kvassert/kvassert/kvasserttest/internal/emu"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// Config configures one emulated vault.
type Config struct {
	// Vault is the scenario entry: name, tenant, initial keys/certificates, access.
	Vault scenario.Vault
	// BaseURL is the vault URL used in IDs, without a trailing slash, e.g.
	// "https://demo.vault.azure.net" or "https://demo.managedhsm.azure.net".
	BaseURL string
	// AuthorityHost is the Entra host named in the challenge, without a
	// trailing slash, e.g. "https://login.microsoftonline.com".
	AuthorityHost string
	// Authority verifies bearer tokens.
	Authority *emu.Authority
	// Faults counts requests and injects faults (shared by the emulator).
	Faults *emu.Faults
}

// Vault is one emulated vault. Safe for concurrent use.
type Vault struct{ cfg Config }

// New creates the vault and its initial keys and certificates.
func New(cfg Config) (*Vault, error) { return &Vault{cfg: cfg}, errors.New("vault: not implemented") }

// ServeHTTP serves the data-plane API (/keys/..., /certificates/..., /secrets/...).
func (v *Vault) ServeHTTP(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }

// CertificateDER returns the DER of the current version of a certificate.
func (v *Vault) CertificateDER(name string) ([]byte, error) { return nil, errors.New("not implemented") }

// SetSignLimit simulates the per-vault sign rate limit (zero disables it).
func (v *Vault) SetSignLimit(l emu.RateLimit) {}

// Grant adds permissions for a principal (client ID or object ID).
func (v *Vault) Grant(principal string, permissions ...string) {}

// Revoke removes permissions from a principal; with none, all of them.
func (v *Vault) Revoke(principal string, permissions ...string) {}
