package kvassert

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"time"

	"github.com/kvassert/kvassert/assertion"
	"github.com/kvassert/kvassert/internal/certfile"
)

// LocalSource signs assertions with a key held in this process: for
// development and tests, or with any crypto.Signer (an HSM through PKCS#11, a
// TPM). Prefer a Key Vault source in production: a key in a file can be
// stolen.
type LocalSource struct {
	builder *assertion.Builder
	id      string
}

// LocalCertificateOptions configure NewLocalSource. The zero value (or nil)
// is the defaults.
type LocalCertificateOptions struct {
	// Algorithm, Lifetime and IncludeX5C: see KeyVaultCertificateOptions.
	Algorithm  assertion.Algorithm
	Lifetime   time.Duration
	IncludeX5C bool
	// Clock replaces time.Now for the assertions' nbf, iat and exp (tests).
	Clock func() time.Time
}

// NewLocalSource returns a source for cert and its private key signer.
func NewLocalSource(cert *x509.Certificate, signer crypto.Signer, opts *LocalCertificateOptions) (*LocalSource, error) {
	var o LocalCertificateOptions
	if opts != nil {
		o = *opts
	}
	switch {
	case cert == nil:
		return nil, inputErr("cert", "no certificate (cert is nil)")
	case signer == nil:
		return nil, inputErr("signer", "no private key (signer is nil)")
	}
	ao := assertOpts{algorithm: o.Algorithm, lifetime: o.Lifetime, includeX5C: o.IncludeX5C, clock: o.Clock}
	if err := ao.validate(); err != nil {
		return nil, err
	}
	b, err := assertion.New(cert, signer, ao.builderOptions(cert))
	if err != nil {
		return nil, err
	}
	return &LocalSource{builder: b, id: "local:x5t#S256:" + sha256Hex(cert.Raw)}, nil
}

// sourceIdentity is the certificate's SHA-256 thumbprint.
func (s *LocalSource) sourceIdentity() string { return s.id }

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Assertion implements Source.
func (s *LocalSource) Assertion(ctx context.Context, clientID, tokenEndpoint string) (string, error) {
	return s.builder.Build(ctx, clientID, tokenEndpoint)
}

// ParseCertificateData parses a certificate and its private key for
// NewLocalSource: PEM (certificate and key, in any order) or PKCS#12 opened
// with password, as azidentity.ParseCertificates accepts them. It returns
// the certificate whose public key matches the private key. Its errors are
// *InputError (Input "certificate data").
func ParseCertificateData(data, password []byte) (*x509.Certificate, crypto.Signer, error) {
	return certfile.Parse(data, password)
}
