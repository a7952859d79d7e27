package fleet

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
)

// The fleet-wide single flight: one replica takes a token's lock and
// acquires; the others wait (pub/sub, with polling as the fallback) and take
// over if the lock goes away without a value.

// Poll delays of a waiting replica (pub/sub usually wakes it sooner).
const (
	pollMin = 25 * time.Millisecond
	pollMax = 500 * time.Millisecond
)

// lockOrWait takes the lock and acquires, or waits for the owner's value,
// taking over when the lock is gone without a value.
func (c *Cache) lockOrWait(ctx context.Context, tk tokenKeys, stale azcore.AccessToken, tryLock bool, epoch string, seen *rejected, acquire func(context.Context) (azcore.AccessToken, error)) (azcore.AccessToken, error) {
	owner := c.ownerID + "-" + fmt.Sprint(c.seq.Add(1))
	var w *waiter
	var waitStart time.Time // when this call began waiting for the owner
	var waitErr error       // why the wait ended without the token
	defer func() {
		if w != nil {
			c.tel.LockWait(ctx, time.Since(waitStart), waitErr)
		}
	}()
	deadline := time.Now().Add(c.o.WaitTimeout)
	delay := pollMin
	var lastRead time.Time // of the value, while waiting
	for {
		if tryLock {
			won, v, tookOver, e, err := c.lock(ctx, tk, owner)
			if err != nil {
				waitErr = err
				return c.fallback(ctx, err, acquire)
			}
			if tookOver {
				c.c.takeovers.Add(1)
				c.warn.warn("fleet: took over a lock with no or an overlong expiry (not a live replica's)", nil)
			}
			epoch = e
			if tok, ok := c.usable(v, epoch, tk, stale, seen); ok {
				if won {
					c.release(ctx, tk, owner)
				}
				c.c.hits.Add(1)
				return tok, nil
			}
			if won {
				if w != nil && !tookOver {
					c.c.takeovers.Add(1)
				}
				return c.own(ctx, tk, owner, epoch, acquire)
			}
		}
		if w == nil {
			c.c.lockWaits.Add(1)
			waitStart = time.Now()
			w = c.notify.register(tk.msg)
			defer c.notify.unregister(w)
		}
		if time.Now().After(deadline) {
			c.c.fallbacks.Add(1)
			waitErr = errWaitTimeout
			c.tel.Fallback(ctx, errWaitTimeout)
			c.warn.warn("fleet: waited too long for another replica's token; acquiring locally", nil)
			tok, err := acquire(ctx)
			if err == nil {
				// Shared all the same: the other waiters find it
				// instead of each acquiring after its own wait.
				c.store(ctx, tk, owner, epoch, tok)
			}
			return tok, err
		}
		t := time.NewTimer(delay + rand.N(delay/2))
		select {
		case <-ctx.Done():
			t.Stop()
			waitErr = ctx.Err()
			return azcore.AccessToken{}, fmt.Errorf("fleet: waiting for another replica's token: %w", ctx.Err())
		case <-w.ch:
			t.Stop()
			// Anyone who can publish could flood the channel: at most
			// one read per pollMin, however many messages come.
			if d := pollMin - time.Since(lastRead); d > 0 {
				gap := time.NewTimer(d)
				select {
				case <-ctx.Done():
					gap.Stop()
					waitErr = ctx.Err()
					return azcore.AccessToken{}, fmt.Errorf("fleet: waiting for another replica's token: %w", ctx.Err())
				case <-gap.C:
				}
			}
		case <-t.C:
		}
		delay = min(2*delay, pollMax)
		lastRead = time.Now()
		v, pttl, e, err := c.peek(ctx, tk)
		if err != nil {
			waitErr = err
			return c.fallback(ctx, err, acquire)
		}
		epoch = e
		if tok, ok := c.usable(v, epoch, tk, stale, seen); ok {
			c.c.hits.Add(1)
			return tok, nil
		}
		tryLock = pttl <= 0 || pttl > c.maxLockMillis()
	}
}

// maxLockMillis is the longest life a live owner's lock can have: owners
// set and renew it to LockTTL. A longer-lived lock (or one with no expiry)
// is taken over by lockScript.
func (c *Cache) maxLockMillis() int64 { return 2 * c.o.LockTTL.Milliseconds() }

// own acquires the token as the lock owner, renewing the lock meanwhile,
// then stores it under epoch, the tenant's epoch read with the lock (when
// it lives long enough and no Refuse or Forget came meanwhile), releases
// the lock and wakes the waiting replicas.
func (c *Cache) own(ctx context.Context, tk tokenKeys, owner, epoch string, acquire func(context.Context) (azcore.AccessToken, error)) (azcore.AccessToken, error) {
	c.c.acquired.Add(1)
	tok, err := func() (azcore.AccessToken, error) {
		// Stop renewing even if acquire panics: the lock then expires
		// and another replica takes over.
		defer c.renew(ctx, tk, owner)()
		return acquire(ctx)
	}()
	if err != nil {
		c.release(ctx, tk, owner)
		return tok, err
	}
	if !c.store(ctx, tk, owner, epoch, tok) {
		c.release(ctx, tk, owner)
	}
	return tok, nil
}

