package certcache

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azcertificates"

	"github.com/kvassert/kvassert/internal/flight"
	"github.com/kvassert/kvassert/internal/inputerr"
	"github.com/kvassert/kvassert/internal/kvclient"
	"github.com/kvassert/kvassert/internal/kvid"
	"github.com/kvassert/kvassert/internal/obs"
	"github.com/kvassert/kvassert/internal/textutil"
	"github.com/kvassert/kvassert/keyvault"
	"github.com/kvassert/kvassert/telemetry"
)

// Certificate is what a Cache read from the vault: one version of
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
	Signer *keyvault.Signer
	// ReadAt is when the certificate was read from the vault.
	ReadAt time.Time
}

// validAt reports whether the certificate is inside its validity period.
func (c *Certificate) validAt(now time.Time) bool {
	return !now.Before(c.Certificate.NotBefore) && !now.After(c.Certificate.NotAfter)
}

// Options configure a Cache. A nil *Options means the defaults. The
// fields are flat: kvassert.KeyVaultCertificateOptions maps onto them.
type Options struct {
	// ClientOptions for azcertificates and the signers' azkeys clients:
	// transport, retries, logging, cloud (see keyvault.SignerOptions).
	ClientOptions policy.ClientOptions
	// AllowLoopback accepts https vault URLs on this machine, for emulators
	// (see keyvault.SignerOptions.AllowLoopback).
	AllowLoopback bool
	// Throttle paces the signers' signs (see keyvault.Throttle); nil means
	// the process-wide gate of the vault's host.
	Throttle keyvault.Throttle
	// MaxThrottleWait bounds how long one sign waits out throttling (see
	// keyvault.SignerOptions); zero means 2 minutes, negative is refused.
	MaxThrottleWait time.Duration
	// Telemetry selects where the certificate reads', the signs' and
	// throttling's metrics and spans go (see docs/telemetry.md).
	Telemetry telemetry.Options
	// Logger receives what an operator must act on (Warn: expiry, a
	// refused version, failing reads) and, at Debug, the routine notes
	// (version switches, Entra accepting a version). Nil means
	// slog.Default(). Nothing secret is ever logged.
	Logger *slog.Logger
	// Version pins a certificate version; empty means the latest, re-read
	// in the background when TTL passes, at once on Invalidate, and when
	// Entra refuses the version in use (rotation without a restart).
	Version string
	// TTL is how often the latest version is looked for (default 1 hour).
	// The look happens in the background on the first use after TTL; the
	// cached certificate is served meanwhile.
	TTL time.Duration
	// ReadTimeout bounds one vault read that callers share (default 1
	// minute); each caller still returns when its own context ends.
	ReadTimeout time.Duration
	// ExpiryWarning is how close to its expiry a certificate must be for a
	// warning to be logged (default 30 days).
	ExpiryWarning time.Duration
	// Now replaces time.Now (tests).
	Now func() time.Time
}

// Read failures are retried after readRetryBase, doubling up to
// readRetryMax, with jitter (flight.Backoff).
const (
	readRetryBase = 2 * time.Second
	readRetryMax  = 5 * time.Minute
)

// Cache reads a Key Vault certificate and caches it. Safe for
// concurrent use.
//
// Serving: Certificate returns the cached certificate at once while it is
// valid; after TTL it looks for a new version in the background. Only a
// caller with no usable certificate (none read yet, expired, or after
// Invalidate) waits for a read. Concurrent reads are merged into one vault
// call, and a failed read is not tried again before a back-off (2 s doubling
// to 5 min, with jitter).
//
// Accepted-version memory: the cache remembers which version Entra has
// accepted (NoteAccepted, or Adopt) and which it refused (NoteRefused). When Key
// Vault renews the certificate (an AutoRenew lifetime action) the new
// version has a new key that is not registered on the app yet: Entra
// refuses it, and the cache goes back to the accepted version, warns once
// naming the new version's thumbprint, and tries the new version again
// after TTL, doubling to 8 TTLs, until Entra accepts it. With no accepted
// version known (a restart after the renewal), it looks for an older
// valid, enabled version in the versions list (certificates/list).
type Cache struct {
	certs *azcertificates.Client
	cred  azcore.TokenCredential
	vault kvid.Vault
	name  string
	opts  Options

	reads   flight.Group[string, *Certificate]
	backoff flight.Backoff // after a failed read of the latest version

	mu            sync.Mutex
	active        *Certificate            // signs assertions
	newest        *Certificate            // the latest version as last read
	accepted      *Certificate            // the newest version Entra accepted; nil while unknown
	known         map[string]*Certificate // versions read, by version (a few)
	refused       map[string]*refusal     // versions never accepted that Entra refused
	checked       time.Time               // last successful read of the latest version
	stale         bool                    // Invalidate: the next caller waits for a read
	lastErr       error                   // the last failed read
	rotatedAt     time.Time               // the last re-read after a refusal
	warned        string                  // version already warned about (expiry)
	listWarn      bool                    // the versions list was denied (warned once)
	unusableNoted string                  // the last unusable latest version logged (once each)

	tel *obs.KeyVault // the vault's instruments (Options.Telemetry)
}

