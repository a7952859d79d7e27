package kvassert

import (
	"context"
	"crypto/sha1" //nolint:gosec // the size of a SHA-1 thumbprint
	"crypto/x509"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/kvassert/kvassert/assertion"
	"github.com/kvassert/kvassert/internal/certcache"
	"github.com/kvassert/kvassert/internal/jwtassert"
	"github.com/kvassert/kvassert/internal/kvclient"
	"github.com/kvassert/kvassert/internal/kvid"
	"github.com/kvassert/kvassert/keyvault"
)

// KeyVaultCertificateOptions configure NewKeyVaultCertificateSource.
type KeyVaultCertificateOptions struct {
	certcache.Options
	AssertionOptions
}

// KeyVaultCertificateSource signs assertions with a Key Vault certificate's
// key (the .NET library's WithKeyVaultCertificate). The certificate is read
// once and cached (see certcache.Cache); every assertion after
// that is exactly one keys/sign call.
//
// It implements Feedback: it notes the certificate version that signed each
// assertion (NoteSigner) and learns from Entra's answers which version is
// registered on the app. When Key Vault renews the certificate (AutoRenew)
// and Entra refuses the new version, it signs with the version Entra accepts
// while that is valid, warns once, and takes the new version as soon as
// Entra accepts it (tried again after each TTL, doubling to 8 TTLs).
type KeyVaultCertificateSource struct {
	certs *certcache.Cache
	aopts AssertionOptions
	id    string // SourceIdentity

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
	if err := o.AssertionOptions.validate(); err != nil {
		return nil, err
	}
	certs, err := certcache.New(vaultURL, name, cred, &o.Options)
	if err != nil {
		return nil, err
	}
	if o.AssertionOptions.Clock == nil {
		o.AssertionOptions.Clock = o.Options.Now
	}
	v, err := kvid.ParseVaultURL(vaultURL) // accepted by NewCertificateCache
	if err != nil {
		return nil, err
	}
	id := "keyvault-certificate:" + strings.ToLower(v.URL) + "certificates/" + strings.ToLower(name)
	return &KeyVaultCertificateSource{certs: certs, aopts: o.AssertionOptions, id: id, builders: map[string]*assertion.Builder{}}, nil
}

// SourceIdentity implements SourceIdentifier: the vault URL and the
// certificate's name.
func (s *KeyVaultCertificateSource) SourceIdentity() string { return s.id }

