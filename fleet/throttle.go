package fleet

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kvassert/kvassert/internal/inputerr"
	"github.com/kvassert/kvassert/keyvault"
)

// ThrottleOptions configure a Throttle; nil means defaults. A zero field
// takes its default; a negative one is refused.
type ThrottleOptions struct {
	// Prefix namespaces the Redis keys; "kvassert" when empty. Up to 64
	// printable characters without spaces or braces.
	Prefix string
	// Budget is the most signs the whole fleet sends to the vault per
	// Window; 0 for no budget (the 429 hold-off is still shared). Keep it
	// below the vault's limit, e.g. 3,600 for a limit of 4,000 per 10 s.
	Budget int
	// Window is the budget's sliding window. Default 10 s (Key Vault's).
	Window time.Duration
	// OpTimeout bounds each Redis operation. Default 100 ms.
	OpTimeout time.Duration
	// MaxHoldOff bounds a 429 hold-off, stored or read from Redis: a
	// hold-off key with a longer TTL (written by a bug or an attacker) holds
	// signers off for at most this long. Default and maximum 60 s, the
	// order of magnitude of Key Vault's longest Retry-After.
	MaxHoldOff time.Duration
	// BreakerThreshold and BreakerCoolDown configure the circuit breaker as
	// in CacheOptions. Defaults 5 and 5 s.
	BreakerThreshold int
	BreakerCoolDown  time.Duration
	// Logger receives the (rate-limited) warnings an operator acts on
	// (Redis failing); nothing is logged below Warn. slog.Default() when
	// nil.
	Logger *slog.Logger
}

// Throttle paces the signs of every replica for one vault through Redis: a
// 429 seen by any replica holds all of them off for its Retry-After, and an
// optional budget caps the fleet's signs per window. It has the method set
// of keyvault's Throttle interface (Wait, Throttled). When Redis fails it
// behaves as a local, in-process throttle (this replica's hold-off and the
// budget counted for this replica alone) until Redis recovers.
type Throttle struct {
	client  redis.UniversalClient
	o       ThrottleOptions
	holdKey string
	budKey  string
	br      *breaker
	warn    *warner
	member  string
	seq     atomic.Uint64
	hold    atomic.Int64 // local hold-off: unix ns
	local   localBudget

	waits, holds, budgetWaits, fallbacks, errs atomic.Int64
}

// NewThrottle makes a fleet Throttle for the vault named vault: its host,
// e.g. "myvault.vault.azure.net"; every replica signing with the vault must
// use the same name. The client must have ContextTimeoutEnabled set
// (NewClient sets it). Bad input is a *kvassert.InputError.
func NewThrottle(client redis.UniversalClient, vault string, opts *ThrottleOptions) (*Throttle, error) {
	if client == nil {
		return nil, inputerr.New("fleet", "client", "client is nil: NewThrottle needs a Redis client (NewClient)")
	}
	var o ThrottleOptions
	if opts != nil {
		o = *opts
	}
	if err := checkContextTimeouts(client); err != nil {
		return nil, err
	}
	prefix, err := checkPrefix(o.Prefix)
	if err != nil {
		return nil, err
	}
	name := strings.ToLower(vault)
	if name == "" || !printable(name) || strings.ContainsAny(name, "{}") {
		return nil, inputerr.New("fleet", "vault", "invalid vault %q for the throttle: want the vault's host, e.g. myvault.vault.azure.net", truncate(vault))
	}
	if err := o.defaults(); err != nil {
		return nil, err
	}
	id := make([]byte, 8)
	crand.Read(id) //nolint:errcheck // crypto/rand never fails
	base := prefix + ":throttle:{" + name + "}"
	t := &Throttle{
		client: client, o: o, holdKey: base + ":hold", budKey: base + ":budget",
		br: newBreaker(o.BreakerThreshold, o.BreakerCoolDown), warn: newWarner(o.Logger, time.Minute),
		member: hex.EncodeToString(id),
	}
	t.local.init(o.Budget, o.Window)
	return t, nil
}

