package rotation

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/internal/rootaccess"
)

// Run rolls once at once and then every interval (plus up to 10 % random
// jitter, so that replicas started together do not roll in step) until ctx
// ends, logging each report. A failed roll is logged and tried again at the
// next interval; the app keeps its accepted version meanwhile. It returns
// ctx's error.
//
// Run it in one replica of a service (or under a leader lock): rolls are
// safe to run concurrently, but one is enough. A daily interval suits
// certificates of months: the roll registers a renewed version long before
// the old one expires.
func (r *Roller) Run(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		return errors.New("rotation: Run needs a positive interval")
	}
	for {
		rep, err := r.Roll(ctx)
		if err != nil && ctx.Err() == nil {
			r.cfg.Logger.Warn("kvassert rotation: roll failed; the accepted version stays active; trying again at the next interval",
				"certificate", r.cfg.Certificate, "error", oneLine(err.Error(), 300), "steps", len(rep.Steps))
		}
		wait := interval + rand.N(interval/10+1)
		if err := r.cfg.Sleep(ctx, wait); err != nil {
			return err
		}
	}
}

// SwitchSource returns an OnAccepted callback that makes src sign with the
// version a roll proved accepted, at once instead of at its next re-read.
func SwitchSource(src *kvassert.KeyVaultCertificateSource) func(version string) {
	return func(version string) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = rootaccess.Cache(src).Accept(ctx, version) // on failure the source finds it on its own
	}
}
