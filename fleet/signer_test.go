package fleet_test

import (
	"context"
	"crypto"
	"crypto/sha256"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kvassert/kvassert/fleet"
	"github.com/kvassert/kvassert/internal/redistest"
	"github.com/kvassert/kvassert/internal/testfixture"
	"github.com/kvassert/kvassert/keyvault"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// fleet.Throttle has keyvault.Throttle's method set: it is what
// keyvault.SignerOptions.Throttle takes.
var _ keyvault.Throttle = (*fleet.Throttle)(nil)

// signerEnv is the emulator, a Redis, and signers for the demo vault's key,
// each with a fleet Throttle of its own on the same Redis: replicas.
type signerEnv struct {
	e     *kvasserttest.Emulator
	srv   *redistest.Server
	keyID string
}

func newSignerEnv(t *testing.T) *signerEnv {
	t.Helper()
	e := testfixture.NewWorld(t, nil).Emu
	return &signerEnv{e: e, srv: redistest.Start(t), keyID: e.VaultURL(scenario.DemoVault) + "keys/" + scenario.DemoCertificate}
}

func (s *signerEnv) signer(t *testing.T, maxWait time.Duration) (*keyvault.Signer, *fleet.Throttle) {
	t.Helper()
	client, err := fleet.NewClient(s.srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	thr, err := fleet.NewThrottle(client, scenario.DemoVault+".vault.azure.net", &fleet.ThrottleOptions{OpTimeout: 5 * time.Second, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	cred := testfixture.VaultCredential(t, s.e)
	sg, err := keyvault.NewSigner(context.Background(), s.keyID, cred, &keyvault.SignerOptions{ClientOptions: s.e.ClientOptions(), Throttle: thr, MaxThrottleWait: maxWait})
	if err != nil {
		t.Fatal(err)
	}
	return sg, thr
}

func (s *signerEnv) signs() int64 { return s.e.Count(kvasserttest.OpKeySign) }

// TestSignerWithFleetThrottle: the signer's throttling semantics hold with
// fleet.Throttle on real Redis: Wait before each attempt, Throttled after
// each 429 (its Retry-After shared with another replica's signer), an
// immediate error when the hold-off outlasts the caller's deadline (and no
// request from the other replica either), and the MaxThrottleWait bound.
func TestSignerWithFleetThrottle(t *testing.T) {
	s := newSignerEnv(t)
	ctx := context.Background()
	a, ta := s.signer(t, 0)
	b, tb := s.signer(t, 0)
	d := sha256.Sum256([]byte("x"))

	// One 429 with Retry-After 2 s for a: a waits it out and retries; b,
	// starting during the hold-off, waits for it too instead of sending.
	s.e.InjectFault(kvasserttest.OpKeySign, kvasserttest.Fault{Status: 429, RetryAfter: 2 * time.Second, Times: 1})
	start := s.signs()
	done := make(chan error, 1)
	go func() { _, err := a.SignContext(ctx, d[:], crypto.SHA256); done <- err }()
	for s.signs() == start {
		time.Sleep(5 * time.Millisecond)
	}
	// Wait until a's Throttled has reached Redis.
	raw := redis.NewClient(&redis.Options{Addr: s.srv.Addr()})
	defer raw.Close()
	hold := fleet.DefaultPrefix + ":throttle:{" + scenario.DemoVault + ".vault.azure.net}:hold"
	for n, _ := raw.Exists(ctx, hold).Result(); n == 0; n, _ = raw.Exists(ctx, hold).Result() {
		if s.signs()-start > 1 {
			t.Fatalf("a retried before its hold-off was seen in Redis (%s)", hold)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := b.SignContext(ctx, d[:], crypto.SHA256); err != nil {
		t.Fatalf("b: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("a: %v", err)
	}
	if n := s.signs() - start; n != 3 {
		t.Fatalf("%d sign requests, want 3 (a's 429, a's retry, b's)", n)
	}
	if st := ta.Stats(); st.Waits != 2 || st.HoldOffs != 1 {
		t.Fatalf("a's throttle %+v: want a Wait before each of its 2 attempts, one held off", st)
	}
	if st := tb.Stats(); st.Waits != 1 || st.HoldOffs != 1 {
		t.Fatalf("b's throttle %+v: want one Wait, held off by a's 429", st)
	}

	// A 30 s hold-off past the caller's 2 s deadline: a fails at once
	// after its 429, and b fails at once without a request.
	s.e.InjectFault(kvasserttest.OpKeySign, kvasserttest.Fault{Status: 429, RetryAfter: 30 * time.Second, Times: 1})
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := a.SignContext(short, d[:], crypto.SHA256); err == nil || !strings.Contains(err.Error(), "past the caller's deadline") {
		t.Fatalf("a with a short deadline: %v", err)
	}
	before := s.signs()
	if _, err := b.SignContext(short, d[:], crypto.SHA256); err == nil || !strings.Contains(err.Error(), "past the caller's deadline") {
		t.Fatalf("b with a short deadline during a's hold-off: %v", err)
	}
	if n := s.signs() - before; n != 0 {
		t.Fatalf("b sent %d sign requests during the fleet's hold-off", n)
	}

	// MaxThrottleWait bounds a sign whose context never ends while the
	// vault throttles for ever.
	s.srv.FlushAll()
	c, _ := s.signer(t, 1500*time.Millisecond)
	s.e.InjectFault(kvasserttest.OpKeySign, kvasserttest.Fault{Status: 429})
	errc := make(chan error, 1)
	go func() { _, err := c.Sign(nil, d[:], crypto.SHA256); errc <- err }()
	select {
	case err := <-errc:
		if err == nil || !strings.Contains(err.Error(), "MaxThrottleWait") {
			t.Fatalf("throttled for ever: %v, want the MaxThrottleWait bound named", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a sign throttled for ever did not return within 30 s (MaxThrottleWait 1.5 s)")
	}
}