// store puts tok in Redis under the tenant's epoch read before acquiring
// (when it lives long enough, and not absurdly long; the script drops it
// when the epoch moved meanwhile), releases the lock if owner holds it,
// and wakes the waiting replicas. It reports whether it ran the script
// (which releases the lock).
func (c *Cache) store(ctx context.Context, tk tokenKeys, owner, epoch string, tok azcore.AccessToken) bool {
	ttl := time.Until(tok.ExpiresOn)
	if ttl <= c.o.MinRemaining || ttl > maxTokenLife || tok.Token == "" || epoch == garbage {
		return false
	}
	entry := c.ring.seal(encodeToken(tok, epoch), adFor(tk.key))
	if len(entry) > maxEntry {
		return false
	}
	octx, cancel := c.opCtx(context.WithoutCancel(ctx))
	defer cancel()
	err := storeScript.Run(octx, c.client, []string{tk.value, tk.lock, tk.epoch}, owner, entry, ttl.Milliseconds(), channelFor(c.prefix), tk.msg, epoch, (ttl + epochMargin).Milliseconds()).Err()
	c.record(ctx, err)
	return true
}

// renew keeps the lock alive while its owner acquires; the returned func
// stops it.
func (c *Cache) renew(ctx context.Context, tk tokenKeys, owner string) func() {
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		// A panic here must not end the process; the lock then expires
		// and another replica takes over.
		defer func() { _ = recover() }()
		t := time.NewTicker(c.o.LockTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				octx, cancel := c.opCtx(context.WithoutCancel(ctx))
				err := renewScript.Run(octx, c.client, []string{tk.lock}, owner, c.o.LockTTL.Milliseconds()).Err()
				cancel()
				c.record(ctx, err)
			}
		}
	}()
	return func() { close(done); <-stopped }
}

// release gives the lock up (if still ours) and wakes the waiters.
func (c *Cache) release(ctx context.Context, tk tokenKeys, owner string) {
	octx, cancel := c.opCtx(context.WithoutCancel(ctx))
	defer cancel()
	err := releaseScript.Run(octx, c.client, []string{tk.lock}, owner, channelFor(c.prefix), tk.msg).Err()
	c.record(ctx, err)
}

// peek reads the value, the lock's remaining life and the tenant's epoch
// in one round trip.
func (c *Cache) peek(ctx context.Context, tk tokenKeys) ([]byte, int64, string, error) {
	octx, cancel := c.opCtx(ctx)
	defer cancel()
	res, err := peekScript.Run(octx, c.client, []string{tk.value, tk.lock, tk.epoch}).Slice()
	if err != nil {
		return nil, 0, "", err
	}
	c.br.success()
	return parsePeek(res)
}

// parsePeek reads peekScript's answer: the value (nil when absent, garbage
// or longer than any entry), the lock's PTTL and the epoch.
func parsePeek(res []any) ([]byte, int64, string, error) {
	if len(res) != 3 {
		return nil, 0, "", fmt.Errorf("fleet: unexpected answer from Redis (%d values)", len(res))
	}
	pttl, _ := res[1].(int64)
	return bytesOf(res[0]), pttl, epochOf(res[2]), nil
}

// lock tries to take the lock and reads the value and the epoch in one
// round trip (replacing an epoch that is garbage). It reports whether it
// took over a lock no live owner holds.
func (c *Cache) lock(ctx context.Context, tk tokenKeys, owner string) (won bool, v []byte, tookOver bool, epoch string, err error) {
	octx, cancel := c.opCtx(ctx)
	defer cancel()
	res, err := lockScript.Run(octx, c.client, []string{tk.value, tk.lock, tk.epoch}, owner, c.o.LockTTL.Milliseconds(), c.maxLockMillis(), newEpoch(), maxEpochLife.Milliseconds()).Slice()
	if err != nil {
		return false, nil, false, "", err
	}
	c.br.success()
	return parseLock(res)
}

// parseLock reads lockScript's answer.
func parseLock(res []any) (won bool, v []byte, tookOver bool, epoch string, err error) {
	if len(res) != 4 {
		return false, nil, false, "", fmt.Errorf("fleet: unexpected answer from Redis (%d values)", len(res))
	}
	w, _ := res[0].(int64)
	t, _ := res[2].(int64)
	return w == 1, bytesOf(res[1]), w == 1 && t == 1, epochOf(res[3]), nil
}

// garbage is the epoch of a tenant whose epoch key holds something that is
// not ours: no entry matches it, and nothing is stored under it.
const garbage = "!"

// epochOf is an epoch read from Redis: "" when absent, garbage when not a
// printable string of at most maxEpoch bytes.
func epochOf(v any) string {
	switch s := v.(type) {
	case nil:
		return ""
	case string:
		if s == "" || len(s) > maxEpoch || !printable(s) {
			return garbage
		}
		return s
	}
	return garbage
}

// bytesOf is a value read from Redis: nil unless a string no longer than
// any entry.
func bytesOf(v any) []byte {
	var b []byte
	switch s := v.(type) {
	case string:
		b = []byte(s)
	case []byte:
		b = s
	}
	if len(b) > maxEntry {
		return nil
	}
	return b
}
