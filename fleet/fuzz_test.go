package fleet

import (
	"context"
	"log/slog"
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/kvassert/kvassert"
)

// FuzzSharedEntry (issue 18): a shared-cache entry as read from Redis,
// under a fuzzed token identity. Decrypting and parsing it never panics,
// and never yields a token for another identity than the one it was sealed
// for (the seeds are entries sealed for key0; the fuzzer cannot forge one).
func FuzzSharedEntry(f *testing.F) {
	ring := mustRing(f, mustKey(f, "k1", 1), mustKey(f, "k0", 2))
	key0 := testKey(tenantN(1))
	good := ring.seal(encodeToken(azcore.AccessToken{Token: "tok.en.0", ExpiresOn: time.Now().Add(time.Hour)}, ""), adFor(normalize(key0)))
	f.Add(good, key0.Tenant, key0.Scope, key0.Source, false)
	f.Add(good, key0.Tenant, key0.Scope, "another-source", false)
	f.Add(good, tenantN(2), key0.Scope, key0.Source, false)
	f.Add(good, key0.Tenant, key0.Scope, key0.Source, true)
	f.Add([]byte{1, 2, 'k', '1'}, "", "", "", false)
	f.Add([]byte("!"), key0.Tenant, key0.Scope, key0.Source, false)
	f.Add(good[:len(good)-1], key0.Tenant, key0.Scope, key0.Source, false)
	c := &Cache{ring: ring, warn: newWarner(slog.New(slog.DiscardHandler), time.Minute), o: CacheOptions{MinRemaining: time.Minute}}
	f.Fuzz(func(t *testing.T, entry []byte, tenant, scope, source string, cae bool) {
		k := key0
		k.Tenant, k.Scope, k.Source, k.CAE = tenant, scope, source, cae
		tk, err := keysFor(DefaultPrefix, ring.nameKey(), k)
		if err != nil {
			return
		}
		v, _, epoch, _ := parsePeek([]any{string(entry), int64(-2), nil})
		var seen rejected
		tok, ok := c.usable(v, epoch, tk, azcore.AccessToken{}, &seen)
		if !ok {
			return
		}
		if normalize(k) != normalize(key0) {
			t.Fatalf("an entry sealed for %+v was served for %+v", key0, k)
		}
		if tok.Token == "" || time.Until(tok.ExpiresOn) > maxTokenLife {
			t.Fatalf("served an unbounded token: %+v", tok.ExpiresOn)
		}
	})
}

