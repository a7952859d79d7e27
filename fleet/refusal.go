package fleet

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/internal/inputerr"
)

// Tenant refusals (issue 21). Each tenant of an app has, in the Cluster
// slot of its tokens, an epoch and at most one refusal:
//
//	<prefix>:<app>:{<tenant's keyed hash>}:epoch    a random value, or absent
//	<prefix>:<app>:{<tenant's keyed hash>}:refusal  the refusal, encrypted
//
// Every token entry carries the epoch it was stored under, and the script
// that reads a token reads the epoch with it (no extra round trip): Refuse
// and Forget move the epoch to a fresh random value, so every token the
// fleet stored for the tenant before, whatever its scope, is a miss on
// every replica from then on. A token acquired across the move is not
// stored (the store script compares the epoch). The refusal is sealed like
// a token entry, bound to the app and the tenant (so a refusal copied under
// another tenant's name is rejected), and lives until its Until plus a
// margin, at most maxRefusalLife.

const (
	// maxRefusalLife bounds a shared refusal: a Refuse whose Until is
	// further away stores it with Until cut to this (the credential's
	// back-off ends at an hour).
	maxRefusalLife = 24 * time.Hour
	// refusalMargin is how much longer than its Until a refusal stays in
	// Redis (Refusal ignores it once Until has passed).
	refusalMargin = time.Minute
	// maxRefusalEntry bounds a refusal entry read from Redis (ours are
	// under 100 bytes): a longer value is garbage and not transferred.
	maxRefusalEntry = 512
	// maxEpochLife is the life of an epoch set by Refuse or Forget: longer
	// than any token entry stored before it (at most maxTokenLife), so that
	// none of them matches again once it expires. Storing a token extends
	// the epoch to outlive the token by epochMargin.
	maxEpochLife = maxTokenLife + time.Hour
	epochMargin  = time.Minute
)

// newEpoch is a fresh random epoch: 32 hex digits.
func newEpoch() string {
	b := make([]byte, 16)
	crand.Read(b) //nolint:errcheck // crypto/rand never fails
	return hex.EncodeToString(b)
}

// errBadRefusal counts as a rejected entry: a refusal entry that does not
// open, or opens to nonsense.
var errBadRefusal = errors.New("fleet: shared tenant refusal cannot be decrypted or is invalid")

// Refuse implements kvassert.SharedCache: it moves the tenant's epoch (every
// token stored for it before, under this cache's key and its OlderKeys,
// stops being served by every replica) and stores r, sealed, until
// r.Until plus a minute (Until at most 24 hours away; a later one is cut).
// An r whose Until has passed only moves the epoch. It fails when Redis
// does (or the circuit breaker is open): the caller then goes on without
// sharing. A key without client ID, authority or tenant, or an r with a
// code or failure count below zero, is a *kvassert.InputError.
func (c *Cache) Refuse(ctx context.Context, key kvassert.SharedKey, r kvassert.TenantRefusal) error {
	if r.Code <= 0 {
		return inputerr.New("fleet", "r.Code", "r.Code is %d; want the AADSTS code of the refusal", r.Code)
	}
	if r.Failures < 0 {
		return inputerr.New("fleet", "r.Failures", "r.Failures is negative (%d)", r.Failures)
	}
	names, err := c.tenantNames(key)
	if err != nil {
		return err
	}
	now := time.Now()
	if limit := now.Add(maxRefusalLife); r.Until.After(limit) {
		r.Until = limit
	}
	var entry []byte
	var ttl time.Duration
	if r.Until.After(now) {
		tk := names[0]
		entry = c.ring.seal(encodeRefusal(r), refusalAD(tk.key))
		ttl = r.Until.Sub(now) + refusalMargin
	}
	// The active key's names first: they hold the refusal.
	for i, tk := range names {
		e := entry
		if i > 0 || entry == nil {
			e = keepRefusal // older keys' names: only the epoch moves
		}
		if err := c.moveEpoch(ctx, tk, e, ttl); err != nil {
			return err
		}
	}
	c.c.refusalsShared.Add(1)
	return nil
}

// Forget implements kvassert.SharedCache: it deletes the tenant's refusal
// and moves its epoch (under this cache's key and its OlderKeys), so that
// the next call for the tenant acquires. It fails when Redis does (or the
// circuit breaker is open). A key without client ID, authority or tenant
// is a *kvassert.InputError.
func (c *Cache) Forget(ctx context.Context, key kvassert.SharedKey) error {
	names, err := c.tenantNames(key)
	if err != nil {
		return err
	}
	for _, tk := range names {
		if err := c.moveEpoch(ctx, tk, nil, 0); err != nil {
			return err
		}
	}
	c.c.refusalsForgotten.Add(1)
	return nil
}

// Refusal implements kvassert.SharedCache: the refusal in force for the
// tenant, stored by any replica under this cache's key or one of its
// OlderKeys. ok is false when there is none, its Until has passed, or the
// entry is not an authentic refusal of this tenant (counted and warned
// about, rate-limited, as a rejected token entry). It fails when Redis does
// (or the circuit breaker is open). A key without client ID, authority or
// tenant is a *kvassert.InputError.
func (c *Cache) Refusal(ctx context.Context, key kvassert.SharedKey) (kvassert.TenantRefusal, bool, error) {
	names, err := c.tenantNames(key)
	if err != nil {
		return kvassert.TenantRefusal{}, false, err
	}
	var seen rejected
	for _, tk := range names {
		v, err := c.readRefusal(ctx, tk)
		if err != nil {
			return kvassert.TenantRefusal{}, false, err
		}
		if r, ok := c.openRefusal(v, tk, &seen); ok {
			c.c.refusalsFound.Add(1)
			return r, true, nil
		}
	}
	return kvassert.TenantRefusal{}, false, nil
}

