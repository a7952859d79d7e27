package fleet

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/redis/go-redis/v9"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/internal/inputerr"
	"github.com/kvassert/kvassert/internal/obs"
	"github.com/kvassert/kvassert/telemetry"
)

// CacheOptions configure a Cache; nil means defaults. A zero field takes
// its default; a negative duration or count is refused.
type CacheOptions struct {
	// OlderKeys only decrypt: during a key rotation, give the new key to
	// NewCache and keep the old one here for as long as its entries live (at
	// most a token lifetime). Key IDs must be distinct. Roll it out in two
	// steps: first add the new key here on every replica, then make it
	// active; a replica that does not know the new key cannot stop the
	// tokens stored under it when a tenant is refused or forgotten.
	OlderKeys []*Key
	// Prefix namespaces every Redis key; "kvassert" when empty. Up to 64
	// printable characters without spaces or braces.
	Prefix string
	// LockTTL is the life of the acquisition lock. The owner renews it while
	// it acquires; if the owner dies, another replica takes over at most
	// LockTTL later. Default 10 s, at least 100 ms. Give every replica of a
	// fleet the same LockTTL: a lock with no expiry, or one that lives
	// longer than twice LockTTL, is not a live owner's and is taken over at
	// once.
	LockTTL time.Duration
	// WaitTimeout bounds the wait for another replica's acquisition; then
	// this replica acquires on its own. Default 60 s (the caller's context
	// may end the wait sooner).
	WaitTimeout time.Duration
	// OpTimeout bounds each Redis operation (waiting for a pooled
	// connection included). Default 100 ms.
	OpTimeout time.Duration
	// MinRemaining is the least life a shared token must have to be served
	// or stored. Default 1 min.
	MinRemaining time.Duration
	// BreakerThreshold is the number of consecutive Redis failures that
	// open the circuit breaker. Default 5.
	BreakerThreshold int
	// BreakerCoolDown is how long the breaker stays open before one probe.
	// Default 5 s.
	BreakerCoolDown time.Duration
	// Logger receives the (rate-limited) warnings an operator acts on:
	// Redis failing, the breaker opening, rejected entries. Nothing is
	// logged below Warn. slog.Default() when nil.
	Logger *slog.Logger
	// WarnEvery is the least time between two warnings. Default 1 min.
	WarnEvery time.Duration
	// Telemetry selects where the shared cache's metrics go (lookups, lock
	// waits, fallbacks; default: the global OpenTelemetry providers).
	Telemetry telemetry.Options
}

// Cache is a kvassert.SharedCache on Redis: tokens encrypted with
// AES-256-GCM, fleet-wide single flight and fleet-wide refresh. It is safe
// for concurrent use. Close it when done.
type Cache struct {
	client  redis.UniversalClient
	ring    *keyring
	prefix  string
	o       CacheOptions
	br      *breaker
	warn    *warner
	notify  *notifier
	c       counters
	ownerID string
	seq     atomic.Uint64
	tel     *obs.SharedCache
}

var _ kvassert.SharedCache = (*Cache)(nil)

// NewCache makes a Cache on client whose entries key encrypts (and
// decrypts; see CacheOptions.OlderKeys for a rotation). The client must
// have ContextTimeoutEnabled set, so that the per-operation timeouts bound
// a slow Redis (NewClient sets it). Bad input is a *kvassert.InputError.
func NewCache(client redis.UniversalClient, key *Key, opts *CacheOptions) (*Cache, error) {
	if client == nil {
		return nil, inputerr.New("fleet", "client", "client is nil: NewCache needs a Redis client (NewClient)")
	}
	var o CacheOptions
	if opts != nil {
		o = *opts
	}
	ring, err := newKeyring(key, o.OlderKeys...)
	if err != nil {
		return nil, err
	}
	if err := checkContextTimeouts(client); err != nil {
		return nil, err
	}
	prefix, err := checkPrefix(o.Prefix)
	if err != nil {
		return nil, err
	}
	if err := o.defaults(); err != nil {
		return nil, err
	}
	id := make([]byte, 12)
	crand.Read(id) //nolint:errcheck // crypto/rand never fails
	return &Cache{
		client: client, ring: ring, prefix: prefix, o: o,
		br:      newBreaker(o.BreakerThreshold, o.BreakerCoolDown),
		warn:    newWarner(o.Logger, o.WarnEvery),
		notify:  newNotifier(client, channelFor(prefix)),
		ownerID: hex.EncodeToString(id),
		tel:     obs.NewSharedCache(o.Telemetry),
	}, nil
}

