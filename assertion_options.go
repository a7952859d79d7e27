package kvassert

import (
	"crypto/x509"
	"time"

	"github.com/kvassert/kvassert/assertion"
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

func (o assertOpts) builderOptions(cert *x509.Certificate) []assertion.Option {
	var opts []assertion.Option
	if o.algorithm != "" {
		opts = append(opts, assertion.WithAlgorithm(o.algorithm))
	}
	if o.lifetime != 0 {
		opts = append(opts, assertion.WithLifetime(o.lifetime))
	}
	if o.includeX5C && cert != nil {
		opts = append(opts, assertion.WithX5C(cert))
	}
	if o.clock != nil {
		opts = append(opts, assertion.WithClock(o.clock))
	}
	return opts
}

// validate refuses an unknown Algorithm and a Lifetime out of range, naming
// the option.
func (o assertOpts) validate() error {
	if o.algorithm != "" {
		if _, err := assertion.ParseAlgorithm(string(o.algorithm)); err != nil {
			return inputErr("Algorithm", "Algorithm %q is not %s or %s", textutil.Truncate(string(o.algorithm), 40), assertion.PS256, assertion.RS256)
		}
	}
	if o.lifetime != 0 && (o.lifetime < assertion.MinLifetime || o.lifetime > assertion.MaxLifetime) {
		return inputErr("Lifetime", "Lifetime %v is outside %v..%v", o.lifetime, assertion.MinLifetime, assertion.MaxLifetime)
	}
	return nil
}
