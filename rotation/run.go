package rotation

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/kvassert/kvassert/internal/textutil"
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
		return inputErr("interval", "Run needs a positive interval (got %v)", interval)
	}
	for {
		rep, err := r.Roll(ctx)
		if err != nil && ctx.Err() == nil {
			r.cfg.Logger.Warn("kvassert rotation: roll failed; the accepted version stays active; trying again at the next interval",
				"certificate", r.cert, "error", textutil.FirstLine(err.Error(), 300), "steps", len(rep.Steps))
		}
		wait := interval + rand.N(interval/10+1)
		if err := r.cfg.sleep(ctx, wait); err != nil {
			return err
		}
	}
}