// defaults refuses negative settings and fills in the zero ones.
func (o *CacheOptions) defaults() error {
	if err := nonNegative(map[string]time.Duration{
		"opts.LockTTL": o.LockTTL, "opts.WaitTimeout": o.WaitTimeout, "opts.OpTimeout": o.OpTimeout,
		"opts.MinRemaining": o.MinRemaining, "opts.BreakerCoolDown": o.BreakerCoolDown, "opts.WarnEvery": o.WarnEvery,
	}); err != nil {
		return err
	}
	if o.BreakerThreshold < 0 {
		return inputerr.New("fleet", "opts.BreakerThreshold", "opts.BreakerThreshold is negative (%d); use 0 for the default (5)", o.BreakerThreshold)
	}
	if o.LockTTL == 0 {
		o.LockTTL = 10 * time.Second
	}
	if o.LockTTL < 100*time.Millisecond {
		return inputerr.New("fleet", "opts.LockTTL", "opts.LockTTL %s is too short (at least 100ms)", o.LockTTL)
	}
	if o.WaitTimeout == 0 {
		o.WaitTimeout = time.Minute
	}
	if o.OpTimeout == 0 {
		o.OpTimeout = 100 * time.Millisecond
	}
	if o.MinRemaining == 0 {
		o.MinRemaining = time.Minute
	}
	return nil
}

// nonNegative refuses the first negative duration (in name order), naming
// its option.
func nonNegative(ds map[string]time.Duration) error {
	names := make([]string, 0, len(ds))
	for n := range ds {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if ds[n] < 0 {
			return inputerr.New("fleet", n, "%s is negative (%s); use 0 for the default", n, ds[n])
		}
	}
	return nil
}

// checkContextTimeouts refuses clients whose operations would ignore the
// per-operation timeouts.
func checkContextTimeouts(client redis.UniversalClient) error {
	var on bool
	switch c := client.(type) {
	case *redis.Client:
		on = c.Options().ContextTimeoutEnabled
	case *redis.ClusterClient:
		on = c.Options().ContextTimeoutEnabled
	default:
		return nil
	}
	if !on {
		return inputerr.New("fleet", "client", "the Redis client must set ContextTimeoutEnabled: true, so that a slow Redis costs at most OpTimeout (or build it with fleet.NewClient)")
	}
	return nil
}

// Close stops the cache's subscription. It does not close the client.
func (c *Cache) Close() error { return c.notify.close() }

// Token implements kvassert.SharedCache. Tokens for a claims challenge are
// not shared: they answer one resource's challenge to one caller, and are
// acquired locally every time.
func (c *Cache) Token(ctx context.Context, key kvassert.SharedKey, stale azcore.AccessToken, acquire func(context.Context) (azcore.AccessToken, error)) (azcore.AccessToken, error) {
	if key.Claims != "" {
		c.c.bypassed.Add(1)
		return acquire(ctx)
	}
	tk, err := keysFor(c.prefix, c.ring.nameKey(), key)
	if err != nil {
		c.c.bypassed.Add(1)
		return acquire(ctx)
	}
	if !c.br.allow() {
		c.c.fallbacks.Add(1)
		c.tel.Fallback(ctx, errBreakerOpen)
		return acquire(ctx)
	}
	v, pttl, epoch, err := c.peek(ctx, tk)
	if err != nil {
		c.tel.Lookup(ctx, false, err)
		return c.fallback(ctx, err, acquire)
	}
	var seen rejected
	if tok, ok := c.usable(v, epoch, tk, stale, &seen); ok {
		c.c.hits.Add(1)
		c.tel.Lookup(ctx, true, nil)
		return tok, nil
	}
	if tok, ok := c.fromOlderNames(ctx, key, stale, &seen); ok {
		c.c.hits.Add(1)
		c.tel.Lookup(ctx, true, nil)
		return tok, nil
	}
	c.c.misses.Add(1)
	c.tel.Lookup(ctx, false, nil)
	return c.lockOrWait(ctx, tk, stale, pttl <= 0, epoch, &seen, acquire)
}

