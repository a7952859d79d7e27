package keyvault

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azcertificates"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/kvassert/kvassert/assertion"
)

// Certificate is what a CertificateSource read from the vault: one version of
// a certificate and a signer for its key.
type Certificate struct {
	// Certificate is the parsed X.509 certificate (DER in Certificate.Raw).
	Certificate *x509.Certificate
	// ID is the versioned certificate identifier.
	ID string
	// KeyID is the versioned identifier of the certificate's key (kid).
	KeyID string
	// Version of the certificate (and of its key).
	Version string
	// X5T and X5TS256 are the base64url SHA-1 and SHA-256 thumbprints.
	X5T, X5TS256 string
	// Exportable is the key policy's exportable flag, when the vault returned
	// the policy.
	Exportable *bool
	// Signer signs with the certificate's key (keys/sign only; no lookups).
	Signer *Signer
	// ReadAt is when the certificate was read from the vault.
	ReadAt time.Time
}

// CertificateSourceOptions configure a CertificateSource.
type CertificateSourceOptions struct {
	Options
	// Version pins a certificate version; empty means the latest, re-read
	// when TTL passes or on Invalidate (rotation without a restart).
	Version string
	// TTL is how long a read certificate is used before it is read again
	// (default 1 hour; the read happens on the next use after that).
	TTL time.Duration
	// ExpiryWarning is how close to its expiry a certificate must be for a
	// warning to be logged (default 30 days).
	ExpiryWarning time.Duration
	// Logger receives the expiry warning and rotation notices (default
	// slog.Default()). Nothing secret is ever logged.
	Logger *slog.Logger
	// Now replaces time.Now (tests).
	Now func() time.Time
}

// CertificateSource reads a Key Vault certificate and caches it. Safe for
// concurrent use; concurrent reads are merged into one vault call.
type CertificateSource struct {
	certs *azcertificates.Client
	keys  *azkeys.Client
	vault Vault
	name  string
	opts  CertificateSourceOptions

	mu      sync.Mutex
	cur     *Certificate
	stale   bool
	flight  *certFlight
	warned  string // version already warned about
	readers int64  // vault reads made (for tests and diagnostics)
}

type certFlight struct {
	done chan struct{}
	cert *Certificate
	err  error
}

// NewCertificateSource returns a source for certificate name in the vault at
// vaultURL. It makes no call until Certificate is first used. cred needs
// certificates/get and keys/sign on the vault.
func NewCertificateSource(vaultURL, name string, cred azcore.TokenCredential, opts *CertificateSourceOptions) (*CertificateSource, error) {
	v, err := ParseVaultURL(vaultURL)
	if err != nil {
		return nil, err
	}
	if v.ManagedHSM {
		return nil, errors.New("keyvault: Managed HSM has no certificates; keep the certificate in a Key Vault, or use the key directly with its certificate (a Key source)")
	}
	if err := CheckName(name); err != nil {
		return nil, err
	}
	var o CertificateSourceOptions
	if opts != nil {
		o = *opts
	}
	if o.Version != "" && !versionRE.MatchString(o.Version) {
		return nil, fmt.Errorf("keyvault: %q is not a certificate version", o.Version)
	}
	if o.TTL < 0 || o.ExpiryWarning < 0 {
		return nil, errors.New("keyvault: TTL and ExpiryWarning must not be negative")
	}
	if o.TTL == 0 {
		o.TTL = time.Hour
	}
	if o.ExpiryWarning == 0 {
		o.ExpiryWarning = 30 * 24 * time.Hour
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if cred == nil {
		return nil, errNoCredential
	}
	if err := o.Options.check(v); err != nil {
		return nil, err
	}
	certs, err := azcertificates.NewClient(v.URL, cred, &azcertificates.ClientOptions{ClientOptions: o.ClientOptions, DisableChallengeResourceVerification: v.Loopback})
	if err != nil {
		return nil, err
	}
	keys, err := o.keysClient(v, cred)
	if err != nil {
		return nil, err
	}
	return &CertificateSource{certs: certs, keys: keys, vault: v, name: name, opts: o}, nil
}

// Name is the certificate name.
func (s *CertificateSource) Name() string { return s.name }

// VaultURL is the normalised vault URL.
func (s *CertificateSource) VaultURL() string { return s.vault.URL }

// Invalidate makes the next Certificate call read the certificate again (for
// example after Entra rejected an assertion because the certificate rotated).
func (s *CertificateSource) Invalidate() {
	s.mu.Lock()
	s.stale = true
	s.mu.Unlock()
}

// Reads is the number of certificate reads made from the vault.
func (s *CertificateSource) Reads() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.readers
}

