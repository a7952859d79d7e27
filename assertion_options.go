package kvassert

import (
	"crypto/x509"
	"time"

	"github.com/kvassert/kvassert/assertion"
	"github.com/kvassert/kvassert/internal/jwtassert"
	"github.com/kvassert/kvassert/internal/textutil"
)

// assertOpts are the assertion settings every source option struct holds
// (Algorithm, Lifetime, IncludeX5C, Clock), gathered for the builder.
type assertOpts struct {
	algorithm  assertion.Algorithm
	lifetime   time.Duration
	includeX5C bool
	clock      func() time.Time
}

func (o assertOpts) builderOptions(cert *x509.Certificate) *assertion.Options {
	opts := &assertion.Options{Algorithm: o.algorithm, Lifetime: o.lifetime, Now: o.clock}
	if o.includeX5C && cert != nil {
		opts.X5C = []*x509.Certificate{cert}
	}
	return opts
}

// validate refuses an unknown Algorithm and a Lifetime out of range, naming
// the option.
func (o assertOpts) validate() error {
	if o.algorithm != "" {
		if _, err := jwtassert.ParseAlgorithm(string(o.algorithm)); err != nil {
			return inputErr("Algorithm", "Algorithm %q is not %s or %s", textutil.Truncate(string(o.algorithm), 40), assertion.PS256, assertion.RS256)
		}
	}
	if o.lifetime != 0 && (o.lifetime < jwtassert.MinLifetime || o.lifetime > jwtassert.MaxLifetime) {
		return inputErr("Lifetime", "Lifetime %v is outside %v..%v", o.lifetime, jwtassert.MinLifetime, jwtassert.MaxLifetime)
	}
	return nil
}
