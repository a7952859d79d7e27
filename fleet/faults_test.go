package fleet

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kvassert/kvassert/internal/testlog"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/kvassert/kvassert/internal/redistest"
)

// faultOpts are the production-like timeouts the fault tests exercise.
func faultOpts() CacheOptions {
	return CacheOptions{OpTimeout: 75 * time.Millisecond, BreakerThreshold: 3, BreakerCoolDown: 200 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)}
}

// TestRedisStoppedMidRun: callers of two replicas keep asking for new
// tenants while Redis is killed and restarted: no caller error, local
// acquisition while it is down, and sharing again once it is back.
func TestRedisStoppedMidRun(t *testing.T) {
	srv := redistest.Start(t)
	a, _ := newCache(t, srv, faultOpts())
	b, _ := newCache(t, srv, faultOpts())
	acq := newAcquirer("m")
	var errs, calls atomic.Int64
	var next atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := []*Cache{a, b}[w%2]
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, err := c.Token(context.Background(), testKey(tenantN(int(next.Add(1)))), azcore.AccessToken{}, acq.acquire)
				calls.Add(1)
				if err != nil {
					errs.Add(1)
				}
			}
		}()
	}
	waitCalls := func(n int64) {
		for start := calls.Load(); calls.Load() < start+n; {
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitCalls(50)
	srv.Stop()
	waitCalls(200)
	down := a.Stats().Fallbacks + b.Stats().Fallbacks
	srv.Restart()
	waitCalls(50)
	close(stop)
	wg.Wait()
	if errs.Load() != 0 {
		t.Fatalf("%d of %d callers got errors", errs.Load(), calls.Load())
	}
	if down == 0 || a.Stats().BreakerOpens == 0 {
		t.Fatalf("no local acquisition while Redis was down: %+v / %+v", a.Stats(), b.Stats())
	}
	// Sharing resumes: b gets what a acquired.
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; ; i++ {
		key := testKey("resume-" + tenantN(i))
		first := newAcquirer("first")
		second := newAcquirer("second")
		ta, errA := a.Token(context.Background(), key, azcore.AccessToken{}, first.acquire)
		tb, errB := b.Token(context.Background(), key, azcore.AccessToken{}, second.acquire)
		if errA != nil || errB != nil {
			t.Fatal(errA, errB)
		}
		if second.n.Load() == 0 && tb.Token == ta.Token {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sharing did not resume after the restart: %+v / %+v", a.Stats(), b.Stats())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRedisPaused: a Redis that stops answering (CLIENT PAUSE) costs a
// miss about one OpTimeout, not the pause.
func TestRedisPaused(t *testing.T) {
	srv := redistest.Start(t)
	a, _ := newCache(t, srv, faultOpts())
	acq := newAcquirer("p")
	if _, err := a.Token(context.Background(), testKey(tenantN(0)), azcore.AccessToken{}, acq.acquire); err != nil {
		t.Fatal(err) // warm the connection and the scripts
	}
	srv.Pause(3 * time.Second)
	begin := time.Now()
	tok, err := a.Token(context.Background(), testKey(tenantN(1)), azcore.AccessToken{}, acq.acquire)
	took := time.Since(begin)
	if err != nil || tok.Token == "" || acq.n.Load() != 2 {
		t.Fatalf("paused Redis: %v, %d acquisitions", err, acq.n.Load())
	}
	if took > 1500*time.Millisecond {
		t.Fatalf("a miss took %s while Redis was paused for 3 s (OpTimeout 75ms)", took)
	}
	if s := a.Stats(); s.Fallbacks != 1 || s.Errors != 1 {
		t.Fatalf("stats %+v", s)
	}
}

// TestRedisFull: Redis out of memory (maxmemory, noeviction) refuses the
// writes: tokens still come, acquired locally, and sharing resumes when
// memory is available.
func TestRedisFull(t *testing.T) {
	srv, raw := startRaw(t)
	ctx := context.Background()
	a, _ := newCache(t, srv, CacheOptions{BreakerThreshold: 100, Logger: slog.New(slog.DiscardHandler)})
	b, _ := newCache(t, srv, CacheOptions{BreakerThreshold: 100, Logger: slog.New(slog.DiscardHandler)})
	if err := raw.ConfigSet(ctx, "maxmemory-policy", "noeviction").Err(); err != nil {
		t.Fatal(err)
	}
	if err := raw.ConfigSet(ctx, "maxmemory", "1").Err(); err != nil {
		t.Fatal(err)
	}
	acq := newAcquirer("oom")
	key := testKey(tenantN(1))
	for _, c := range []*Cache{a, b} {
		if tok, err := c.Token(ctx, key, azcore.AccessToken{}, acq.acquire); err != nil || tok.Token == "" {
			t.Fatalf("OOM: %v", err)
		}
	}
	if acq.n.Load() != 2 || a.Stats().Errors == 0 || a.Stats().Fallbacks == 0 {
		t.Fatalf("OOM: %d acquisitions, stats %+v", acq.n.Load(), a.Stats())
	}
	if err := raw.ConfigSet(ctx, "maxmemory", "0").Err(); err != nil {
		t.Fatal(err)
	}
	key2 := testKey(tenantN(2))
	ta, _ := a.Token(ctx, key2, azcore.AccessToken{}, acq.acquire)
	tb, _ := b.Token(ctx, key2, azcore.AccessToken{}, acq.acquire)
	if acq.n.Load() != 3 || ta.Token != tb.Token {
		t.Fatalf("after OOM: %d acquisitions", acq.n.Load())
	}
}

// TestBadEntriesAreRejected writes tampered, truncated, swapped, foreign and
// garbage entries straight into Redis: none is ever returned, each is
// counted, and the caller gets a freshly acquired token without error.
func TestBadEntriesAreRejected(t *testing.T) {
	srv, raw := startRaw(t)
	ctx := context.Background()
	var logs syncBuffer
	a, _ := newCache(t, srv, CacheOptions{Logger: slog.New(slog.NewTextHandler(&logs, nil)), WarnEvery: time.Nanosecond})
	seed := newAcquirer("seed")
	victim, other := testKey(tenantN(1)), testKey(tenantN(2))
	tkV, _ := keysFor(DefaultPrefix, testNameKey, victim)
	tkO, _ := keysFor(DefaultPrefix, testNameKey, other)
	if _, err := a.Token(ctx, other, azcore.AccessToken{}, seed.acquire); err != nil {
		t.Fatal(err)
	}
	otherEntry, err := raw.Get(ctx, tkO.value).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Token(ctx, victim, azcore.AccessToken{}, seed.acquire); err != nil {
		t.Fatal(err)
	}
	good, err := raw.Get(ctx, tkV.value).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte { b := bytes.Clone(good); b[i] ^= 1; return b }
	// A plausible entry under an unknown key ID.
	foreign := mustRing(t, mustKey(t, "evil", 7)).seal(encodeToken(azcore.AccessToken{Token: "planted", ExpiresOn: time.Now().Add(time.Hour)}, ""), adFor(tkV.key))
	// The right key ID with another secret.
	sameID := mustRing(t, mustKey(t, "k1", 7)).seal(encodeToken(azcore.AccessToken{Token: "planted", ExpiresOn: time.Now().Add(time.Hour)}, ""), adFor(tkV.key))
	cases := map[string][]byte{
		"swapped from another tenant": otherEntry,
		"truncated":                   good[:len(good)-5],
		"truncated to the header":     good[:4],
		"tag flipped":                 flip(len(good) - 1),
		"ciphertext flipped":          flip(len(good) - 20),
		"nonce flipped":               flip(5),
		"key ID changed":              append([]byte{1, 2, 'k', '2'}, good[4:]...),
		"version changed":             append([]byte{9}, good[1:]...),
		"unknown key ID":              foreign,
		"same key ID, other secret":   sameID,
		"garbage":                     []byte("planted"),
		"empty":                       {},
	}
	for name, entry := range cases {
		before := a.Stats().DecryptFailures
		if err := raw.Set(ctx, tkV.value, entry, time.Hour).Err(); err != nil {
			t.Fatal(err)
		}
		acq := newAcquirer("fresh")
		tok, err := a.Token(ctx, victim, azcore.AccessToken{}, acq.acquire)
		if err != nil || acq.n.Load() != 1 || !strings.HasPrefix(tok.Token, "token-fresh-") {
			t.Fatalf("%s: got %q, %v, %d acquisitions", name, tok.Token, err, acq.n.Load())
		}
		if name != "empty" && a.Stats().DecryptFailures <= before {
			t.Fatalf("%s: not counted", name)
		}
		// The fresh token replaced the bad entry.
		if again, err := a.Token(ctx, victim, azcore.AccessToken{}, acq.acquire); err != nil || again.Token != tok.Token {
			t.Fatalf("%s: the bad entry was not replaced", name)
		}
	}
	// A value of another Redis type under the token's name.
	raw.Del(ctx, tkV.value)
	raw.HSet(ctx, tkV.value, "token", "planted")
	acq := newAcquirer("fresh")
	tok, err := a.Token(ctx, victim, azcore.AccessToken{}, acq.acquire)
	if err != nil || acq.n.Load() != 1 || tok.Token == "planted" {
		t.Fatalf("hash under the key: %q, %v", tok.Token, err)
	}
	if typ, _ := raw.Type(ctx, tkV.value).Result(); typ != "string" {
		t.Fatalf("the hash was not replaced: %s", typ)
	}
	if a.Stats().Errors != 0 || a.Stats().Fallbacks != 0 {
		t.Fatalf("bad entries counted as Redis failures: %+v", a.Stats())
	}
	// Warned about, without a token or an entry in the log.
	out := logs.String()
	if !strings.Contains(out, "rejected a shared token entry") {
		t.Fatalf("no warning logged: %q", out)
	}
	for _, secret := range []string{"planted", "token-", string(good[20:40])} {
		if strings.Contains(out, secret) {
			t.Fatalf("the log shows %q", secret)
		}
	}
}

// syncBuffer is a log sink safe for background goroutines.
type syncBuffer = testlog.Buffer

// TestWrongEncryptionKeyMisses: a replica with another key misses (and
// acquires) instead of failing; one with the old key among its older keys
// reads the entries (rotation).
func TestWrongEncryptionKeyMisses(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	k1 := mustKey(t, "k1", 1)
	a, _ := newCache(t, srv, CacheOptions{}, k1)
	wrong, _ := newCache(t, srv, CacheOptions{Logger: slog.New(slog.DiscardHandler)}, mustKey(t, "k1", 2))
	rotated, _ := newCache(t, srv, CacheOptions{}, mustKey(t, "k2", 3), k1)
	acq := newAcquirer("w")
	key := testKey(tenantN(1))
	ta, err := a.Token(ctx, key, azcore.AccessToken{}, acq.acquire)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := rotated.Token(ctx, key, azcore.AccessToken{}, acq.acquire)
	if err != nil || tr.Token != ta.Token || acq.n.Load() != 1 {
		t.Fatalf("rotated keyring: %v, %d acquisitions", err, acq.n.Load())
	}
	tw, err := wrong.Token(ctx, key, azcore.AccessToken{}, acq.acquire)
	if err != nil || tw.Token == ta.Token || acq.n.Load() != 2 {
		t.Fatalf("wrong key: %v, same token %v, %d acquisitions", err, tw.Token == ta.Token, acq.n.Load())
	}
	// The wrong key names entries apart (keyed names): nothing to reject.
	if s := wrong.Stats(); s.Misses != 1 || s.Hits != 0 || s.Errors != 0 {
		t.Fatalf("wrong key stats %+v", s)
	}
}

// TestNewCacheRefusesUnboundedClients: a client that ignores context
// deadlines would let a slow Redis block misses for seconds.
func TestNewCacheRefusesUnboundedClients(t *testing.T) {
	srv := redistest.Start(t)
	_ = srv
	key := mustKey(t, "k1", 1)
	plain := newUnboundedClient(srv.Addr())
	defer plain.Close()
	if _, err := NewCache(plain, key, nil); err == nil || !strings.Contains(err.Error(), "ContextTimeoutEnabled") {
		t.Fatalf("got %v", err)
	}
	if _, err := NewCache(newClient(t, srv), nil, nil); err == nil || !strings.Contains(err.Error(), "key") {
		t.Fatalf("no key: %v", err)
	}
	if _, err := NewCache(newClient(t, srv), key, &CacheOptions{Prefix: "a{b}"}); err == nil {
		t.Fatal("a prefix with braces was accepted")
	}
}