// Certificate returns the cached certificate, reading it from the vault the
// first time, after TTL, or after Invalidate. If a re-read fails while a
// cached, still-valid certificate exists, that one is returned (the vault
// being briefly unavailable must not stop token acquisition).
func (s *CertificateSource) Certificate(ctx context.Context) (*Certificate, error) {
	s.mu.Lock()
	cur := s.cur
	fresh := cur != nil && !s.stale && s.opts.Now().Sub(cur.ReadAt) < s.opts.TTL
	if fresh {
		s.mu.Unlock()
		return cur, nil
	}
	f := s.flight
	if f == nil {
		f = &certFlight{done: make(chan struct{})}
		s.flight = f
		go s.read(context.WithoutCancel(ctx), f)
	}
	s.mu.Unlock()

	select {
	case <-f.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if f.err != nil {
		if cur != nil && !s.opts.Now().After(cur.Certificate.NotAfter) && !s.isStale() {
			return cur, nil
		}
		return nil, f.err
	}
	return f.cert, nil
}

func (s *CertificateSource) isStale() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stale
}

func (s *CertificateSource) read(ctx context.Context, f *certFlight) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cert, err := s.fetch(ctx)
	s.mu.Lock()
	s.readers++
	if err == nil {
		prev := s.cur
		s.cur, s.stale = cert, false
		if prev != nil && prev.Version != cert.Version {
			s.opts.Logger.Info("kvassert: certificate rotated", "vault", s.vault.Host, "certificate", s.name, "from_version", prev.Version, "to_version", cert.Version)
		}
		s.maybeWarnLocked(cert)
	}
	s.flight = nil
	s.mu.Unlock()
	f.cert, f.err = cert, err
	close(f.done)
}

func (s *CertificateSource) maybeWarnLocked(c *Certificate) {
	left := c.Certificate.NotAfter.Sub(s.opts.Now())
	if left > s.opts.ExpiryWarning || s.warned == c.Version {
		return
	}
	s.warned = c.Version
	s.opts.Logger.Warn("kvassert: certificate expires soon; create a new version and register it on the app",
		"vault", s.vault.Host, "certificate", s.name, "version", c.Version,
		"not_after", c.Certificate.NotAfter.UTC().Format(time.RFC3339), "days_left", int(left.Hours()/24))
}

func (s *CertificateSource) fetch(ctx context.Context) (*Certificate, error) {
	resp, err := s.certs.GetCertificate(ctx, s.name, s.opts.Version, nil)
	if err != nil {
		return nil, fmt.Errorf("keyvault: reading certificate %q from %s: %w", s.name, s.vault.Host, err)
	}
	if len(resp.CER) == 0 {
		return nil, fmt.Errorf("keyvault: certificate %q has no X.509 content yet (is its creation still pending?)", s.name)
	}
	if a := resp.Attributes; a != nil && a.Enabled != nil && !*a.Enabled {
		return nil, fmt.Errorf("keyvault: certificate %q is disabled in %s", s.name, s.vault.Host)
	}
	x, err := x509.ParseCertificate(resp.CER)
	if err != nil {
		return nil, fmt.Errorf("keyvault: certificate %q: %w", s.name, err)
	}
	if resp.KID == nil {
		return nil, fmt.Errorf("keyvault: certificate %q has no key ID (kid)", s.name)
	}
	kid, err := ParseKeyID(string(*resp.KID))
	if err != nil {
		return nil, fmt.Errorf("keyvault: certificate %q: %w", s.name, err)
	}
	if kid.Vault.Host != s.vault.Host && !s.vault.Loopback {
		return nil, fmt.Errorf("keyvault: certificate %q names a key in another vault (%s)", s.name, kid.Vault.Host)
	}
	if kid.Version == "" {
		return nil, fmt.Errorf("keyvault: certificate %q has an unversioned kid", s.name)
	}
	if _, ok := x.PublicKey.(*rsa.PublicKey); !ok {
		return nil, fmt.Errorf("keyvault: certificate %q has a %T key; Entra client assertions need RSA", s.name, x.PublicKey)
	}
	signer := s.opts.Options.signer(s.keys, ObjectID{Vault: s.vault, Kind: "keys", Name: kid.Name, Version: kid.Version})
	if err := signer.setPublic(x.PublicKey); err != nil {
		return nil, err
	}
	x5t, x5tS256 := assertion.Thumbprints(x)
	c := &Certificate{
		Certificate: x, KeyID: signer.KeyID(), Version: kid.Version,
		X5T: x5t, X5TS256: x5tS256, Signer: signer, ReadAt: s.opts.Now(),
	}
	if resp.ID != nil {
		c.ID = string(*resp.ID)
		c.Version = resp.ID.Version()
	}
	if p := resp.Policy; p != nil && p.KeyProperties != nil {
		c.Exportable = p.KeyProperties.Exportable
	}
	return c, nil
}
