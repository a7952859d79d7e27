package kvassert

import (
	"context"
	"crypto"
	"crypto/sha1" //nolint:gosec // the size of a SHA-1 thumbprint
	"crypto/x509"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/kvassert/kvassert/assertion"
	"github.com/kvassert/kvassert/internal/certcache"
	"github.com/kvassert/kvassert/internal/jwtassert"
	"github.com/kvassert/kvassert/internal/kvclient"
	"github.com/kvassert/kvassert/internal/kvid"
	"github.com/kvassert/kvassert/keyvault"
	"github.com/kvassert/kvassert/telemetry"
)

// KeyVaultCertificateOptions configure NewKeyVaultCertificateSource. The
// zero value (or nil) is the defaults. ClientOptions, Telemetry and Logger
// left zero are taken from the first Credential the source is given to
// (NewCredential), so that the transport and telemetry are given once.
type KeyVaultCertificateOptions struct {
	// ClientOptions for the vault's clients (azkeys, azcertificates):
	// transport, retries, logging. Zero means the ClientOptions of the
	// first Credential the source is given to, else azcore's defaults
	// (429 is never retried by azcore: signs wait throttling out at
	// Throttle).
	ClientOptions policy.ClientOptions
	// Version pins a certificate version; empty means the latest, re-read
	// in the background every TTL and at once when Entra refuses the
	// version in use (rotation without a restart).
	Version string
	// TTL is how often the latest version is looked for (default 1 hour).
	TTL time.Duration
	// ReadTimeout bounds one vault read that callers share (default 1
	// minute).
	ReadTimeout time.Duration
	// ExpiryWarning is how close to its expiry a certificate must be for a
	// warning to be logged (default 30 days).
	ExpiryWarning time.Duration
	// Algorithm is assertion.PS256 (default, with x5t#S256) or
	// assertion.RS256 (with x5t, for ADFS and older setups).
	Algorithm assertion.Algorithm
	// Lifetime of each assertion (default 10 minutes; 1 to 60 minutes).
	Lifetime time.Duration
	// IncludeX5C adds the certificate in the x5c header, for apps trusted by
	// subject name and issuer.
	IncludeX5C bool
	// AllowLoopback accepts https vault URLs on this machine (127.0.0.1,
	// [::1], localhost), for an emulator that cannot be reached through a
	// re-routing transport (kvasserttest's ClientOptions route the real
	// vault URL to it and need no AllowLoopback). Off by default: a vault
	// URL from configuration must never make the app send its Key Vault
	// token to a local listener.
	AllowLoopback bool
	// Throttle paces the signs sent to the vault (default: the
	// process-wide gate of the vault's host; package fleet shares one
	// between replicas).
	Throttle keyvault.Throttle
	// MaxThrottleWait bounds how long one sign waits out throttling (429)
	// (default 2 minutes; negative values are refused).
	MaxThrottleWait time.Duration
	// Telemetry selects where the vault's metrics and spans go. Zero means
	// the Telemetry of the first Credential the source is given to, else
	// the global OpenTelemetry providers.
	Telemetry telemetry.Options
	// Logger receives the warnings an operator must act on (a certificate
	// near its expiry, a renewed version Entra refuses) and, at debug
	// level, routine notices. Nil means the Logger of the first Credential
	// the source is given to, else slog.Default(). Nothing secret is logged.
	Logger *slog.Logger
	// Clock replaces time.Now for the certificate's validity and the
	// assertions' nbf, iat and exp: for simulations and tests on an
	// emulator's clock. Leave it nil otherwise.
	Clock func() time.Time
}

// cacheOptions are o as the certificate cache takes them.
func (o *KeyVaultCertificateOptions) cacheOptions() *certcache.Options {
	return &certcache.Options{
		ClientOptions: o.ClientOptions, AllowLoopback: o.AllowLoopback, Throttle: o.Throttle, MaxThrottleWait: o.MaxThrottleWait, Telemetry: o.Telemetry,
		Version: o.Version, TTL: o.TTL, ReadTimeout: o.ReadTimeout, ExpiryWarning: o.ExpiryWarning,
		Logger: o.Logger, Now: o.Clock,
	}
}

func (o *KeyVaultCertificateOptions) assertOpts() assertOpts {
	return assertOpts{algorithm: o.Algorithm, lifetime: o.Lifetime, includeX5C: o.IncludeX5C, clock: o.Clock}
}

