package fleet_test

import (
	"context"
	"crypto/rand"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/fleet"
	"github.com/kvassert/kvassert/internal/redistest"
	"github.com/kvassert/kvassert/internal/testfixture"
	"github.com/kvassert/kvassert/kvasserttest"
)

// Credential-level tests: real kvassert credentials (each with its own
// local cache, Key Vault source, Redis client and fleet cache: one replica
// each) against the emulator and a real redis-server.

type credEnv struct {
	e       *kvasserttest.Emulator
	srv     *redistest.Server
	raw     *redis.Client
	key     *fleet.Key
	tenants []string
}

func newCredEnv(t *testing.T, n int) *credEnv {
	t.Helper()
	s, tenants := testfixture.ManyTenants(n)
	srv := redistest.Start(t)
	raw := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { raw.Close() })
	return &credEnv{e: testfixture.NewWorld(t, &testfixture.WorldOptions{Scenario: s}).Emu, srv: srv, raw: raw, key: randomKey(t, "k1"), tenants: tenants}
}

func randomKey(t *testing.T, id string) *fleet.Key {
	t.Helper()
	secret := make([]byte, fleet.KeySize)
	rand.Read(secret)
	k, err := fleet.NewKey(id, secret)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// replica is one service replica: a credential over a fleet cache.
type replicaCred struct {
	cred  *kvassert.Credential
	cache *fleet.Cache
}

func (c *credEnv) replica(t *testing.T, key *fleet.Key, o fleet.CacheOptions) replicaCred {
	t.Helper()
	client, err := fleet.NewClient(c.srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.OpTimeout == 0 {
		o.OpTimeout = 5 * time.Second // -race on 2 shared cores
	}
	cache, err := fleet.NewCache(client, key, &o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cache.Close() })
	cred, _ := testfixture.Credential(t, c.e, func(co *kvassert.CredentialOptions) {
		co.SharedCache = cache
		co.Logger = slog.New(slog.DiscardHandler)
	})
	return replicaCred{cred: cred, cache: cache}
}

// get asks r for each tenant's token; it returns the caller errors and
// fails on a token for another tenant.
func (r replicaCred) get(t *testing.T, tenants []string) int {
	t.Helper()
	errs := 0
	for _, tenant := range tenants {
		tok, err := r.cred.GetToken(context.Background(), testfixture.Opts(tenant))
		if err != nil {
			errs++
			continue
		}
		if tid, _ := testfixture.TenantOf(tok.Token); tid != tenant {
			t.Fatalf("asked for %s, got a token for %s", tenant, tid)
		}
	}
	return errs
}

func (c *credEnv) signs() int64 { return c.e.Count(kvasserttest.OpKeySign) }

// TestCredentialsSurviveRedisStopAndRestart: two replicas keep getting
// tokens for new tenants while Redis is stopped (0 caller errors, each
// acquires locally) and share again once it is back.
func TestCredentialsSurviveRedisStopAndRestart(t *testing.T) {
	c := newCredEnv(t, 200)
	// A stopped Redis refuses connections at once; the generous timeout only
	// keeps a slow -race run on 2 shared cores from falling back while Redis is up.
	fo := fleet.CacheOptions{OpTimeout: time.Second, BreakerThreshold: 3, BreakerCoolDown: 200 * time.Millisecond}
	a, b := c.replica(t, c.key, fo), c.replica(t, c.key, fo)
	batch := func(i int) []string { return c.tenants[i*10 : i*10+10] }

	s0 := c.signs()
	if e := a.get(t, batch(0)) + b.get(t, batch(0)); e != 0 {
		t.Fatalf("%d caller errors with Redis up", e)
	}
	if n := c.signs() - s0; n != 10 {
		t.Fatalf("Redis up: %d signs for 10 tenants on 2 replicas, want 10", n)
	}

	c.srv.Stop()
	s1 := c.signs()
	if e := a.get(t, batch(1)) + b.get(t, batch(1)); e != 0 {
		t.Fatalf("%d caller errors with Redis stopped, want 0", e)
	}
	if n := c.signs() - s1; n != 20 {
		t.Fatalf("Redis stopped: %d signs for 10 tenants on 2 replicas, want 20 (each acquires locally)", n)
	}
	if a.cache.Stats().Fallbacks == 0 || b.cache.Stats().Fallbacks == 0 {
		t.Fatalf("no fallbacks counted: %+v / %+v", a.cache.Stats(), b.cache.Stats())
	}

	c.srv.Restart()
	deadline := time.Now().Add(30 * time.Second)
	for i := 2; ; i++ {
		if i*10+10 > len(c.tenants) || time.Now().After(deadline) {
			t.Fatalf("sharing did not resume after the restart: %+v / %+v", a.cache.Stats(), b.cache.Stats())
		}
		s := c.signs()
		if e := a.get(t, batch(i)) + b.get(t, batch(i)); e != 0 {
			t.Fatalf("%d caller errors after the restart", e)
		}
		if c.signs()-s == 10 {
			t.Logf("sharing resumed with batch %d (stats %+v / %+v)", i, a.cache.Stats(), b.cache.Stats())
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// tokenKeys lists the token entries in Redis.
func (c *credEnv) tokenKeys(t *testing.T) []string {
	t.Helper()
	keys, err := c.raw.Keys(context.Background(), fleet.DefaultPrefix+":*:tok").Result()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	return keys
}

// TestCredentialRejectsBadEntries: entries swapped from another tenant,
// tampered or garbage are rejected and counted, never returned: a new
// replica gets a token for the tenant it asked for, acquiring it itself.
func TestCredentialRejectsBadEntries(t *testing.T) {
	c := newCredEnv(t, 2)
	ctx := context.Background()
	a := c.replica(t, c.key, fleet.CacheOptions{})
	victim, other := c.tenants[0], c.tenants[1]
	a.get(t, []string{victim})
	keys := c.tokenKeys(t)
	if len(keys) != 1 {
		t.Fatalf("%d token entries, want 1", len(keys))
	}
	victimKey := keys[0]
	good, _ := c.raw.Get(ctx, victimKey).Bytes()
	a.get(t, []string{other})
	var otherEntry []byte
	for _, k := range c.tokenKeys(t) {
		if k != victimKey {
			otherEntry, _ = c.raw.Get(ctx, k).Bytes()
		}
	}
	if otherEntry == nil {
		t.Fatal("no entry for the other tenant")
	}
	tampered := slices.Clone(good)
	tampered[len(tampered)-30] ^= 1
	for name, entry := range map[string][]byte{
		"swapped from another tenant": otherEntry,
		"tampered":                    tampered,
		"truncated":                   good[:len(good)/2],
		"garbage":                     []byte("eyJhbGciOiJub25lIn0.eyJ0aWQiOiJldmlsIn0."),
	} {
		if err := c.raw.Set(ctx, victimKey, entry, time.Hour).Err(); err != nil {
			t.Fatal(err)
		}
		r := c.replica(t, c.key, fleet.CacheOptions{})
		s := c.signs()
		if e := r.get(t, []string{victim}); e != 0 { // fails on a token for another tenant
			t.Fatalf("%s: caller error", name)
		}
		st := r.cache.Stats()
		if st.DecryptFailures != 1 || st.Acquired != 1 || st.Errors != 0 || c.signs()-s != 1 {
			t.Fatalf("%s: stats %+v, %d signs; want the entry rejected and counted once, one acquisition", name, st, c.signs()-s)
		}
	}
}

// TestCredentialWithWrongKeyMisses: a replica with another encryption key
// cannot read the fleet's entries: it misses and acquires, with no caller
// error and no Redis error.
func TestCredentialWithWrongKeyMisses(t *testing.T) {
	c := newCredEnv(t, 3)
	a := c.replica(t, c.key, fleet.CacheOptions{})
	a.get(t, c.tenants)
	wrong := c.replica(t, randomKey(t, "k1"), fleet.CacheOptions{})
	s := c.signs()
	if e := wrong.get(t, c.tenants); e != 0 {
		t.Fatalf("%d caller errors with the wrong key", e)
	}
	st := wrong.cache.Stats()
	// Its names differ too (keyed with its own key): it finds nothing.
	if c.signs()-s != 3 || st.Misses != 3 || st.Errors != 0 || st.Hits != 0 {
		t.Fatalf("wrong key: %d signs, stats %+v; want 3 misses and acquisitions, no errors", c.signs()-s, st)
	}
}
