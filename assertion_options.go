package kvassert

import (
	"crypto/x509"
	"time"

	"github.com/kvassert/kvassert/assertion"
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
	// Clock replaces time.Now for the assertions' nbf, iat and exp: for
	// simulations and tests on an emulator's clock. Leave it nil otherwise.
	// A KeyVaultCertificateSource defaults it to its CertificateCacheOptions.Now.
	Clock func() time.Time
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
	if o.Clock != nil {
		opts = append(opts, assertion.WithClock(o.Clock))
	}
	return opts
}

func (o AssertionOptions) validate() error {
	if o.Algorithm != "" {
		if _, err := assertion.ParseAlgorithm(string(o.Algorithm)); err != nil {
			return err
		}
	}
	if o.Lifetime != 0 && (o.Lifetime < assertion.MinLifetime || o.Lifetime > assertion.MaxLifetime) {
		return inputErr("assertion lifetime", "assertion lifetime %v is outside %v..%v", o.Lifetime, assertion.MinLifetime, assertion.MaxLifetime)
	}
	return nil
}