// KeyVaultCertificateSource signs assertions with a Key Vault certificate's
// key (the .NET library's WithKeyVaultCertificate). The certificate is read
// once and cached; every assertion after
// that is exactly one keys/sign call.
//
// It learns from Entra's answers, which a Credential (or AcquireWithFeedback)
// reports to it, which certificate version is registered on the app. When Key Vault renews the certificate (AutoRenew)
// and Entra refuses the new version, it signs with the version Entra accepts
// while that is valid, warns once, and takes the new version as soon as
// Entra accepts it (tried again after each TTL, doubling to 8 TTLs).
type KeyVaultCertificateSource struct {
	vaultURL, name string
	cred           azcore.TokenCredential
	id             string // sourceIdentity

	setupMu sync.Mutex
	final   bool // configured or used: opts and certs no longer change
	opts    KeyVaultCertificateOptions
	certs   *certcache.Cache

	mu       sync.Mutex
	builders map[string]*assertion.Builder // by certificate version
	signer   *keyvault.Signer              // of the version last used
}

// NewKeyVaultCertificateSource returns a source for the certificate name in
// the vault at vaultURL ("https://{vault}.vault.azure.net/"). cred reaches
// the vault: it needs certificates/get and keys/sign (never secrets/get),
// and certificates/list to find the version Entra accepts after a restart
// that follows an automatic renewal; typically
// azidentity.NewDefaultAzureCredential or a managed identity. No call is
// made until the first assertion.
func NewKeyVaultCertificateSource(vaultURL, name string, cred azcore.TokenCredential, opts *KeyVaultCertificateOptions) (*KeyVaultCertificateSource, error) {
	var o KeyVaultCertificateOptions
	if opts != nil {
		o = *opts
	}
	if cred == nil {
		return nil, inputErr("cred", "no credential for the vault (cred is nil); give e.g. azidentity.NewDefaultAzureCredential(nil)")
	}
	if err := o.assertOpts().validate(); err != nil {
		return nil, err
	}
	certs, err := certcache.New(vaultURL, name, cred, o.cacheOptions())
	if err != nil {
		return nil, err
	}
	v, err := kvid.ParseVaultURL(vaultURL) // accepted by NewCertificateCache
	if err != nil {
		return nil, err
	}
	id := "keyvault-certificate:" + strings.ToLower(v.URL) + "certificates/" + strings.ToLower(name)
	return &KeyVaultCertificateSource{vaultURL: vaultURL, name: name, cred: cred, id: id, opts: o, certs: certs, builders: map[string]*assertion.Builder{}}, nil
}

// configure implements configurable: the first Credential's settings fill
// the options left zero, before the first use.
func (s *KeyVaultCertificateSource) configure(d inherited) error {
	return configureOnce(&s.setupMu, &s.final, &s.opts, func(o *KeyVaultCertificateOptions) bool {
		return inheritAll(&o.ClientOptions, &o.Telemetry, &o.Logger, d)
	}, func(o KeyVaultCertificateOptions) error {
		certs, err := certcache.New(s.vaultURL, s.name, s.cred, o.cacheOptions())
		if err != nil {
			return err
		}
		s.opts, s.certs = o, certs
		return nil
	})
}

// cache is the certificate cache; from the first call on, the source's
// settings are final.
func (s *KeyVaultCertificateSource) cache() *certcache.Cache {
	s.setupMu.Lock()
	defer s.setupMu.Unlock()
	s.final = true
	return s.certs
}

func (s *KeyVaultCertificateSource) sourceIdentity() string { return s.id }

// Assertion implements Source.
func (s *KeyVaultCertificateSource) Assertion(ctx context.Context, clientID, tokenEndpoint string) (string, error) {
	certs := s.cache()
	c, b, err := s.current(ctx, certs)
	if err != nil {
		return "", err
	}
	noteSigner(ctx, c.Version)
	jwt, err := b.Build(ctx, clientID, tokenEndpoint)
	if err == nil || !vaultRefusedKey(err) || !certs.NoteRefused(ctx, c.Version, 0) {
		return jwt, err
	}
	// Key Vault refused to sign with this version (disabled or deleted
	// since it was read, e.g. a renewed version tried again after Entra
	// refused it): the cache set it aside; sign once with what it offers
	// now.
	c2, b2, err2 := s.current(ctx, certs)
	if err2 != nil || c2.Version == c.Version {
		return "", err
	}
	noteSigner(ctx, c2.Version)
	return b2.Build(ctx, clientID, tokenEndpoint)
}

// vaultRefusedKey reports whether err is Key Vault refusing a sign for a
// reason of the key version itself (403: disabled or not permitted, 404:
// deleted, 400: the key cannot do it), not throttling, an outage or the
// caller's context.
func vaultRefusedKey(err error) bool {
	se := kvclient.AsServiceError(err)
	if se == nil {
		return false
	}
	switch se.StatusCode {
	case http.StatusBadRequest, http.StatusForbidden, http.StatusNotFound:
		return true
	}
	return false
}

