package fleet_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/fleet"
	"github.com/kvassert/kvassert/internal/credclock"
	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/internal/testfixture"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// replicaWith is one replica whose credential options mod changes.
func (c *credEnv) replicaWith(t *testing.T, mod func(*kvassert.CredentialOptions)) replicaCred {
	t.Helper()
	client, err := fleet.NewClient(c.srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	cache, err := fleet.NewCache(client, c.key, &fleet.CacheOptions{OpTimeout: 5 * time.Second, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cache.Close() })
	cred, _ := testfixture.Credential(t, c.e, func(co *kvassert.CredentialOptions) {
		co.SharedCache = cache
		co.Logger = slog.New(slog.DiscardHandler)
		if mod != nil {
			mod(co)
		}
	})
	return replicaCred{cred: cred, cache: cache}
}

// refused700016 fails unless err is Entra's classified AADSTS700016.
func refused700016(t *testing.T, who string, err error) {
	t.Helper()
	var ae *kvassert.AuthError
	if !errors.As(err, &ae) || ae.Code != 700016 {
		t.Fatalf("%s: %v; want the classified AADSTS700016", who, err)
	}
}

// TestOffboardedTenantStopsOnEveryReplica is issue 21's two-replica test:
// "A tenant removed while its tokens are cached in Redis by another
// replica: both replicas stop serving it within one failed request each; no
// token for a removed tenant is served from any cache after that."
//
// Replica A acquires the tenant's token, replica B is served it from Redis
// (both hold it in memory too). The customer removes the app. One failed
// request on each replica (a claims challenge, which always goes past the
// caches): from then on GetToken for the tenant fails on both with the
// classified 700016 and no Key Vault sign, another tenant is unaffected,
// and a third replica that does not remember refusals is not served the
// tenant's token from Redis either. After re-consent and ForgetTenant,
// tokens flow again, shared.
func TestOffboardedTenantStopsOnEveryReplica(t *testing.T) {
	c := newCredEnv(t, 2)
	gone, kept := c.tenants[0], c.tenants[1]
	offboarded := make(chan string, 10)
	a := c.replicaWith(t, func(o *kvassert.CredentialOptions) {
		o.TenantOffboarded = func(tenant string, _ *kvassert.AuthError) { offboarded <- tenant }
	})
	b := c.replica(t, c.key, fleet.CacheOptions{})
	ctx := context.Background()

	s0 := c.signs()
	if n := a.get(t, c.tenants) + b.get(t, c.tenants); n != 0 {
		t.Fatalf("%d caller errors before the removal", n)
	}
	if n := c.signs() - s0; n != 2 {
		t.Fatalf("%d signs for 2 tenants on 2 replicas; want B served from Redis", n)
	}

	if err := c.e.SetConsent(scenario.DemoAppClientID, gone, false); err != nil {
		t.Fatal(err)
	}
	// Still served from memory: nothing has failed yet.
	if n := a.get(t, []string{gone}) + b.get(t, []string{gone}); n != 0 {
		t.Fatal("the tenant's cached token stopped before any request failed")
	}

	// One failed request on each replica.
	challenge := policy.TokenRequestOptions{Scopes: []string{testfixture.Graph}, TenantID: gone, Claims: `{"access_token":{"nbf":{"essential":true,"value":"1700000000"}}}`}
	s1, t1 := c.signs(), c.e.Count(kvasserttest.OpToken)
	_, err := a.cred.GetToken(ctx, challenge)
	refused700016(t, "A's claims request", err)
	_, err = b.cred.GetToken(ctx, challenge)
	refused700016(t, "B's claims request", err)
	// A's went to Entra; B's failed on the refusal A shared, with no sign.
	if n, r := c.signs()-s1, c.e.Count(kvasserttest.OpToken)-t1; n != 1 || r != 1 {
		t.Fatalf("%d signs and %d token requests for the two failed requests; want B to fail on A's shared refusal", n, r)
	}

	// From then on: fail fast on both, no sign, no token from any cache.
	s2 := c.signs()
	for round := range 3 {
		for name, r := range map[string]replicaCred{"A": a, "B": b} {
			tok, err := r.cred.GetToken(ctx, testfixture.Opts(gone))
			if err == nil {
				t.Fatalf("round %d: %s served a token of the removed tenant (%d chars)", round, name, len(tok.Token))
			}
			refused700016(t, name, err)
			var ae *kvassert.AuthError
			if errors.As(err, &ae) && ae.RefusedUntil.IsZero() {
				t.Fatalf("%s: %v is not the remembered refusal (a request went out)", name, err)
			}
		}
	}
	if n := c.signs() - s2; n != 0 {
		t.Fatalf("%d signs for a removed tenant after one failed request per replica", n)
	}
	if n := a.get(t, []string{kept}) + b.get(t, []string{kept}); n != 0 {
		t.Fatal("another tenant stopped working")
	}
	select { // TenantOffboarded runs in its own goroutine
	case tenant := <-offboarded:
		if tenant != gone {
			t.Fatalf("A reported %s offboarded", tenant)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("A did not report the tenant offboarded")
	}
	time.Sleep(50 * time.Millisecond)
	if n := len(offboarded); n != 0 {
		t.Fatalf("A reported the tenant offboarded %d more times", n)
	}

	// A replica that does not remember refusals asks Entra (refused), and
	// is not served the tenant's token from Redis.
	fresh := c.replicaWith(t, func(o *kvassert.CredentialOptions) { o.RefusedTenantRetry = -1 })
	_, err = fresh.cred.GetToken(ctx, testfixture.Opts(gone))
	refused700016(t, "a third replica", err)
	if s := fresh.cache.Stats(); s.Hits != 0 {
		t.Fatalf("the third replica was served %d tokens from Redis", s.Hits)
	}

	// Re-consent, ForgetTenant: tokens flow again, acquired once, shared.
	if err := c.e.SetConsent(scenario.DemoAppClientID, gone, true); err != nil {
		t.Fatal(err)
	}
	for name, r := range map[string]replicaCred{"A": a, "B": b} {
		if err := r.cred.ForgetTenant(ctx, gone); err != nil {
			t.Fatalf("%s: ForgetTenant: %v", name, err)
		}
	}
	s3 := c.signs()
	if n := a.get(t, []string{gone}) + b.get(t, []string{gone}) + fresh.get(t, []string{gone}); n != 0 {
		t.Fatalf("%d caller errors after re-consent and ForgetTenant", n)
	}
	if n := c.signs() - s3; n != 1 {
		t.Fatalf("%d signs after ForgetTenant; want one, shared through Redis", n)
	}
}

// scriptCalls is the number of scripts (EVALSHA, EVAL: each one round trip
// of ours) redis-server ran since the last CONFIG RESETSTAT (INFO
// commandstats; the commands a script runs are counted apart).
func (c *credEnv) scriptCalls(t *testing.T) int {
	t.Helper()
	info, err := c.raw.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":calls=")
		if !ok || (name != "cmdstat_evalsha" && name != "cmdstat_eval") {
			continue
		}
		calls, _, _ := strings.Cut(rest, ",")
		v, _ := strconv.Atoi(calls)
		n += v
	}
	return n
}