// New returns a cache for certificate name in the vault at vaultURL. It
// makes no call until Certificate is first used. cred needs
// certificates/get and keys/sign on the vault, and certificates/list to go
// back to an older version after a restart (see Cache). Bad input is
// refused with a *kvassert.InputError naming it.
func New(vaultURL, name string, cred azcore.TokenCredential, opts *Options) (*Cache, error) {
	v, err := kvid.ParseVaultURL(vaultURL)
	if err != nil {
		return nil, err
	}
	if v.ManagedHSM {
		return nil, inputErr("vault URL", "Managed HSM has no certificates; keep the certificate in a Key Vault, or use the key directly with its certificate (a Key source)")
	}
	if err := kvid.CheckName(name); err != nil {
		return nil, err
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Version != "" && !kvid.ValidVersion(o.Version) {
		return nil, inputErr("version", "%q is not a certificate version (32 hexadecimal digits)", textutil.Truncate(o.Version, 40))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"TTL", o.TTL}, {"ReadTimeout", o.ReadTimeout}, {"ExpiryWarning", o.ExpiryWarning}, {"MaxThrottleWait", o.MaxThrottleWait}} {
		if d.v < 0 {
			return nil, inputErr(d.name, "%s is %v; it must not be negative (0 means the default)", d.name, d.v)
		}
	}
	if o.TTL == 0 {
		o.TTL = time.Hour
	}
	if o.ReadTimeout == 0 {
		o.ReadTimeout = time.Minute
	}
	if o.ExpiryWarning == 0 {
		o.ExpiryWarning = 30 * 24 * time.Hour
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	// The cache logs while holding its lock: a panicking handler must not
	// leave it held.
	o.Logger = flight.SafeLogger(o.Logger)
	if o.Now == nil {
		o.Now = time.Now
	}
	if err := kvclient.CheckCredential(cred); err != nil {
		return nil, err
	}
	if err := v.CheckLoopback(o.AllowLoopback); err != nil {
		return nil, err
	}
	co := kvclient.ClientOptions(o.ClientOptions, o.Telemetry)
	certs, err := azcertificates.NewClient(v.URL, kvclient.Guard(cred), &azcertificates.ClientOptions{ClientOptions: co, DisableChallengeResourceVerification: v.Loopback})
	if err != nil {
		return nil, err
	}
	c := &Cache{
		certs: certs, cred: cred, vault: v, name: name, opts: o,
		backoff: flight.Backoff{Base: readRetryBase, Max: readRetryMax},
		known:   map[string]*Certificate{}, refused: map[string]*refusal{},
		tel: obs.NewKeyVault(o.Telemetry, v.Host),
	}
	c.reads.Name = "certificate read"
	c.reads.OnPanic = func(pe *flight.PanicError) {
		o.Logger.Debug("kvassert: recovered a panic in a certificate read; its callers got an error", "vault", v.Host, "certificate", name, "panic", fmt.Sprint(pe.Value), "stack", string(pe.Stack))
	}
	c.observe()
	return c, nil
}

// Name is the certificate name.
func (s *Cache) Name() string { return s.name }

// VaultURL is the normalised vault URL.
func (s *Cache) VaultURL() string { return s.vault.URL }

// Invalidate makes the next Certificate call wait for a fresh read of the
// latest version and use it, and forgets Entra's refusals, so a version
// registered on the app since it was refused is used at once. A failure of
// that read is returned, not masked by the cached certificate.
func (s *Cache) Invalidate() {
	s.mu.Lock()
	s.stale = true
	clear(s.refused)
	s.mu.Unlock()
}

// Certificate returns the certificate to sign with now. It is served from
// the cache while valid, even when TTL has passed or a read is failing (the
// vault being slow or briefly unavailable must not stop token acquisition);
// only a caller with no valid certificate waits for a read.
func (s *Cache) Certificate(ctx context.Context) (*Certificate, error) {
	now := s.opts.Now()
	s.mu.Lock()
	s.probeLocked(now)
	cur, stale, lastErr := s.active, s.stale, s.lastErr
	due := now.Sub(s.checked) >= s.opts.TTL
	s.mu.Unlock()

	ready := s.backoff.Ready(now)
	if cur != nil && !stale && cur.validAt(now) {
		if due && ready {
			s.reads.Start(ctx, latestKey, s.opts.ReadTimeout, s.readLatest)
		}
		return cur, nil
	}
	if !stale && !ready {
		// A read failed, or found only an expired certificate, moments ago:
		// do not send another one per caller.
		if cur != nil {
			return cur, nil // expired or not yet valid: the assertion builder says so
		}
		if lastErr != nil {
			return nil, fmt.Errorf("%w (not retried before the back-off ends)", lastErr)
		}
	}
	c, err := s.reads.Do(ctx, latestKey, s.opts.ReadTimeout, s.readLatest)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.active != nil {
		return s.active, nil
	}
	return c, nil
}

// latestKey is the flight key of reads of the latest (or pinned) version.
const latestKey = "latest"

// readLatest reads the latest version (or the pinned one) and adopts it.
// A latest version that cannot sign now (not yet valid, expired, disabled,
// pending, not RSA) does not replace a valid version: the one in use is
// kept, or, with none, the newest older version that can sign is found.
func (s *Cache) readLatest(ctx context.Context) (*Certificate, error) {
	c, err := s.fetch(ctx, s.opts.Version)
	now := s.opts.Now()
	if s.opts.Version == "" && latestUnusable(c, err, now) {
		if kept, ok := s.keepUsable(ctx, c, err, now); ok {
			return kept, nil
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.lastErr = err
		next := s.backoff.Failed(now)
		if s.active != nil && s.backoff.Failures() == 1 {
			s.opts.Logger.Warn("kvassert: reading the certificate failed; the cached certificate is still used",
				"vault", s.vault.Host, "certificate", s.name, "retry_after", next.Sub(now).Round(time.Second).String(), "error", err)
		}
		return nil, err
	}
	s.backoff.Succeeded()
	if !c.validAt(now) {
		// Do not read an expired certificate again on every call.
		s.backoff.Failed(now)
	}
	s.adoptLatestLocked(c, now)
	return c, nil
}

// unusable reports whether the latest version's read found a version that
// cannot sign now.
func latestUnusable(c *Certificate, err error, now time.Time) bool {
	var ue *unusableError
	if err != nil {
		return errors.As(err, &ue)
	}
	return !c.validAt(now)
}

// keepUsable handles a latest version that cannot sign now (c, or the
// refusal err): it keeps the valid version in use, or, with none, adopts
// the newest older version that is valid. It reports false when there is
// no such version (the caller then adopts or reports the latest as before).
func (s *Cache) keepUsable(ctx context.Context, c *Certificate, err error, now time.Time) (*Certificate, bool) {
	s.mu.Lock()
	cur := s.active
	s.mu.Unlock()
	latest := ""
	var ue *unusableError
	if c != nil {
		latest = c.Version
	} else if errors.As(err, &ue) {
		latest = ue.version
	}
	if cur == nil || !cur.validAt(now) || cur.Version == latest {
		// Nothing valid in use, or what is in use is the latest version
		// that cannot sign (disabled since it was tried): an older one.
		if cur = s.olderVersion(ctx, latest); cur == nil {
			return nil, false
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.backoff.Succeeded()
	s.checked, s.stale, s.lastErr = now, false, nil
	why := ""
	if c != nil {
		s.rememberLocked(c)
		s.newest = c
		why = "valid from " + c.Certificate.NotBefore.UTC().Format(time.RFC3339) + " to " + c.Certificate.NotAfter.UTC().Format(time.RFC3339)
	} else {
		why = err.Error()
	}
	s.rememberLocked(cur)
	if s.active == nil || s.active.Version != cur.Version {
		s.switchLocked(cur)
	}
	if s.unusableNoted != why {
		s.unusableNoted = why
		level := slog.LevelDebug // a pre-staged version is routine
		if c == nil || now.After(c.Certificate.NotAfter) {
			level = slog.LevelWarn // disabled, pending, not RSA or expired: someone should look
		}
		s.opts.Logger.Log(ctx, level, "kvassert: the latest certificate version cannot sign now; signing with the newest version that can",
			"vault", s.vault.Host, "certificate", s.name, "latest", why, "signing_with_version", cur.Version)
	}
	return s.active, true
}

// adoptLatestLocked records c as the latest version and decides what to
// sign with: c, unless Entra refused it, an accepted version is still
// usable, and c's next try has not come yet.
func (s *Cache) adoptLatestLocked(c *Certificate, now time.Time) {
	s.checked, s.stale, s.lastErr = now, false, nil
	s.rememberLocked(c)
	s.newest = c
	s.maybeWarnLocked(c)
	if r := s.refused[c.Version]; r != nil && now.Before(r.probe) && s.fallbackLocked(now, c.Version) != nil {
		if s.active == nil || s.active.Version == c.Version {
			s.active = s.fallbackLocked(now, c.Version)
		}
		return
	}
	s.switchLocked(c)
}

// switchLocked makes c the certificate to sign with.
func (s *Cache) switchLocked(c *Certificate) {
	if prev := s.active; prev != nil && prev.Version != c.Version {
		s.opts.Logger.Debug("kvassert: certificate version in use changed", "vault", s.vault.Host, "certificate", s.name, "from_version", prev.Version, "to_version", c.Version)
	}
	s.active = c
}

// rememberLocked keeps c among the known versions (and replaces the copies
// of its version held as active, newest or accepted by this fresher read).
func (s *Cache) rememberLocked(c *Certificate) {
	if len(s.known) >= 8 {
		for v := range s.known {
			if !s.inUseLocked(v) {
				delete(s.known, v)
			}
		}
	}
	s.known[c.Version] = c
	for _, p := range []**Certificate{&s.active, &s.newest, &s.accepted} {
		if *p != nil && (*p).Version == c.Version {
			*p = c
		}
	}
}

func (s *Cache) inUseLocked(v string) bool {
	for _, c := range []*Certificate{s.active, s.newest, s.accepted} {
		if c != nil && c.Version == v {
			return true
		}
	}
	return false
}

func (s *Cache) maybeWarnLocked(c *Certificate) {
	left := c.Certificate.NotAfter.Sub(s.opts.Now())
	if left > s.opts.ExpiryWarning || s.warned == c.Version {
		return
	}
	s.warned = c.Version
	s.opts.Logger.Warn("kvassert: certificate expires soon; create a new version and register it on the app",
		"vault", s.vault.Host, "certificate", s.name, "version", c.Version,
		"not_after", c.Certificate.NotAfter.UTC().Format(time.RFC3339), "days_left", int(left.Hours()/24))
}

// inputErr is the error for input the cache refuses (a kvassert.InputError).
func inputErr(input, format string, args ...any) error {
	return inputerr.New("keyvault", input, format, args...)
}

// WithSigner sets the fields o shares with keyvault.SignerOptions
// (ClientOptions, AllowLoopback, Throttle, MaxThrottleWait, Telemetry and,
// when so has one, Logger) from so, and returns o.
func (o *Options) WithSigner(so keyvault.SignerOptions) *Options {
	o.ClientOptions, o.AllowLoopback, o.Throttle, o.MaxThrottleWait, o.Telemetry = so.ClientOptions, so.AllowLoopback, so.Throttle, so.MaxThrottleWait, so.Telemetry
	if so.Logger != nil {
		o.Logger = so.Logger
	}
	return o
}