// fromOlderNames looks for the token under the names of the keyring's
// older keys: during a key rotation, the replicas that still encrypt with
// the old key store their entries there.
func (c *Cache) fromOlderNames(ctx context.Context, key kvassert.SharedKey, stale azcore.AccessToken, seen *rejected) (azcore.AccessToken, bool) {
	for _, nk := range c.ring.olderNameKeys() {
		tk, err := keysFor(c.prefix, nk, key)
		if err != nil {
			return azcore.AccessToken{}, false
		}
		v, _, epoch, err := c.peek(ctx, tk)
		if err != nil {
			c.record(ctx, err)
			return azcore.AccessToken{}, false
		}
		if tok, ok := c.usable(v, epoch, tk, stale, seen); ok {
			return tok, true
		}
	}
	return azcore.AccessToken{}, false
}

// usable decrypts an entry and reports whether it can be served: it
// decrypts under this key, was stored under the tenant's current epoch
// (read with it: no Refuse or Forget since), lives at least MinRemaining
// more, and is not the stale token the caller wants replaced.
func (c *Cache) usable(v []byte, epoch string, tk tokenKeys, stale azcore.AccessToken, seen *rejected) (azcore.AccessToken, bool) {
	if v == nil {
		return azcore.AccessToken{}, false
	}
	pt, err := c.ring.open(v, adFor(tk.key))
	var tok azcore.AccessToken
	var stored string
	ok := err == nil
	if ok {
		tok, stored, ok = decodeToken(pt)
		clear(pt)
	}
	if !ok {
		if seen.first(v) {
			c.c.decryptFailures.Add(1)
			c.warn.warn("fleet: rejected a shared token entry", errBadEntry)
		}
		return azcore.AccessToken{}, false
	}
	if stored != epoch {
		return azcore.AccessToken{}, false // refused or forgotten since
	}
	if time.Until(tok.ExpiresOn) <= c.o.MinRemaining {
		return azcore.AccessToken{}, false
	}
	if stale.Token != "" && tok.Token == stale.Token {
		return azcore.AccessToken{}, false
	}
	return tok, true
}

// rejected remembers the last entry a call rejected, so that one bad entry
// read twice in one call is counted once.
type rejected struct{ last []byte }

func (r *rejected) first(v []byte) bool {
	if r.last != nil && string(r.last) == string(v) {
		return false
	}
	r.last = v
	return true
}

func (c *Cache) opCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.o.OpTimeout)
}

// record feeds the breaker and the counters with an operation's outcome.
func (c *Cache) record(ctx context.Context, err error) {
	if err == nil || errors.Is(err, redis.Nil) {
		c.br.success()
		return
	}
	if ctx.Err() != nil {
		c.br.abort() // the caller gave up; Redis is not to blame
		return
	}
	c.c.errors.Add(1)
	if c.br.failure() {
		c.warn.warn("fleet: Redis keeps failing; circuit breaker open, acquiring tokens locally", err)
		return
	}
	c.warn.warn("fleet: Redis operation failed; acquiring locally", err)
}

// fallback records a failure and acquires locally.
func (c *Cache) fallback(ctx context.Context, err error, acquire func(context.Context) (azcore.AccessToken, error)) (azcore.AccessToken, error) {
	c.record(ctx, err)
	if ctx.Err() != nil {
		// The caller gave up (its deadline may have ended the Redis call):
		// nobody is left to acquire for.
		return azcore.AccessToken{}, ctx.Err()
	}
	c.c.fallbacks.Add(1)
	c.tel.Fallback(ctx, err)
	return acquire(ctx)
}