// TestRedisServedMissIsOneRoundTrip (issue 21): with tenant refusals
// shared, a credential's local miss served from Redis is still one script
// call (one round trip): the token read checks the tenant's epoch itself, and the refusal
// is asked only before a request to Entra.
func TestRedisServedMissIsOneRoundTrip(t *testing.T) {
	c := newCredEnv(t, 3)
	a, b := c.replica(t, c.key, fleet.CacheOptions{}), c.replica(t, c.key, fleet.CacheOptions{})
	if n := a.get(t, c.tenants); n != 0 {
		t.Fatal(n)
	}
	if err := c.raw.ConfigResetStat(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	s0 := c.signs()
	if n := b.get(t, c.tenants); n != 0 {
		t.Fatal(n)
	}
	if n, s := c.scriptCalls(t), c.signs()-s0; n != len(c.tenants) || s != 0 {
		t.Fatalf("%d Redis scripts and %d signs for %d tokens served from Redis; want one round trip each", n, s, len(c.tenants))
	}
}

// Issue 21 (a consent clears the refusal at once): replicas A and B both
// remember tailspin's refusal (A's, shared through Redis; B learned it
// there), with a back-off longer than sharedRefusalRecheck. The customer
// consents and ForgetTenant is called on A only (as the tenants Handler
// does on the replica that got the consent redirect). B, failing fast on
// its own remembered refusal, asks Redis again within 10 s (one read),
// finds the refusal gone, and gets a token: no replica waits for its
// back-off.
func TestForgetTenantOnOneReplicaClearsEveryReplica(t *testing.T) {
	c := newCredEnv(t, 1)
	tailspin := emuhook.DemoTailspinTenant
	var off atomic.Int64 // both credentials' clock: time.Now + off
	now := func() time.Time { return time.Now().Add(time.Duration(off.Load())) }
	a := c.replicaWith(t, func(o *kvassert.CredentialOptions) { o.RefusedTenantRetry = time.Hour })
	b := c.replicaWith(t, func(o *kvassert.CredentialOptions) { o.RefusedTenantRetry = time.Hour })
	credclock.Set(a.cred, now)
	credclock.Set(b.cred, now)
	ctx := context.Background()

	// A is refused three times in a row (each time its back-off ended):
	// the third back-off is 20 s to 30 s.
	var until time.Time
	for i := range 3 {
		_, err := a.cred.GetToken(ctx, testfixture.Opts(tailspin))
		refused700016(t, "A", err)
		_, err = a.cred.GetToken(ctx, testfixture.Opts(tailspin))
		refused700016(t, "A again", err)
		var ae *kvassert.AuthError
		errors.As(err, &ae)
		if until = ae.RefusedUntil; until.IsZero() {
			t.Fatalf("refusal %d: A did not remember it", i+1)
		}
		if i < 2 {
			off.Store(int64(until.Sub(time.Now())) + int64(time.Second))
		}
	}
	if d := until.Sub(now()); d < 19*time.Second {
		t.Fatalf("A's back-off %v, want 20 s or more", d)
	}
	// B learns it from Redis, and remembers it.
	s0, r0 := c.signs(), c.e.Count(kvasserttest.OpToken)
	for range 2 {
		_, err := b.cred.GetToken(ctx, testfixture.Opts(tailspin))
		refused700016(t, "B", err)
	}
	if n, r := c.signs()-s0, c.e.Count(kvasserttest.OpToken)-r0; n != 0 || r != 0 {
		t.Fatalf("B signed %d times, sent %d token requests; want the shared refusal", n, r)
	}

	if err := c.e.SetConsent(scenario.DemoAppClientID, tailspin, true); err != nil {
		t.Fatal(err)
	}
	if err := a.cred.ForgetTenant(ctx, tailspin); err != nil {
		t.Fatal(err)
	}
	if n := a.get(t, []string{tailspin}); n != 0 {
		t.Fatal("A: no token after consent and ForgetTenant")
	}
	// Within the interval B still fails fast (no Redis read yet) ...
	_, err := b.cred.GetToken(ctx, testfixture.Opts(tailspin))
	refused700016(t, "B right after the consent", err)
	// ... and after it, well before its back-off ends, gets a token.
	off.Add(int64(11 * time.Second))
	if !now().Before(until) {
		t.Fatal("the clock passed B's back-off: the test proves nothing")
	}
	tok, err := b.cred.GetToken(ctx, testfixture.Opts(tailspin))
	if err != nil {
		t.Fatalf("B, 11 s after the consent and A's ForgetTenant: %v; want a token", err)
	}
	if tid, _ := testfixture.TenantOf(tok.Token); tid != tailspin {
		t.Fatalf("B got a token for %s", tid)
	}
}

// refuseFails is a fleet Cache whose Refuse fails, as it does when Redis
// times out or the breaker is open at that moment.
type refuseFails struct{ *fleet.Cache }

func (refuseFails) Refuse(context.Context, kvassert.SharedKey, kvassert.TenantRefusal) error {
	return errors.New("redis: i/o timeout")
}

// A replica whose Refuse failed (a Redis blip) did not move the tenant's
// epoch: Redis still holds the removed tenant's token. When its back-off
// ends, the one retry must ask Entra, not take that token from Redis (before
// the fix it did: the token was served and cached again, the refusal
// cleared, the tenant counted as working, until the token expired).
func TestRetryAfterUnsharedRefusalSkipsRedis(t *testing.T) {
	c := newCredEnv(t, 1)
	gone := c.tenants[0]
	var off atomic.Int64
	a := c.replicaWith(t, func(o *kvassert.CredentialOptions) {
		o.SharedCache = refuseFails{o.SharedCache.(*fleet.Cache)}
	})
	credclock.Set(a.cred, func() time.Time { return time.Now().Add(time.Duration(off.Load())) })
	ctx := context.Background()
	if n := a.get(t, []string{gone}); n != 0 {
		t.Fatal("no token")
	}
	if err := c.e.SetConsent(scenario.DemoAppClientID, gone, false); err != nil {
		t.Fatal(err)
	}
	challenge := policy.TokenRequestOptions{Scopes: []string{testfixture.Graph}, TenantID: gone, Claims: `{"access_token":{"nbf":{"essential":true,"value":"1700000000"}}}`}
	_, err := a.cred.GetToken(ctx, challenge)
	refused700016(t, "the claims request", err)
	off.Store(int64(8 * time.Second)) // the first back-off (5 s to 7.5 s) ends
	reqs := c.e.Count(kvasserttest.OpToken)
	tok, err := a.cred.GetToken(ctx, testfixture.Opts(gone))
	if err == nil {
		t.Fatalf("the retry was served the removed tenant's token from Redis (%d chars)", len(tok.Token))
	}
	refused700016(t, "the retry", err)
	if n := c.e.Count(kvasserttest.OpToken) - reqs; n != 1 {
		t.Fatalf("%d token requests for the retry, want 1", n)
	}
}

// holdTransport holds the answer of the next token request once armed.
type holdTransport struct {
	next    policy.Transporter
	armed   atomic.Bool
	held    chan struct{}
	release chan struct{}
}

func (h *holdTransport) Do(req *http.Request) (*http.Response, error) {
	resp, err := h.next.Do(req)
	if strings.HasSuffix(req.URL.Path, "/oauth2/v2.0/token") && h.armed.CompareAndSwap(true, false) {
		close(h.held)
		<-h.release
	}
	return resp, err
}

// Issue 21's two-replica promise under the race (run with -race): replica
// B's acquisition was answered by Entra just before the customer removed
// the app, and reaches B only after replica A was refused and shared the
// refusal. B's caller gets its token, but Redis does not keep it: a third
// replica is not served it (it fails fast on A's refusal, no sign), and B
// stops serving the tenant after one failed request of its own.
func TestAcquisitionInFlightAcrossARefusalIsNotShared(t *testing.T) {
	c := newCredEnv(t, 1)
	gone := c.tenants[0]
	ht := &holdTransport{held: make(chan struct{}), release: make(chan struct{})}
	a := c.replicaWith(t, nil)
	b := c.replicaWith(t, func(o *kvassert.CredentialOptions) {
		ht.next = o.ClientOptions.Transport
		o.ClientOptions.Transport = ht
	})
	ctx := context.Background()
	ht.armed.Store(true)
	late := make(chan error, 1)
	go func() {
		_, err := b.cred.GetToken(ctx, testfixture.Opts(gone))
		late <- err
	}()
	<-ht.held // issued to B, not stored yet
	if err := c.e.SetConsent(scenario.DemoAppClientID, gone, false); err != nil {
		t.Fatal(err)
	}
	_, err := a.cred.GetToken(ctx, policy.TokenRequestOptions{TenantID: gone, Scopes: []string{"https://vault.azure.net/.default"}})
	refused700016(t, "A", err)
	close(ht.release)
	if err := <-late; err != nil {
		t.Fatalf("B's caller: %v", err)
	}
	s0 := c.signs()
	third := c.replicaWith(t, nil)
	_, err = third.cred.GetToken(ctx, testfixture.Opts(gone))
	refused700016(t, "a third replica", err)
	if s := third.cache.Stats(); s.Hits != 0 || c.signs() != s0 {
		t.Fatalf("the third replica: %d tokens from Redis, %d signs; want none", s.Hits, c.signs()-s0)
	}
	challenge := policy.TokenRequestOptions{Scopes: []string{testfixture.Graph}, TenantID: gone, Claims: `{"access_token":{"nbf":{"essential":true,"value":"1700000000"}}}`}
	_, err = b.cred.GetToken(ctx, challenge)
	refused700016(t, "B's failed request", err)
	tok, err := b.cred.GetToken(ctx, testfixture.Opts(gone))
	if err == nil {
		t.Fatalf("B still serves the removed tenant (%d chars)", len(tok.Token))
	}
	refused700016(t, "B", err)
}

// A tenant's epoch rolled back in Redis (a failover to a lagging Redis
// replica that lost the Refuse, or someone who can write to Redis and
// kept the old value): the old token entries match again. A replica that
// remembers the refusal must not take one of them when its back-off ends:
// its one retry asks Entra (before the fix it was served the removed
// tenant's token from Redis, cached it and cleared the refusal). A replica
// that never saw the refusal is served it: the documented limit (Redis
// holds the only record of the refusal there).
func TestRetryIgnoresRolledBackEpoch(t *testing.T) {
	c := newCredEnv(t, 1)
	gone := c.tenants[0]
	var off atomic.Int64
	a := c.replicaWith(t, nil)
	credclock.Set(a.cred, func() time.Time { return time.Now().Add(time.Duration(off.Load())) })
	ctx := context.Background()
	if n := a.get(t, []string{gone}); n != 0 {
		t.Fatal("no token")
	}
	// The tenant has no epoch yet (none was ever moved): rolled back, the
	// epoch key is gone again.
	if epochs, err := c.raw.Keys(ctx, fleet.DefaultPrefix+":*:epoch").Result(); err != nil || len(epochs) != 0 {
		t.Fatalf("epoch keys %v, %v", epochs, err)
	}
	if err := c.e.SetConsent(scenario.DemoAppClientID, gone, false); err != nil {
		t.Fatal(err)
	}
	challenge := policy.TokenRequestOptions{Scopes: []string{testfixture.Graph}, TenantID: gone, Claims: `{"access_token":{"nbf":{"essential":true,"value":"1700000000"}}}`}
	_, err := a.cred.GetToken(ctx, challenge)
	refused700016(t, "the claims request", err)
	epochs, err := c.raw.Keys(ctx, fleet.DefaultPrefix+":*:epoch").Result()
	if err != nil || len(epochs) != 1 {
		t.Fatalf("epoch keys after the refusal %v, %v", epochs, err)
	}
	base := strings.TrimSuffix(epochs[0], ":epoch")
	if err := c.raw.Del(ctx, epochs[0], base+":refusal").Err(); err != nil { // rolled back
		t.Fatal(err)
	}
	off.Store(int64(8 * time.Second)) // the first back-off ends
	reqs := c.e.Count(kvasserttest.OpToken)
	tok, err := a.cred.GetToken(ctx, testfixture.Opts(gone))
	if err == nil {
		t.Fatalf("the retry was served the removed tenant's token from Redis (%d chars)", len(tok.Token))
	}
	refused700016(t, "the retry", err)
	if n := c.e.Count(kvasserttest.OpToken) - reqs; n != 1 {
		t.Fatalf("%d token requests for the retry, want 1", n)
	}
}