// defaults refuses negative settings and fills in the zero ones.
func (o *ThrottleOptions) defaults() error {
	if err := nonNegative(map[string]time.Duration{
		"opts.Window": o.Window, "opts.OpTimeout": o.OpTimeout, "opts.MaxHoldOff": o.MaxHoldOff, "opts.BreakerCoolDown": o.BreakerCoolDown,
	}); err != nil {
		return err
	}
	if o.Budget < 0 {
		return inputerr.New("fleet", "opts.Budget", "opts.Budget is negative (%d); use 0 for no budget", o.Budget)
	}
	if o.BreakerThreshold < 0 {
		return inputerr.New("fleet", "opts.BreakerThreshold", "opts.BreakerThreshold is negative (%d); use 0 for the default (5)", o.BreakerThreshold)
	}
	if o.Window == 0 {
		o.Window = 10 * time.Second
	}
	if o.OpTimeout == 0 {
		o.OpTimeout = 100 * time.Millisecond
	}
	if o.MaxHoldOff == 0 || o.MaxHoldOff > maxHoldOff {
		o.MaxHoldOff = maxHoldOff
	}
	return nil
}

// errGateShut is returned when a known wait outlasts the caller's deadline.
func errGateShut(why string, d time.Duration) error {
	return &holdOffError{why: why, d: d}
}

// holdOffError is a wait that would outlast the deadline of the context
// given to Wait: the caller's, or the one keyvault's signer derives from
// its MaxThrottleWait.
type holdOffError struct {
	why string
	d   time.Duration
}

func (e *holdOffError) Error() string {
	if e.why == why429 {
		// keyvault's signer names its own bound when that comes first (As).
		return fmt.Sprintf("fleet: Key Vault signs are held off (%s) for %s more, past the caller's deadline", e.why, e.d.Round(time.Millisecond))
	}
	return fmt.Sprintf("fleet: Key Vault signs are held off (%s) for %s more, past the wait's deadline (the caller's, or keyvault.SignerOptions.MaxThrottleWait)", e.why, e.d.Round(time.Millisecond))
}

// As lets keyvault's signer see a 429 hold-off as its own
// *keyvault.HoldOffError, so that it tells the caller's deadline from its
// MaxThrottleWait bound in its error.
func (e *holdOffError) As(target any) bool {
	if p, ok := target.(**keyvault.HoldOffError); ok && e.why == why429 {
		*p = &keyvault.HoldOffError{Remaining: e.d}
		return true
	}
	return false
}

// maxHoldOff is the default and the largest ThrottleOptions.MaxHoldOff.
const maxHoldOff = time.Minute

// holdRecheck is how often a signer held off by the fleet's hold-off reads
// it again: deleting the key (or a shorter one) releases it this soon.
const holdRecheck = time.Second

// Why a Wait waits.
const (
	why429    = "429 from the vault"
	whyBudget = "fleet sign budget spent"
)

// Wait returns nil when a sign may be sent now (and counts it against the
// budget). It returns an error when ctx ends first, or at once when the
// known wait (a 429 hold-off, or the budget's next free slot) outlasts ctx's
// deadline.
func (t *Throttle) Wait(ctx context.Context) error {
	t.waits.Add(1)
	held := false
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if d := time.Until(time.Unix(0, t.hold.Load())); d > 0 {
			if !held {
				held = true
				t.holds.Add(1)
			}
			if err := sleep(ctx, d, d+rand.N(250*time.Millisecond), why429); err != nil {
				return err
			}
			continue
		}
		if !t.br.allow() {
			t.fallbacks.Add(1)
			return t.local.wait(ctx)
		}
		kind, ms, err := t.gate(ctx)
		if err != nil {
			if ctx.Err() != nil {
				t.br.abort()
				return ctx.Err()
			}
			t.failed(err)
			t.fallbacks.Add(1)
			return t.local.wait(ctx)
		}
		t.br.success()
		d := time.Duration(ms) * time.Millisecond
		switch kind {
		case 0:
			return nil
		case 1: // the fleet's hold-off: wait, reading it again now and then
			if !held {
				held = true
				t.holds.Add(1)
			}
			if err := sleep(ctx, d, min(d, holdRecheck)+rand.N(holdRecheck/4), why429); err != nil {
				return err
			}
		default: // budget spent
			t.budgetWaits.Add(1)
			if err := sleep(ctx, d, d+rand.N(d/4+time.Millisecond), whyBudget); err != nil {
				return err
			}
		}
	}
}

