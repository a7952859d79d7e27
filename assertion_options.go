package kvassert

import (
	"crypto/x509"
	"time"

	"github.com/kvassert/kvassert/assertion"
	"github.com/kvassert/kvassert/internal/jwtassert"
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
	// A KeyVaultCertificateSource defaults it to its Options.Now.
	Clock func() time.Time
}

func (o AssertionOptions) builderOptions(cert *x509.Certificate) *assertion.Options {
	opts := &assertion.Options{Algorithm: o.Algorithm, Lifetime: o.Lifetime, Now: o.Clock}
	if o.IncludeX5C && cert != nil {
		opts.X5C = []*x509.Certificate{cert}
	}
	return opts
}

func (o AssertionOptions) validate() error {
	if o.Algorithm != "" {
		if _, err := jwtassert.ParseAlgorithm(string(o.Algorithm)); err != nil {
			return err
		}
	}
	if o.Lifetime != 0 && (o.Lifetime < jwtassert.MinLifetime || o.Lifetime > jwtassert.MaxLifetime) {
		return inputErr("assertion lifetime", "assertion lifetime %v is outside %v..%v", o.Lifetime, jwtassert.MinLifetime, jwtassert.MaxLifetime)
	}
	return nil
}
