package kvassert

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/kvassert/kvassert/assertion"
	"github.com/kvassert/kvassert/keyvault"
)

// AssertionOptions shape the assertions a source makes.
type AssertionOptions struct {
	// Algorithm is assertion.PS256 (default, with x5t#S256) or
	// assertion.RS256 (with x5t, for ADFS and older setups).
	Algorithm assertion.Algorithm
	// Lifetime of each assertion (default 10 minutes).
	Lifetime time.Duration
	// IncludeX5C adds the certificate in the x5c header, for apps trusted by
	// subject name and issuer.
	IncludeX5C bool
}

func (o AssertionOptions) builderOptions(cert *x509.Certificate) []assertion.Option {
	var opts []assertion.Option
	if o.Algorithm != "" {
		opts = append(opts, assertion.WithAlgorithm(o.Algorithm))
	}
	if o.Lifetime != 0 {
		opts = append(opts, assertion.WithLifetime(o.Lifetime))
	}
	if o.IncludeX5C && cert != nil {
		opts = append(opts, assertion.WithX5C(cert))
	}
	return opts
}

// KeyVaultCertificateOptions configure NewKeyVaultCertificateSource.
type KeyVaultCertificateOptions struct {
	keyvault.CertificateSourceOptions
	AssertionOptions
}

// KeyVaultCertificateSource signs assertions with a Key Vault certificate's
// key (the .NET library's WithKeyVaultCertificate). The certificate is read
// once and cached (see keyvault.CertificateSource); every assertion after
// that is exactly one keys/sign call.
type KeyVaultCertificateSource struct {
	certs *keyvault.CertificateSource
	aopts AssertionOptions

	mu      sync.Mutex
	version string
	builder *assertion.Builder
	signer  *keyvault.Signer
}

// NewKeyVaultCertificateSource returns a source for the certificate name in
// the vault at vaultURL ("https://{vault}.vault.azure.net/"). cred reaches
// the vault (it needs certificates/get and keys/sign, never secrets/get);
// typically azidentity.NewDefaultAzureCredential or a managed identity. No
// call is made until the first assertion.
func NewKeyVaultCertificateSource(vaultURL, name string, cred azcore.TokenCredential, opts *KeyVaultCertificateOptions) (*KeyVaultCertificateSource, error) {
	var o KeyVaultCertificateOptions
	if opts != nil {
		o = *opts
	}
	if err := o.AssertionOptions.validate(); err != nil {
		return nil, err
	}
	certs, err := keyvault.NewCertificateSource(vaultURL, name, cred, &o.CertificateSourceOptions)
	if err != nil {
		return nil, err
	}
	return &KeyVaultCertificateSource{certs: certs, aopts: o.AssertionOptions}, nil
}

func (o AssertionOptions) validate() error {
	if o.Algorithm != "" {
		if _, err := assertion.ParseAlgorithm(string(o.Algorithm)); err != nil {
			return err
		}
	}
	if o.Lifetime != 0 && (o.Lifetime < assertion.MinLifetime || o.Lifetime > assertion.MaxLifetime) {
		return fmt.Errorf("kvassert: assertion lifetime %v is outside %v..%v", o.Lifetime, assertion.MinLifetime, assertion.MaxLifetime)
	}
	return nil
}

// Assertion implements Source.
func (s *KeyVaultCertificateSource) Assertion(ctx context.Context, clientID, tokenEndpoint string) (string, error) {
	b, err := s.current(ctx)
	if err != nil {
		return "", err
	}
	return b.Build(ctx, clientID, tokenEndpoint)
}

// Certificate returns the certificate currently in use (reading it if needed).
func (s *KeyVaultCertificateSource) Certificate(ctx context.Context) (*keyvault.Certificate, error) {
	return s.certs.Certificate(ctx)
}

// Invalidate makes the next assertion re-read the certificate (rotation).
func (s *KeyVaultCertificateSource) Invalidate() { s.certs.Invalidate() }

func (s *KeyVaultCertificateSource) current(ctx context.Context) (*assertion.Builder, error) {
	c, err := s.certs.Certificate(ctx)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.builder != nil && s.version == c.Version {
		return s.builder, nil
	}
	b, err := assertion.New(c.Certificate, c.Signer, s.aopts.builderOptions(c.Certificate)...)
	if err != nil {
		return nil, err
	}
	s.version, s.builder, s.signer = c.Version, b, c.Signer
	return b, nil
}

// ThrottledSince reports whether Key Vault is throttling this source's signs,
// and since when.
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
	keyvault.Options
	AssertionOptions
}

// KeyVaultKeySource signs assertions with a Key Vault or Managed HSM key whose
// certificate (or thumbprint) the caller supplies (the .NET library's
// WithKeyVaultKey). It needs only the keys/sign permission and makes no
// lookups: one keys/sign call per assertion.
type KeyVaultKeySource struct {
	builder *assertion.Builder
	signer  *keyvault.Signer
}

// ThrottledSince reports whether Key Vault is throttling this source's signs,
// and since when.
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
	signer, err := keyvault.NewSigner(context.Background(), keyID, cred, cert.PublicKey, &o.Options)
	if err != nil {
		return nil, err
	}
	b, err := assertion.New(cert, signer, o.AssertionOptions.builderOptions(cert)...)
	if err != nil {
		return nil, err
	}
	return &KeyVaultKeySource{builder: b, signer: signer}, nil
}

// NewKeyVaultKeySourceWithThumbprint is NewKeyVaultKeySource for when only the
// certificate's thumbprint is known (hex as the portal shows it, or
// base64url). The thumbprint decides the assertion's form, as each algorithm
// goes with one thumbprint: a SHA-1 thumbprint makes RS256 assertions with
// x5t, a SHA-256 one PS256 assertions with x5t#S256; AssertionOptions.Algorithm
// may confirm that choice, and the other algorithm is refused (see
// assertion.NewWithThumbprint). The key is read once here (keys/get) for its
// public half, and the source is pinned to the version read: give the
// version of the certificate's key in keyID, or, unversioned, the key's
// current version at this call is the one used from then on, even after the
// key rotates (a new version is not registered on the app until you register
// it). The certificate's validity cannot be checked locally; Entra still
// checks it.
func NewKeyVaultKeySourceWithThumbprint(ctx context.Context, keyID, thumbprint string, cred azcore.TokenCredential, opts *KeyVaultKeyOptions) (*KeyVaultKeySource, error) {
	thumb, err := assertion.ParseThumbprint(thumbprint)
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
	signer, err := keyvault.NewSigner(ctx, keyID, cred, nil, &o.Options)
	if err != nil {
		return nil, err
	}
	b, err := assertion.NewWithThumbprint(thumb, signer, o.AssertionOptions.builderOptions(nil)...)
	if err != nil {
		return nil, err
	}
	return &KeyVaultKeySource{builder: b, signer: signer}, nil
}

// Assertion implements Source.
func (s *KeyVaultKeySource) Assertion(ctx context.Context, clientID, tokenEndpoint string) (string, error) {
	return s.builder.Build(ctx, clientID, tokenEndpoint)
}