// accepted implements feedback: Entra accepted an assertion signed with
// certificate version signer.
func (s *KeyVaultCertificateSource) accepted(signer string) { s.cache().NoteAccepted(signer) }

// refused implements feedback: Entra refused an assertion signed with
// certificate version signer (see keyvault.CertificateCache.Refused).
func (s *KeyVaultCertificateSource) refused(ctx context.Context, signer string, code int) bool {
	return s.cache().NoteRefused(ctx, signer, code)
}

func (s *KeyVaultCertificateSource) current(ctx context.Context, certs *certcache.Cache) (*certcache.Certificate, *assertion.Builder, error) {
	c, err := certs.Certificate(ctx)
	if err != nil {
		return nil, nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.signer = c.Signer
	if b := s.builders[c.Version]; b != nil {
		return c, b, nil
	}
	b, err := assertion.New(c.Certificate, c.Signer, s.opts.assertOpts().builderOptions(c.Certificate))
	if err != nil {
		return nil, nil, err
	}
	if len(s.builders) >= 4 {
		clear(s.builders)
	}
	s.builders[c.Version] = b
	return c, b, nil
}

// throttledSince implements throttleReporter: whether Key Vault is
// throttling this source's signs, and since when.
func (s *KeyVaultCertificateSource) throttledSince() (time.Time, bool) {
	s.mu.Lock()
	signer := s.signer
	s.mu.Unlock()
	if signer == nil {
		return time.Time{}, false
	}
	return signer.ThrottledSince()
}

// KeyVaultKeyOptions configure NewKeyVaultKeySource. The zero value (or
// nil) is the defaults. ClientOptions, Telemetry and Logger left zero are
// taken from the first Credential the source is given to, except in
// Thumbprint mode, where the key is read in NewKeyVaultKeySource with
// these ClientOptions.
type KeyVaultKeyOptions struct {
	// ClientOptions for the vault's keys client (see
	// KeyVaultCertificateOptions.ClientOptions).
	ClientOptions policy.ClientOptions
	// Thumbprint of the certificate registered on the app, for when only
	// it is known (hex as the portal shows it, or base64url); give a nil
	// certificate then. The thumbprint decides the assertion's form: a
	// SHA-1 thumbprint makes RS256 assertions with x5t, a SHA-256 one PS256
	// assertions with x5t#S256; Algorithm may confirm that choice, and the
	// other algorithm is refused. NewKeyVaultKeySource then reads the key
	// once (keys/get, bounded by one minute) for its public half, and the
	// source is pinned to the version read: give the version of the
	// certificate's key in keyID, or, unversioned, the key's current version
	// at that call is the one used from then on. The certificate's validity
	// cannot be checked locally; Entra still checks it.
	Thumbprint string
	// Algorithm, Lifetime and IncludeX5C: see KeyVaultCertificateOptions.
	Algorithm  assertion.Algorithm
	Lifetime   time.Duration
	IncludeX5C bool
	// AllowLoopback, Throttle and MaxThrottleWait: see
	// KeyVaultCertificateOptions.
	AllowLoopback   bool
	Throttle        keyvault.Throttle
	MaxThrottleWait time.Duration
	// Telemetry and Logger: see KeyVaultCertificateOptions.
	Telemetry telemetry.Options
	Logger    *slog.Logger
	// Clock replaces time.Now for the assertions' nbf, iat and exp (tests).
	Clock func() time.Time
}

func (o *KeyVaultKeyOptions) signerOptions(pub crypto.PublicKey) *keyvault.SignerOptions {
	return &keyvault.SignerOptions{PublicKey: pub, ClientOptions: o.ClientOptions, AllowLoopback: o.AllowLoopback, Throttle: o.Throttle, MaxThrottleWait: o.MaxThrottleWait, Telemetry: o.Telemetry, Logger: o.Logger}
}

func (o *KeyVaultKeyOptions) assertOpts() assertOpts {
	return assertOpts{algorithm: o.Algorithm, lifetime: o.Lifetime, includeX5C: o.IncludeX5C, clock: o.Clock}
}

// KeyVaultKeySource signs assertions with a Key Vault or Managed HSM key whose
// certificate (or thumbprint) the caller supplies (the .NET library's
// WithKeyVaultKey). It needs only the keys/sign permission and makes no
// lookups: one keys/sign call per assertion.
type KeyVaultKeySource struct {
	cred  azcore.TokenCredential
	cert  *x509.Certificate // nil in Thumbprint mode
	thumb []byte            // Thumbprint mode
	id    string            // sourceIdentity

	mu      sync.Mutex
	final   bool // configured or used
	opts    KeyVaultKeyOptions
	builder *assertion.Builder
	signer  *keyvault.Signer
}

func (s *KeyVaultKeySource) sourceIdentity() string { return s.id }

// keySourceIdentity is the identity of a key source: the key ID as the
// signer uses it when the source is made, and a thumbprint.
func keySourceIdentity(signer *keyvault.Signer, thumb string) string {
	return "keyvault-key:" + strings.ToLower(signer.KeyID()) + "|" + thumb
}

// throttledSince implements throttleReporter.
func (s *KeyVaultKeySource) throttledSince() (time.Time, bool) {
	_, signer := s.use()
	return signer.ThrottledSince()
}

// NewKeyVaultKeySource returns a source for the key keyID (pin its version)
// and the certificate registered on the app for it. The certificate's public
// key is used as the key's: nothing is read from the vault. With only the
// certificate's thumbprint, give a nil cert and set
// KeyVaultKeyOptions.Thumbprint.
func NewKeyVaultKeySource(keyID string, cert *x509.Certificate, cred azcore.TokenCredential, opts *KeyVaultKeyOptions) (*KeyVaultKeySource, error) {
	var o KeyVaultKeyOptions
	if opts != nil {
		o = *opts
	}
	switch {
	case cred == nil:
		return nil, inputErr("cred", "no credential for the vault (cred is nil)")
	case cert == nil && o.Thumbprint == "":
		return nil, inputErr("cert", "no certificate; give the certificate registered on the app, or its Thumbprint in the options")
	case cert != nil && o.Thumbprint != "":
		return nil, inputErr("Thumbprint", "both a certificate and a Thumbprint are given; give one")
	}
	if err := o.assertOpts().validate(); err != nil {
		return nil, err
	}
	s := &KeyVaultKeySource{cred: cred, cert: cert}
	if cert != nil {
		signer, err := keyvault.NewSigner(context.Background(), keyID, cred, o.signerOptions(cert.PublicKey))
		if err != nil {
			return nil, err
		}
		s.id = keySourceIdentity(signer, "x5t#S256:"+sha256Hex(cert.Raw))
		return s, s.build(o, signer)
	}
	thumb, err := jwtassert.ParseThumbprint(o.Thumbprint)
	if err != nil {
		return nil, err
	}
	s.thumb = thumb
	// Without a certificate the signer needs the key's public half to size
	// signatures: one keys/get call here, none per assertion. The signer
	// pins the version read, so the thumbprint keeps naming its key.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	signer, err := keyvault.NewSigner(ctx, keyID, cred, o.signerOptions(nil))
	if err != nil {
		return nil, err
	}
	kind := "x5t#S256:"
	if len(thumb) == sha1.Size {
		kind = "x5t:"
	}
	s.id = keySourceIdentity(signer, kind+hex.EncodeToString(thumb))
	return s, s.build(o, signer)
}

// build makes the builder over signer with o.
func (s *KeyVaultKeySource) build(o KeyVaultKeyOptions, signer *keyvault.Signer) error {
	var b *assertion.Builder
	var err error
	if s.cert != nil {
		b, err = assertion.New(s.cert, signer, o.assertOpts().builderOptions(s.cert))
	} else {
		bo := o.assertOpts().builderOptions(nil)
		bo.Thumbprint = s.thumb
		b, err = assertion.New(nil, signer, bo)
	}
	if err != nil {
		return err
	}
	s.opts, s.builder, s.signer = o, b, signer
	return nil
}

// configure implements configurable.
func (s *KeyVaultKeySource) configure(d inherited) error {
	return configureOnce(&s.mu, &s.final, &s.opts, func(o *KeyVaultKeyOptions) bool {
		return inheritAll(&o.ClientOptions, &o.Telemetry, &o.Logger, d)
	}, func(o KeyVaultKeyOptions) error {
		// The key (and in Thumbprint mode its version) is known: no call.
		signer, err := keyvault.NewSigner(context.Background(), s.signer.KeyID(), s.cred, o.signerOptions(s.signer.Public()))
		if err != nil {
			return err
		}
		return s.build(o, signer)
	})
}

// use returns the builder and signer; from the first call on, the
// source's settings are final.
func (s *KeyVaultKeySource) use() (*assertion.Builder, *keyvault.Signer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.final = true
	return s.builder, s.signer
}

// Assertion implements Source.
func (s *KeyVaultKeySource) Assertion(ctx context.Context, clientID, tokenEndpoint string) (string, error) {
	b, _ := s.use()
	return b.Build(ctx, clientID, tokenEndpoint)
}
