package fleet

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kvassert/kvassert/internal/inputerr"
	"github.com/kvassert/kvassert/tenants"
)

// Consent states used once across the fleet (issue 21). A state's nonce is
// stored as
//
//	<prefix>:state:<keyed hash of the nonce>   "1", expiring with the state
//
// set with SET NX PXAT: the first replica to use a state wins, every other
// use, on any replica, is refused. The nonce itself never reaches Redis.

// maxStateLife bounds how long a used state is remembered: a later until
// is cut to it (tenants' states live minutes).
const maxStateLife = 24 * time.Hour

// StateStore returns a tenants.StateStore on this cache's Redis, for
// tenants.HandlerOptions.States: give every replica's Handler the store of
// its Cache, and a consent redirect replayed to another replica is refused
// there ("already used"). It shares the cache's client, Prefix, OpTimeout
// and circuit breaker. Its Use fails when Redis does (or the breaker is
// open): the Handler then asks the administrator to start again. A nonce
// that is not 32 to 64 hex digits is a *kvassert.InputError; an until that
// has passed reports the state used; one more than 24 hours away is cut
// to 24 hours.
func (c *Cache) StateStore() tenants.StateStore { return stateStore{c} }

type stateStore struct{ c *Cache }

func (s stateStore) Use(ctx context.Context, nonce string, until time.Time) (bool, error) {
	if !validNonce(nonce) {
		return false, inputerr.New("fleet", "nonce", "nonce must be 32 to 64 hex digits (%d characters given)", len(nonce))
	}
	now := time.Now()
	if !until.After(now) {
		return false, nil
	}
	if limit := now.Add(maxStateLife); until.After(limit) {
		until = limit
	}
	return s.c.useState(ctx, strings.ToLower(nonce), until)
}

func validNonce(n string) bool {
	if len(n) < 32 || len(n) > 64 {
		return false
	}
	for i := 0; i < len(n); i++ {
		if !strings.ContainsRune("0123456789abcdefABCDEF", rune(n[i])) {
			return false
		}
	}
	return true
}

// stateName is the Redis name of a nonce under one name key.
func stateName(prefix string, nameKey []byte, nonce string) string {
	h := hmac.New(sha256.New, nameKey)
	h.Write([]byte("kvassert/fleet/state/v1\x00"))
	h.Write([]byte(nonce))
	var sum [sha256.Size]byte
	return prefix + ":state:" + hex.EncodeToString(h.Sum(sum[:0])[:16])
}

// useState sets the nonce's name under every key of the ring (the active
// key's and the OlderKeys'), each with NX: the state is fresh only when no
// name existed. During a key rotation a replica that knows only the old key
// sets the old key's name, which the new replicas set too, so one use wins.
func (c *Cache) useState(ctx context.Context, nonce string, until time.Time) (bool, error) {
	if !c.br.allow() {
		return false, errBreakerOpen
	}
	octx, cancel := c.opCtx(ctx)
	defer cancel()
	keys := append([][]byte{c.ring.nameKey()}, c.ring.olderNameKeys()...)
	cmds := make([]*redis.StatusCmd, len(keys))
	_, err := c.client.Pipelined(octx, func(p redis.Pipeliner) error {
		for i, nk := range keys {
			cmds[i] = p.SetArgs(octx, stateName(c.prefix, nk, nonce), "1", redis.SetArgs{Mode: "NX", ExpireAt: until})
		}
		return nil
	})
	fresh := true
	for _, cmd := range cmds {
		switch cerr := cmd.Err(); {
		case errors.Is(cerr, redis.Nil):
			fresh = false // NX: the name existed
		case cerr != nil:
			err = cerr
		}
	}
	if errors.Is(err, redis.Nil) {
		err = nil
	}
	c.record(ctx, err)
	if err != nil {
		return false, err
	}
	return fresh, nil
}