// sleep waits d (jittered: upto), failing at once when ctx's deadline
// comes before d.
func sleep(ctx context.Context, d, upto time.Duration, why string) error {
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
		return errGateShut(why, d)
	}
	timer := time.NewTimer(upto)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

func (t *Throttle) gate(ctx context.Context) (int64, int64, error) {
	octx, cancel := context.WithTimeout(ctx, t.o.OpTimeout)
	defer cancel()
	member := t.member + "-" + fmt.Sprint(t.seq.Add(1))
	res, err := gateScript.Run(octx, t.client, []string{t.holdKey, t.budKey}, t.o.Budget, t.o.Window.Milliseconds(), member, t.o.MaxHoldOff.Milliseconds()).Int64Slice()
	if err != nil {
		return 0, 0, err
	}
	return checkGate(res, t.o.MaxHoldOff, t.o.Window)
}

// checkGate validates the gate's answer: a known kind, and a wait within
// the bounds the script applies (a hostile or broken server gets no longer
// wait out of us).
func checkGate(res []int64, maxHold, window time.Duration) (int64, int64, error) {
	if len(res) != 2 {
		return 0, 0, fmt.Errorf("fleet: unexpected answer from Redis (%d values)", len(res))
	}
	kind, ms := res[0], res[1]
	limit := maxHold
	switch kind {
	case 0:
		return 0, 0, nil
	case 1:
	case 2:
		limit = window
	default:
		return 0, 0, fmt.Errorf("fleet: unexpected answer from Redis (kind %d)", kind)
	}
	return kind, max(1, min(ms, limit.Milliseconds())), nil
}

// Throttled records a 429 from the vault: this replica holds off at once,
// and the hold-off is shared with the fleet through Redis. retryAfter is
// the answer's Retry-After (0 when absent: 1 s, as the signer does).
func (t *Throttle) Throttled(retryAfter time.Duration) {
	if retryAfter <= 0 {
		retryAfter = time.Second
	}
	retryAfter = min(retryAfter, t.o.MaxHoldOff)
	t.holdFor(retryAfter)
	if !t.br.allow() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), t.o.OpTimeout)
	defer cancel()
	if err := holdScript.Run(ctx, t.client, []string{t.holdKey}, retryAfter.Milliseconds(), t.o.MaxHoldOff.Milliseconds()).Err(); err != nil {
		t.failed(err)
		return
	}
	t.br.success()
}

// holdFor extends the local hold-off to at least d from now.
func (t *Throttle) holdFor(d time.Duration) {
	until := time.Now().Add(d).UnixNano()
	for {
		cur := t.hold.Load()
		if cur >= until || t.hold.CompareAndSwap(cur, until) {
			return
		}
	}
}

func (t *Throttle) failed(err error) {
	t.errs.Add(1)
	if t.br.failure() {
		t.warn.warn("fleet: Redis keeps failing; circuit breaker open, pacing Key Vault signs locally", err)
		return
	}
	t.warn.warn("fleet: Redis operation failed; pacing Key Vault signs locally", err)
}

// localBudget is the in-process fallback of the fleet budget: a sliding
// log of this replica's sign times.
type localBudget struct {
	mu     sync.Mutex
	window time.Duration
	times  []time.Time // ring of the last len(times) signs; nil: no budget
	next   int
}

func (b *localBudget) init(budget int, window time.Duration) {
	b.window = window
	if budget > 0 {
		b.times = make([]time.Time, budget)
	}
}

func (b *localBudget) wait(ctx context.Context) error {
	for {
		b.mu.Lock()
		if b.times == nil {
			b.mu.Unlock()
			return nil
		}
		now := time.Now()
		free := b.times[b.next].Add(b.window)
		if !now.Before(free) {
			b.times[b.next] = now
			b.next = (b.next + 1) % len(b.times)
			b.mu.Unlock()
			return nil
		}
		b.mu.Unlock()
		d := free.Sub(now)
		if err := sleep(ctx, d, d, "sign budget spent"); err != nil {
			return err
		}
	}
}