// Assertion implements Source. It notes the certificate version that signs
// (NoteSigner).
func (s *KeyVaultCertificateSource) Assertion(ctx context.Context, clientID, tokenEndpoint string) (string, error) {
	c, b, err := s.current(ctx)
	if err != nil {
		return "", err
	}
	NoteSigner(ctx, c.Version)
	jwt, err := b.Build(ctx, clientID, tokenEndpoint)
	if err == nil || !vaultRefusedKey(err) || !s.certs.NoteRefused(ctx, c.Version, 0) {
		return jwt, err
	}
	// Key Vault refused to sign with this version (disabled or deleted
	// since it was read, e.g. a renewed version tried again after Entra
	// refused it): the cache set it aside; sign once with what it offers
	// now.
	c2, b2, err2 := s.current(ctx)
	if err2 != nil || c2.Version == c.Version {
		return "", err
	}
	NoteSigner(ctx, c2.Version)
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

// Certificate returns the certificate currently in use (reading it if needed).
func (s *KeyVaultCertificateSource) Certificate(ctx context.Context) (*certcache.Certificate, error) {
	return s.certs.Certificate(ctx)
}

// Cache is the certificate cache behind the source: the versions, the one
// Entra accepts, and Accept for a roller that registered a new version.
func (s *KeyVaultCertificateSource) Cache() *certcache.Cache { return s.certs }

// Invalidate makes the next assertion wait for a fresh read of the latest
// certificate version and use it (see certcache.Cache.Invalidate).
func (s *KeyVaultCertificateSource) Invalidate() { s.certs.Invalidate() }

// Accepted implements Feedback: Entra accepted an assertion signed with
// certificate version signer.
func (s *KeyVaultCertificateSource) Accepted(signer string) { s.certs.NoteAccepted(signer) }

// Refused implements Feedback: Entra refused an assertion signed with
// certificate version signer (see certcache.Cache.Refused).
func (s *KeyVaultCertificateSource) Refused(ctx context.Context, signer string, code int) bool {
	return s.certs.NoteRefused(ctx, signer, code)
}

func (s *KeyVaultCertificateSource) current(ctx context.Context) (*certcache.Certificate, *assertion.Builder, error) {
	c, err := s.certs.Certificate(ctx)
	if err != nil {
		return nil, nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.signer = c.Signer
	if b := s.builders[c.Version]; b != nil {
		return c, b, nil
	}
	b, err := assertion.New(c.Certificate, c.Signer, s.aopts.builderOptions(c.Certificate))
	if err != nil {
		return nil, nil, err
	}
	if len(s.builders) >= 4 {
		clear(s.builders)
	}
	s.builders[c.Version] = b
	return c, b, nil
}

// ThrottledSince implements ThrottleReporter: whether Key Vault is
// throttling this source's signs, and since when.
func (s *KeyVaultCertificateSource) ThrottledSince() (time.Time, bool) {
	s.mu.Lock()
	signer := s.signer
	s.mu.Unlock()
	if signer == nil {
		return time.Time{}, false
	}
	return signer.ThrottledSince()
}

// KeyVaultKeyOptions configure NewKeyVaultKeySource.
type KeyVaultKeyOptions struct {
	keyvault.SignerOptions
	AssertionOptions
}

// KeyVaultKeySource signs assertions with a Key Vault or Managed HSM key whose
// certificate (or thumbprint) the caller supplies (the .NET library's
// WithKeyVaultKey). It needs only the keys/sign permission and makes no
// lookups: one keys/sign call per assertion.
type KeyVaultKeySource struct {
	builder *assertion.Builder
	signer  *keyvault.Signer
	id      string // SourceIdentity
}

// SourceIdentity implements SourceIdentifier: the key ID (versioned when
// the source is pinned to a version) and the certificate's thumbprint.
func (s *KeyVaultKeySource) SourceIdentity() string { return s.id }

// keySourceIdentity is the identity of a key source: the key ID as the
// signer uses it when the source is made, and a thumbprint.
func keySourceIdentity(signer *keyvault.Signer, thumb string) string {
	return "keyvault-key:" + strings.ToLower(signer.KeyID()) + "|" + thumb
}

// ThrottledSince implements ThrottleReporter: whether Key Vault is
// throttling this source's signs, and since when.
func (s *KeyVaultKeySource) ThrottledSince() (time.Time, bool) { return s.signer.ThrottledSince() }

// NewKeyVaultKeySource returns a source for the key keyID (pin its version)
// and the certificate registered on the app for it. The certificate's public
// key is used as the key's: nothing is read from the vault.
func NewKeyVaultKeySource(keyID string, cert *x509.Certificate, cred azcore.TokenCredential, opts *KeyVaultKeyOptions) (*KeyVaultKeySource, error) {
	if cert == nil {
		return nil, errors.New("kvassert: no certificate; give the certificate registered on the app, or use NewKeyVaultKeySourceWithThumbprint")
	}
	var o KeyVaultKeyOptions
	if opts != nil {
		o = *opts
	}
	if err := o.AssertionOptions.validate(); err != nil {
		return nil, err
	}
	so := o.SignerOptions
	so.PublicKey = cert.PublicKey
	signer, err := keyvault.NewSigner(context.Background(), keyID, cred, &so)
	if err != nil {
		return nil, err
	}
	b, err := assertion.New(cert, signer, o.AssertionOptions.builderOptions(cert))
	if err != nil {
		return nil, err
	}
	return &KeyVaultKeySource{builder: b, signer: signer, id: keySourceIdentity(signer, "x5t#S256:"+sha256Hex(cert.Raw))}, nil
}

// NewKeyVaultKeySourceWithThumbprint is NewKeyVaultKeySource for when only the
// certificate's thumbprint is known (hex as the portal shows it, or
// base64url). The thumbprint decides the assertion's form, as each algorithm
// goes with one thumbprint: a SHA-1 thumbprint makes RS256 assertions with
// x5t, a SHA-256 one PS256 assertions with x5t#S256; AssertionOptions.Algorithm
// may confirm that choice, and the other algorithm is refused (see
// assertion.Options.Thumbprint). The key is read once here (keys/get) for its
// public half, and the source is pinned to the version read: give the
// version of the certificate's key in keyID, or, unversioned, the key's
// current version at this call is the one used from then on, even after the
// key rotates (a new version is not registered on the app until you register
// it). The certificate's validity cannot be checked locally; Entra still
// checks it.
func NewKeyVaultKeySourceWithThumbprint(ctx context.Context, keyID, thumbprint string, cred azcore.TokenCredential, opts *KeyVaultKeyOptions) (*KeyVaultKeySource, error) {
	thumb, err := jwtassert.ParseThumbprint(thumbprint)
	if err != nil {
		return nil, err
	}
	var o KeyVaultKeyOptions
	if opts != nil {
		o = *opts
	}
	if err := o.AssertionOptions.validate(); err != nil {
		return nil, err
	}
	// Without a certificate the signer needs the key's public half to size
	// signatures: one keys/get call here, none per assertion. The signer
	// pins the version read, so the thumbprint keeps naming its key.
	so := o.SignerOptions
	so.PublicKey = nil
	signer, err := keyvault.NewSigner(ctx, keyID, cred, &so)
	if err != nil {
		return nil, err
	}
	bo := o.AssertionOptions.builderOptions(nil)
	bo.Thumbprint = thumb
	b, err := assertion.New(nil, signer, bo)
	if err != nil {
		return nil, err
	}
	kind := "x5t#S256:"
	if len(thumb) == sha1.Size {
		kind = "x5t:"
	}
	return &KeyVaultKeySource{builder: b, signer: signer, id: keySourceIdentity(signer, kind+hex.EncodeToString(thumb))}, nil
}

// Assertion implements Source.
func (s *KeyVaultKeySource) Assertion(ctx context.Context, clientID, tokenEndpoint string) (string, error) {
	return s.builder.Build(ctx, clientID, tokenEndpoint)
}
