package fleet

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/internal/inputerr"
	"github.com/kvassert/kvassert/internal/redistest"
)

// tenantOf is the key Refuse, Refusal and Forget take: app and tenant.
func tenantOf(k kvassert.SharedKey) kvassert.SharedKey {
	return kvassert.SharedKey{ClientID: k.ClientID, Authority: k.Authority, Tenant: k.Tenant}
}

func withScope(k kvassert.SharedKey, scope string) kvassert.SharedKey { k.Scope = scope; return k }

func refusal(code int, d time.Duration) kvassert.TenantRefusal {
	return kvassert.TenantRefusal{Code: code, Until: time.Now().Add(d).Truncate(time.Millisecond), Failures: 1}
}

// mustToken gets k's token from c, failing the test on an error.
func mustToken(t *testing.T, c *Cache, k kvassert.SharedKey, acq *acquirer) azcore.AccessToken {
	t.Helper()
	tok, err := c.Token(context.Background(), k, zeroToken, acq.acquire)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestRefuseSharesTheRefusalAndStopsTheTenantsTokens: replica A refuses a
// tenant whose tokens (two scopes) replica B was served from Redis: B reads
// the refusal, and no token of the tenant stored before is served to
// either replica, whatever its scope; another tenant's tokens still are.
func TestRefuseSharesTheRefusalAndStopsTheTenantsTokens(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	a, _ := newCache(t, srv, CacheOptions{})
	b, _ := newCache(t, srv, CacheOptions{})
	gone, kept := testKey(tenantN(1)), testKey(tenantN(2))
	keys := []kvassert.SharedKey{gone, withScope(gone, "https://vault.azure.net/.default"), kept}
	acq := newAcquirer("a")
	before := map[string]bool{}
	for _, k := range keys {
		tok := mustToken(t, a, k, acq)
		if got := mustToken(t, b, k, newAcquirer("b-must-not")); got.Token != tok.Token {
			t.Fatalf("B was not served A's token")
		}
		before[tok.Token] = true
	}
	if _, ok, err := b.Refusal(ctx, tenantOf(gone)); ok || err != nil {
		t.Fatalf("a refusal before any Refuse: %v, %v", ok, err)
	}
	want := refusal(700016, time.Minute)
	if err := a.Refuse(ctx, tenantOf(gone), want); err != nil {
		t.Fatal(err)
	}
	got, ok, err := b.Refusal(ctx, tenantOf(gone))
	if err != nil || !ok || got.Code != want.Code || !got.Until.Equal(want.Until) || got.Failures != want.Failures {
		t.Fatalf("B reads %+v, %v, %v; want %+v", got, ok, err, want)
	}
	if _, ok, _ := b.Refusal(ctx, tenantOf(kept)); ok {
		t.Fatal("the refusal of one tenant is read for another")
	}
	fresh := newAcquirer("after")
	for _, c := range []*Cache{a, b} {
		for _, k := range keys[:2] {
			if tok := mustToken(t, c, k, fresh); before[tok.Token] {
				t.Fatalf("a token stored before Refuse was served (scope %s)", k.Scope)
			}
		}
		if tok := mustToken(t, c, kept, newAcquirer("kept-must-not")); !before[tok.Token] {
			t.Fatal("another tenant's token stopped being served")
		}
	}
	if fresh.n.Load() != 2 {
		t.Fatalf("%d acquisitions after Refuse; want one per scope, then shared", fresh.n.Load())
	}
	if s := a.Stats(); s.RefusalsShared != 1 || s.DecryptFailures != 0 {
		t.Fatalf("A's stats %+v", s)
	}
	if s := b.Stats(); s.RefusalsFound != 1 || s.DecryptFailures != 0 {
		t.Fatalf("B's stats %+v", s)
	}
}

// TestRefusalExpires: a refusal is in force until its Until, lives in Redis
// Until plus a margin, and one whose Until has passed only moves the epoch.
// An Until further than 24 h is cut to 24 h.
func TestRefusalExpires(t *testing.T) {
	srv, raw := startRaw(t)
	ctx := context.Background()
	a, _ := newCache(t, srv, CacheOptions{})
	k := tenantOf(testKey(tenantN(1)))
	if err := a.Refuse(ctx, k, refusal(7000112, 300*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	names, _ := a.tenantNames(k)
	if p := raw.PTTL(ctx, names[0].refusal).Val(); p <= 0 || p > 300*time.Millisecond+refusalMargin {
		t.Fatalf("refusal TTL %v; want Until plus at most %v", p, refusalMargin)
	}
	if p := raw.PTTL(ctx, names[0].epoch).Val(); p <= maxTokenLife || p > maxEpochLife {
		t.Fatalf("epoch TTL %v; want longer than any token (%v) and bounded (%v)", p, maxTokenLife, maxEpochLife)
	}
	if r, ok, err := a.Refusal(ctx, k); !ok || err != nil || r.Code != 7000112 {
		t.Fatalf("in force: %+v, %v, %v", r, ok, err)
	}
	time.Sleep(350 * time.Millisecond)
	if r, ok, err := a.Refusal(ctx, k); ok || err != nil {
		t.Fatalf("after Until: %+v, %v, %v", r, ok, err)
	}
	// Until in the past: nothing stored, but the tenant's tokens stop.
	tk := a.keysFor(t, testKey(tenantN(1)))
	acq := newAcquirer("x")
	old := mustToken(t, a, testKey(tenantN(1)), acq)
	raw.Del(ctx, names[0].refusal)
	if err := a.Refuse(ctx, k, refusal(700016, -time.Second)); err != nil {
		t.Fatal(err)
	}
	if n := raw.Exists(ctx, names[0].refusal).Val(); n != 0 {
		t.Fatal("a refusal already over was stored")
	}
	if tok := mustToken(t, a, testKey(tenantN(1)), acq); tok.Token == old.Token {
		t.Fatalf("a token stored before Refuse was served (%s)", tk.value)
	}
	// Until in a week: stored for 24 h, and read back cut to 24 h.
	if err := a.Refuse(ctx, k, refusal(700016, 7*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	r, ok, err := a.Refusal(ctx, k)
	if !ok || err != nil || time.Until(r.Until) > maxRefusalLife || time.Until(r.Until) < maxRefusalLife-time.Minute {
		t.Fatalf("a week's refusal: %+v, %v, %v; want Until cut to %v", r, ok, err, maxRefusalLife)
	}
	if p := raw.PTTL(ctx, names[0].refusal).Val(); p > maxRefusalLife+refusalMargin {
		t.Fatalf("refusal TTL %v, beyond the bound", p)
	}
}

// TestForgetEndsTheRefusalAndDropsTheTokens: after Forget, no replica reads
// the refusal, the tokens stored before are not served, and the next call
// acquires and shares again.
func TestForgetEndsTheRefusalAndDropsTheTokens(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	a, _ := newCache(t, srv, CacheOptions{})
	b, _ := newCache(t, srv, CacheOptions{})
	k := testKey(tenantN(1))
	if err := a.Refuse(ctx, tenantOf(k), refusal(700016, time.Hour)); err != nil {
		t.Fatal(err)
	}
	old := mustToken(t, b, k, newAcquirer("during")) // e.g. a claims-less probe
	if err := b.Forget(ctx, tenantOf(k)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*Cache{a, b} {
		if r, ok, err := c.Refusal(ctx, tenantOf(k)); ok || err != nil {
			t.Fatalf("after Forget: %+v, %v, %v", r, ok, err)
		}
	}
	acq := newAcquirer("new")
	tok := mustToken(t, a, k, acq)
	if tok.Token == old.Token || acq.n.Load() != 1 {
		t.Fatal("the token stored before Forget was served")
	}
	if again := mustToken(t, b, k, acq); again.Token != tok.Token || acq.n.Load() != 1 {
		t.Fatal("the token acquired after Forget is not shared")
	}
	if s := b.Stats(); s.RefusalsForgotten != 1 {
		t.Fatalf("stats %+v", s)
	}
	// Forget of a tenant never refused is fine too.
	if err := a.Forget(ctx, tenantOf(testKey(tenantN(9)))); err != nil {
		t.Fatal(err)
	}
}

// TestRefusalsAcrossAKeyRotation: a replica with the new key (the old one
// in OlderKeys) reads the refusals of a replica still on the old key, and
// its Refuse stops the tokens the old-key replica stored.
func TestRefusalsAcrossAKeyRotation(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	k1, k2 := mustKey(t, "k1", 1), mustKey(t, "k2", 2)
	old, _ := newCache(t, srv, CacheOptions{}, k1)
	rotated, _ := newCache(t, srv, CacheOptions{}, k2, k1)
	k := testKey(tenantN(1))
	if err := old.Refuse(ctx, tenantOf(k), refusal(700016, time.Minute)); err != nil {
		t.Fatal(err)
	}
	if r, ok, err := rotated.Refusal(ctx, tenantOf(k)); !ok || err != nil || r.Code != 700016 {
		t.Fatalf("the rotated replica reads %+v, %v, %v", r, ok, err)
	}
	if err := rotated.Forget(ctx, tenantOf(k)); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := old.Refusal(ctx, tenantOf(k)); ok {
		t.Fatal("Forget on the rotated replica left the old key's refusal")
	}
	acq := newAcquirer("old")
	tok := mustToken(t, old, k, acq)
	if got := mustToken(t, rotated, k, newAcquirer("must-not")); got.Token != tok.Token {
		t.Fatal("the rotated replica is not served the old-key token")
	}
	if err := rotated.Refuse(ctx, tenantOf(k), refusal(700016, time.Minute)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*Cache{old, rotated} {
		if got := mustToken(t, c, k, newAcquirer("fresh")); got.Token == tok.Token {
			t.Fatal("the old-key token was served after the rotated replica's Refuse")
		}
	}
}

// TestRefuseRacesToken (run with -race): callers of two replicas ask for a
// tenant's tokens (four scopes) while one replica refuses it. No call that
// begins after Refuse returned gets a token whose acquisition began before
// Refuse was called: not from Redis, not from a store that raced it.
func TestRefuseRacesToken(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	a, _ := newCache(t, srv, CacheOptions{})
	b, _ := newCache(t, srv, CacheOptions{})
	base := testKey(tenantN(1))
	scopes := []string{"s1", "s2", "s3", "s4"}
	for round := range 10 {
		var epoch atomic.Int64 // rounds of Refuse called (odd: in progress)
		var mu sync.Mutex
		startedIn := map[string]int64{} // token -> epoch its acquire began in
		var seq atomic.Int64
		acquire := func(ctx context.Context) (azcore.AccessToken, error) {
			e := epoch.Load()
			time.Sleep(time.Duration(rand.N(3000)) * time.Microsecond)
			tok := azcore.AccessToken{Token: "t-" + strconv.FormatInt(seq.Add(1), 10), ExpiresOn: time.Now().Add(time.Hour)}
			mu.Lock()
			startedIn[tok.Token] = e
			mu.Unlock()
			return tok, nil
		}
		stop := make(chan struct{})
		var bad, calls atomic.Int64
		var wg sync.WaitGroup
		for w := range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := []*Cache{a, b}[w%2]
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					begin := epoch.Load()
					tok, err := c.Token(ctx, withScope(base, scopes[(w+i)%len(scopes)]), zeroToken, acquire)
					calls.Add(1)
					if err != nil {
						bad.Add(1)
						continue
					}
					mu.Lock()
					e := startedIn[tok.Token]
					mu.Unlock()
					// begin is even when Refuse of round begin/2 returned:
					// the token's acquisition must have begun after it was
					// called.
					if begin%2 == 0 && begin > 0 && e < begin-1 {
						bad.Add(1)
					}
				}
			}()
		}
		for range 3 {
			time.Sleep(time.Duration(5+rand.N(10)) * time.Millisecond)
			epoch.Add(1) // Refuse called
			if err := []*Cache{a, b}[round%2].Refuse(ctx, tenantOf(base), refusal(700016, time.Minute)); err != nil {
				t.Fatal(err)
			}
			epoch.Add(1) // Refuse returned
		}
		time.Sleep(10 * time.Millisecond)
		close(stop)
		wg.Wait()
		if bad.Load() != 0 {
			t.Fatalf("round %d: %d of %d calls got a token acquired before a Refuse that had returned (or an error)", round, bad.Load(), calls.Load())
		}
	}
}

// TestRefusalWithRedisDown: Refuse, Refusal and Forget fail (they do not
// stall) when Redis is down, and while the circuit breaker is open; the
// token path still degrades to a local acquisition.
func TestRefusalWithRedisDown(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	o := faultOpts()
	o.BreakerThreshold = 2
	o.BreakerCoolDown = time.Minute
	a, _ := newCache(t, srv, o)
	k := testKey(tenantN(1))
	srv.Stop()
	begin := time.Now()
	calls := []func() error{
		func() error { return a.Refuse(ctx, tenantOf(k), refusal(700016, time.Minute)) },
		func() error { _, _, err := a.Refusal(ctx, tenantOf(k)); return err },
		func() error { return a.Forget(ctx, tenantOf(k)) },
	}
	for i, call := range calls {
		if err := call(); err == nil {
			t.Fatalf("call %d succeeded with Redis down", i)
		}
	}
	// The breaker is open now: the calls fail at once, saying so.
	for i, call := range calls {
		if err := call(); !errors.Is(err, errBreakerOpen) {
			t.Fatalf("call %d with the breaker open: %v", i, err)
		}
	}
	if d := time.Since(begin); d > 2*time.Second {
		t.Fatalf("took %v with Redis down", d)
	}
	acq := newAcquirer("local")
	if _, err := a.Token(ctx, k, zeroToken, acq.acquire); err != nil || acq.n.Load() != 1 {
		t.Fatalf("Token with Redis down: %v, %d", err, acq.n.Load())
	}
}

// TestRefusalBadInput: a key without the app or the tenant, a code of 0 or a
// negative failure count is an InputError naming the parameter; Redis is
// not contacted.
func TestRefusalBadInput(t *testing.T) {
	client, err := NewClient("redis://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	c, err := NewCache(client, mustKey(t, "k1", 1), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	k := tenantOf(testKey(tenantN(1)))
	noTenant := k
	noTenant.Tenant = ""
	braces := k
	braces.ClientID = "{x}"
	ok := refusal(700016, time.Minute)
	for _, row := range []struct {
		name, param string
		err         error
	}{
		{"Refuse no tenant", "key", c.Refuse(ctx, noTenant, ok)},
		{"Refuse braces", "key", c.Refuse(ctx, braces, ok)},
		{"Refuse code 0", "r.Code", c.Refuse(ctx, k, kvassert.TenantRefusal{Until: ok.Until})},
		{"Refuse negative failures", "r.Failures", c.Refuse(ctx, k, kvassert.TenantRefusal{Code: 700016, Failures: -1})},
		{"Refusal no tenant", "key", func() error { _, _, err := c.Refusal(ctx, noTenant); return err }()},
		{"Forget no tenant", "key", c.Forget(ctx, noTenant)},
	} {
		var ie *inputerr.Error
		if !errors.As(row.err, &ie) || ie.Input != row.param || !strings.HasPrefix(row.err.Error(), "fleet: ") {
			t.Errorf("%s: %v, want an InputError for %s", row.name, row.err, row.param)
		}
	}
	if s := c.Stats(); s.Errors != 0 {
		t.Fatalf("Redis was contacted: %+v", s)
	}
}

// TestRefusalNamesHideTheTenant: the epoch and refusal names share the hash
// tag of the tenant's token names (one Cluster slot, one script), and
// neither names nor values show the tenant; a rejected entry is warned about
// without naming it.
func TestRefusalNamesHideTheTenant(t *testing.T) {
	srv, raw := startRaw(t)
	ctx := context.Background()
	var logs bytes.Buffer
	a, _ := newCache(t, srv, CacheOptions{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	k := testKey(tenantN(4242))
	mustToken(t, a, k, newAcquirer("x"))
	if err := a.Refuse(ctx, tenantOf(k), refusal(700016, time.Minute)); err != nil {
		t.Fatal(err)
	}
	tk := a.keysFor(t, k)
	names, _ := a.tenantNames(tenantOf(k))
	tag := tk.value[strings.Index(tk.value, "{"):strings.Index(tk.value, "}")]
	for _, n := range []string{names[0].epoch, names[0].refusal, tk.lock} {
		if !strings.Contains(n, tag+"}") {
			t.Fatalf("%s is not in the slot of %s", n, tk.value)
		}
	}
	raw.Set(ctx, names[0].refusal, "\x01\x02k1garbage-garbage-garbage-garbage", time.Minute)
	if _, ok, err := a.Refusal(ctx, tenantOf(k)); ok || err != nil {
		t.Fatalf("garbage refusal: %v, %v", ok, err)
	}
	keys := raw.Keys(ctx, "*").Val()
	texts := append([]string{logs.String()}, keys...)
	for _, key := range keys {
		texts = append(texts, raw.Get(ctx, key).Val())
	}
	for _, s := range texts {
		for _, needle := range append(unkeyedTenantHashes(k.Tenant), k.Tenant) {
			if strings.Contains(strings.ToLower(s), needle) {
				t.Fatalf("%q shows the tenant (%s)", s, needle)
			}
		}
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "refusal") {
		t.Fatalf("no warning for a rejected refusal: %q", logs.String())
	}
}

// unkeyedTenantHashes are hashes of a tenant anyone could compute.
func unkeyedTenantHashes(tenant string) []string {
	var out []string
	for _, in := range [][]byte{[]byte(tenant), appendField([]byte{0xff}, tenant), appendField(nil, tenant)} {
		s := sha256.Sum256(in)
		out = append(out, hex.EncodeToString(s[:]), hex.EncodeToString(s[:16]))
	}
	return out
}