// FuzzRedisState (issue 18): the Redis state another client may leave
// (a hold-off, a lock, a sign budget and a token value, each of any type,
// any value and any TTL) fed to the scripts and their parsers on a real
// redis-server. Nothing panics; a hold-off is never longer than the bound,
// a budget wait never longer than the window, and a lock with no expiry or
// an overlong TTL is always taken over.
func FuzzRedisState(f *testing.F) {
	_, raw := startRaw(f)
	ctx := context.Background()
	f.Add(uint8(0), int64(720*3600*1000), []byte("1"), 1e15)
	f.Add(uint8(1), int64(-1), []byte("x"), math.Inf(1))
	f.Add(uint8(2), int64(0), []byte{0xff, 0}, -1.0)
	f.Add(uint8(3), int64(5000), []byte("9999999999999"), 0.0)
	f.Add(uint8(4), int64(1), []byte(""), math.NaN())
	const maxHold, window, lockTTL = 2000, 1000, 1000
	var n int
	f.Fuzz(func(t *testing.T, kind uint8, ttl int64, value []byte, score float64) {
		n++
		base := DefaultPrefix + ":fuzz:{" + strconv.Itoa(n) + "}"
		hold, budget, val, lock, epoch := base+":hold", base+":budget", base+":tok", base+":lock", base+":epoch"
		if len(value) > 1<<17 {
			value = value[:1<<17]
		}
		for _, key := range []string{hold, budget, val, lock, epoch} {
			switch kind % 5 {
			case 0:
				raw.Set(ctx, key, value, 0)
			case 1:
				raw.HSet(ctx, key, "f", value)
			case 2:
				raw.RPush(ctx, key, value)
			case 3:
				if !math.IsNaN(score) {
					raw.ZAdd(ctx, key, redisZ(score, string(value)))
				}
			case 4: // absent
			}
			if ttl > 0 {
				raw.PExpire(ctx, key, time.Duration(ttl%(1<<40))*time.Millisecond)
			}
			kind /= 5
		}
		defer raw.Del(ctx, hold, budget, val, lock, epoch)
		ids, err := gateScript.Run(ctx, raw, []string{hold, budget}, 3, window, "m", maxHold).Int64Slice()
		if err != nil {
			t.Fatalf("gate: %v", err)
		}
		if _, ms, err := checkGate(ids, maxHold*time.Millisecond, window*time.Millisecond); err != nil || ms > maxHold {
			t.Fatalf("gate answered %v (%v)", ids, err)
		}
		if p := raw.PTTL(ctx, hold).Val(); p > maxHold*time.Millisecond || p == -1 {
			t.Fatalf("the hold-off key still lives %v", p)
		}
		before := raw.PTTL(ctx, lock).Val()
		res, err := lockScript.Run(ctx, raw, []string{val, lock, epoch}, "me", lockTTL, 2*lockTTL, "fresh", lockTTL).Slice()
		if err != nil {
			t.Fatalf("lock: %v", err)
		}
		won, v, _, e, err := parseLock(res)
		if err != nil || len(v) > maxEntry || e == garbage {
			t.Fatalf("lock answered %v, epoch %q", err, e)
		}
		if (before == -1 || before > 2*lockTTL*time.Millisecond) && !won {
			t.Fatalf("a lock with TTL %v was not taken over", before)
		}
		res, err = peekScript.Run(ctx, raw, []string{val, lock, epoch}).Slice()
		if err != nil {
			t.Fatalf("peek: %v", err)
		}
		if v, _, e, err := parsePeek(res); err != nil || len(v) > maxEntry || len(e) > maxEpoch {
			t.Fatalf("peek answered %d bytes, %v", len(v), err)
		}
	})
}

// FuzzRefusalEntry (issue 21): any bytes read under a tenant's refusal name
// open as a refusal only when sealed for that tenant (the seeds are; the
// fuzzer cannot forge one), never panic, and never give a refusal beyond
// the bound.
func FuzzRefusalEntry(f *testing.F) {
	ring := mustRing(f, mustKey(f, "k1", 1))
	k0 := normalize(tenantOf(testKey(tenantN(1))))
	good := ring.seal(encodeRefusal(kvassert.TenantRefusal{Code: 700016, Until: time.Now().Add(time.Hour), Failures: 2}), refusalAD(k0))
	f.Add(good, k0.Tenant)
	f.Add(good, tenantN(2))
	f.Add(good[:len(good)-1], k0.Tenant)
	f.Add([]byte("!"), k0.Tenant)
	f.Add([]byte{1, 2, 'k', '1'}, "")
	c := &Cache{ring: ring, warn: newWarner(slog.New(slog.DiscardHandler), time.Minute)}
	f.Fuzz(func(t *testing.T, entry []byte, tenant string) {
		k := k0
		k.Tenant = tenant
		tk, err := tenantKeysFor(DefaultPrefix, ring.nameKey(), k)
		if err != nil {
			return
		}
		var seen rejected
		r, ok := c.openRefusal(entry, tk, &seen)
		if !ok {
			return
		}
		if tk.key != k0 {
			t.Fatalf("a refusal sealed for %s was read for %s", k0.Tenant, tk.key.Tenant)
		}
		if r.Code <= 0 || r.Failures < 0 || time.Until(r.Until) > maxRefusalLife+time.Minute {
			t.Fatalf("an unbounded refusal: %+v", r)
		}
	})
}