// tenantNames checks key and names the tenant under every key of the
// ring, the active key's first.
func (c *Cache) tenantNames(key kvassert.SharedKey) ([]tenantKeys, error) {
	out := make([]tenantKeys, 0, 1+len(c.ring.older))
	for _, nk := range append([][]byte{c.ring.nameKey()}, c.ring.olderNameKeys()...) {
		tk, err := tenantKeysFor(c.prefix, nk, key)
		if err != nil {
			return nil, inputerr.New("fleet", "key", "key must name the app and the tenant: ClientID, Authority and Tenant, printable, without braces")
		}
		out = append(out, tk)
	}
	return out, nil
}

// keepRefusal tells refuseScript to leave the refusal as it is (no entry
// starts with '-': they start with entryVersion).
var keepRefusal = []byte("-")

// moveEpoch runs refuseScript for one name of the tenant: a fresh epoch,
// and the refusal entry stored for ttl (nil: deleted; keepRefusal: left).
func (c *Cache) moveEpoch(ctx context.Context, tk tenantKeys, entry []byte, ttl time.Duration) error {
	if !c.br.allow() {
		return errBreakerOpen
	}
	octx, cancel := c.opCtx(ctx)
	defer cancel()
	ms := ttl.Milliseconds()
	if entry == nil {
		entry, ms = []byte{}, 0
	}
	err := refuseScript.Run(octx, c.client, []string{tk.epoch, tk.refusal}, newEpoch(), maxEpochLife.Milliseconds(), entry, ms).Err()
	c.record(ctx, err)
	return err
}

// readRefusal reads one name's refusal entry: nil when absent or garbage.
func (c *Cache) readRefusal(ctx context.Context, tk tenantKeys) ([]byte, error) {
	if !c.br.allow() {
		return nil, errBreakerOpen
	}
	octx, cancel := c.opCtx(ctx)
	defer cancel()
	res, err := refusalScript.Run(octx, c.client, []string{tk.refusal}).Result()
	c.record(ctx, err)
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	s, _ := res.(string)
	if s == garbage {
		c.c.decryptFailures.Add(1)
		c.warn.warn("fleet: rejected a shared tenant refusal entry", errBadRefusal)
		return nil, nil
	}
	if s == "" || len(s) > maxRefusalEntry {
		return nil, nil
	}
	return []byte(s), nil
}

// openRefusal decrypts and checks a refusal entry; a bad one is counted
// and warned about once per call.
func (c *Cache) openRefusal(v []byte, tk tenantKeys, seen *rejected) (kvassert.TenantRefusal, bool) {
	if v == nil {
		return kvassert.TenantRefusal{}, false
	}
	pt, err := c.ring.open(v, refusalAD(tk.key))
	var r kvassert.TenantRefusal
	ok := err == nil
	if ok {
		r, ok = decodeRefusal(pt)
	}
	if !ok {
		if seen.first(v) {
			c.c.decryptFailures.Add(1)
			c.warn.warn("fleet: rejected a shared tenant refusal entry", errBadRefusal)
		}
		return kvassert.TenantRefusal{}, false
	}
	if !r.Until.After(time.Now()) {
		return kvassert.TenantRefusal{}, false
	}
	return r, true
}

// refusalAD is the associated data of a tenant's refusal: its kind, the
// key ID, the app and the tenant (the identity its Redis name hashes), so
// that an entry copied under another name, or a token entry, never opens
// as a refusal.
func refusalAD(k kvassert.SharedKey) func(keyID string) []byte {
	return func(keyID string) []byte {
		b := []byte("kvassert/fleet/refusal/v1\x00")
		for _, f := range []string{keyID, k.ClientID, k.Authority, k.Tenant} {
			b = appendField(b, f)
		}
		return b
	}
}

// encodeRefusal is the plaintext of a refusal: code (uint32), Until (unix
// ms, int64), Failures (uint32).
func encodeRefusal(r kvassert.TenantRefusal) []byte {
	b := make([]byte, 0, 16)
	b = binary.BigEndian.AppendUint32(b, uint32(min(r.Code, 1<<31-1)))
	b = binary.BigEndian.AppendUint64(b, uint64(r.Until.UnixMilli()))
	return binary.BigEndian.AppendUint32(b, uint32(min(r.Failures, 1<<31-1)))
}

// decodeRefusal parses a refusal's plaintext. Even an authentic one is
// checked: a positive code and failure count in range, Until within
// maxRefusalLife (plus a minute of clock skew between replicas).
func decodeRefusal(b []byte) (kvassert.TenantRefusal, bool) {
	if len(b) != 16 {
		return kvassert.TenantRefusal{}, false
	}
	code := binary.BigEndian.Uint32(b)
	until := int64(binary.BigEndian.Uint64(b[4:]))
	failures := binary.BigEndian.Uint32(b[12:])
	if code == 0 || code > 1<<31-1 || failures > 1<<31-1 || until <= 0 || until > time.Now().Add(maxRefusalLife+time.Minute).UnixMilli() {
		return kvassert.TenantRefusal{}, false
	}
	return kvassert.TenantRefusal{Code: int(code), Until: time.UnixMilli(until), Failures: int(failures)}, true
}
