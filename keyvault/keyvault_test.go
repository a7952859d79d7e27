package keyvault_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/kvassert/kvassert/internal/certcache"
	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/internal/holdoff"
	"github.com/kvassert/kvassert/internal/testfixture"
	"github.com/kvassert/kvassert/keyvault"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

func world() *scenario.Scenario {
	return testfixture.WithHSM("kvassert-hsm", scenario.VaultKey{Name: "ec", Kty: "EC-HSM", Curve: "P-384"}, scenario.VaultKey{Name: "rsa", Kty: "RSA-HSM", Size: 3072})
}

func setup(t *testing.T) (*kvasserttest.Emulator, azcore.TokenCredential, *keyvault.SignerOptions) {
	t.Helper()
	w := testfixture.NewWorld(t, &testfixture.WorldOptions{Scenario: world()})
	e, cred := w.Emu, w.VaultCred
	// Each test paces its signs with a gate of its own.
	return e, cred, &keyvault.SignerOptions{ClientOptions: e.ClientOptions(), Throttle: holdoff.New()}
}

func TestSignerAllAlgorithmsVerifyLocally(t *testing.T) {
	e, cred, opts := setup(t)
	ctx := context.Background()
	msg := []byte("kvassert")
	d256, d384 := sha256.Sum256(msg), sha512.Sum384(msg)

	rsaSigner, err := keyvault.NewSigner(ctx, "https://kvassert-hsm.managedhsm.azure.net/keys/rsa", cred, opts)
	if err != nil {
		t.Fatal(err)
	}
	pub := rsaSigner.Public().(*rsa.PublicKey)
	if pub.N.BitLen() != 3072 {
		t.Fatalf("public key has %d bits", pub.N.BitLen())
	}
	sig, err := rsaSigner.SignContext(ctx, d256[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256})
	if err != nil || rsa.VerifyPSS(pub, crypto.SHA256, d256[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) != nil {
		t.Fatalf("PS256: %v", err)
	}
	sig, err = rsaSigner.Sign(rand.Reader, d256[:], crypto.SHA256)
	if err != nil || rsa.VerifyPKCS1v15(pub, crypto.SHA256, d256[:], sig) != nil {
		t.Fatalf("RS256: %v", err)
	}

	ecSigner, err := keyvault.NewSigner(ctx, "https://kvassert-hsm.managedhsm.azure.net/keys/ec", cred, opts)
	if err != nil {
		t.Fatal(err)
	}
	sig, err = ecSigner.SignContext(ctx, d384[:], crypto.SHA384)
	if err != nil || !ecdsa.VerifyASN1(ecSigner.Public().(*ecdsa.PublicKey), d384[:], sig) {
		t.Fatalf("ES384 (ASN.1 as crypto.Signer requires): %v", err)
	}
	// Exactly one keys/sign call per signature.
	if n := e.Count(kvasserttest.OpKeySign); n != 3 {
		t.Fatalf("signs = %d, want 3", n)
	}
	// Refused locally, before any call.
	for _, c := range []struct {
		s    *keyvault.Signer
		d    []byte
		opts crypto.SignerOpts
		want string
	}{
		{rsaSigner, d256[:10], crypto.SHA256, "digest is 10 bytes"},
		{rsaSigner, d256[:], crypto.MD5, "not supported"},
		{rsaSigner, d256[:], &rsa.PSSOptions{SaltLength: 7, Hash: crypto.SHA256}, "salt length"},
		{rsaSigner, d256[:], nil, "options are required"},
		{ecSigner, d384[:], &rsa.PSSOptions{Hash: crypto.SHA384}, "PSS options given for an EC key"},
	} {
		if _, err := c.s.SignContext(ctx, c.d, c.opts); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("SignContext error = %v, want %q", err, c.want)
		}
	}
	if n := e.Count(kvasserttest.OpKeySign); n != 3 {
		t.Fatalf("refused signatures reached the vault: %d signs", n)
	}
}

func TestSignerErrorsAreClear(t *testing.T) {
	e, cred, opts := setup(t)
	ctx := context.Background()
	if _, err := keyvault.NewSigner(ctx, e.VaultURL(scenario.DemoVault)+"keys/missing", cred, opts); err == nil || !strings.Contains(err.Error(), "KeyNotFound") {
		t.Fatalf("missing key: %v", err)
	}
	if _, err := keyvault.NewSigner(ctx, "https://kvassert-hsm.managedhsm.azure.net/keys/rsa", nil, opts); err == nil || !strings.Contains(err.Error(), "no credential") {
		t.Fatalf("nil credential: %v", err)
	}
	e.Revoke("kvassert-hsm", emuhook.DemoWorkloadClientID, "keys/sign")
	s, err := keyvault.NewSigner(ctx, "https://kvassert-hsm.managedhsm.azure.net/keys/rsa", cred, opts)
	if err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256([]byte("x"))
	if _, err := s.SignContext(ctx, d[:], crypto.SHA256); err == nil || !strings.Contains(err.Error(), "Forbidden") {
		t.Fatalf("denied sign: %v", err)
	}
}

func TestCertificateCacheCachesAndRereads(t *testing.T) {
	e, cred, opts := setup(t)
	ctx := context.Background()
	logs := &safeBuffer{} // written by the background re-reads
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	src, err := certcache.New(e.VaultURL(scenario.DemoVault), scenario.DemoCertificate, cred, (&certcache.Options{TTL: time.Hour, ExpiryWarning: 400 * 24 * time.Hour, /* a 12-month certificate is "near expiry": warns once */
		Logger: slog.New(slog.NewTextHandler(logs, nil)), Now: clock}).WithSigner(*opts))
	if err != nil {
		t.Fatal(err)
	}
	c1, err := src.Certificate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := e.Certificate(scenario.DemoVault, scenario.DemoCertificate)
	if !c1.Certificate.Equal(want) || c1.Version == "" || !strings.Contains(c1.KeyID, "/keys/"+scenario.DemoCertificate+"/"+c1.Version) || c1.Exportable == nil || *c1.Exportable {
		t.Fatalf("certificate = %+v", c1)
	}
	// Concurrent first reads are merged; cached reads make no call.
	for range 5 {
		if _, err := src.Certificate(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.Count(kvasserttest.OpCertificateGet); n != 1 {
		t.Fatalf("reads = %d, want 1", n)
	}
	// cached asserts that Certificate serves a valid cached certificate.
	cached := func() *certcache.Certificate {
		t.Helper()
		c, err := src.Certificate(ctx)
		if err != nil || !c.Certificate.Equal(want) {
			t.Fatalf("not the cached certificate: %v", err)
		}
		return c
	}
	// TTL passes: the cached certificate is served and read again in the
	// background. The re-read is over when its certificate is the one
	// served (the emulator's count only says the request arrived; the
	// clock must not move before the re-read has noted when it read).
	advance(2 * time.Hour)
	if c := cached(); c != c1 {
		t.Fatal("after TTL: not the cached certificate")
	}
	waitUntil(t, func() bool { return cached() != c1 })
	if n := e.Count(kvasserttest.OpCertificateGet); n != 2 {
		t.Fatalf("reads = %d, want 2", n)
	}
	// The vault fails a re-read: the cached, still valid certificate is
	// used. Each call starts the re-read when none is in flight, so the
	// wait does not depend on when the previous one let go of its flight.
	advance(2 * time.Hour)
	e.InjectFault(kvasserttest.OpCertificateGet, kvasserttest.Fault{Status: 403, Times: 1})
	waitUntil(t, func() bool { cached(); return e.Count(kvasserttest.OpCertificateGet) >= 3 })
	// Invalidate forces a read, and its failure is reported (the cached one
	// was declared wrong). The failed background re-read may still be in
	// flight, and the forced read may join it (Invalidate does not cancel
	// it): the fault stays armed until the failure is seen, whichever read
	// took it, and is then cleared, so that no armed fault outlives this
	// step.
	src.Invalidate()
	e.InjectFault(kvasserttest.OpCertificateGet, kvasserttest.Fault{Status: 403})
	if _, err := src.Certificate(ctx); err == nil {
		t.Fatal("a failed read after Invalidate returned the invalidated certificate")
	}
	e.ClearFaults(kvasserttest.OpCertificateGet)
	if _, err := src.Certificate(ctx); err != nil {
		t.Fatalf("recovery: %v", err)
	}
	if got := strings.Count(logs.String(), "expires soon"); got != 1 {
		t.Fatalf("expiry warnings = %d, want 1:\n%s", got, logs.String())
	}
	if strings.Contains(logs.String(), "BEGIN") || strings.Contains(logs.String(), "eyJ") {
		t.Fatal("the log holds key or token material")
	}
}

func TestCertificateCacheRefusals(t *testing.T) {
	e, cred, opts := setup(t)
	ctx := context.Background()
	for _, c := range []struct{ url, name, want string }{
		{"https://kvassert-hsm.managedhsm.azure.net/", "x", "Managed HSM has no certificates"},
		{e.VaultURL(scenario.DemoVault), "bad_name", "not a valid name"},
		{"http://kvassert-demo.vault.azure.net/", "c", "uses http"},
	} {
		if _, err := certcache.New(c.url, c.name, cred, (&certcache.Options{}).WithSigner(*opts)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("NewCertificateCache(%s, %s) = %v, want %q", c.url, c.name, err, c.want)
		}
	}
	if _, err := certcache.New(e.VaultURL(scenario.DemoVault), "c", nil, nil); err == nil {
		t.Error("nil credential accepted")
	}
	if _, err := certcache.New(e.VaultURL(scenario.DemoVault), "c", cred, &certcache.Options{Version: "../x"}); err == nil {
		t.Error("bad version accepted")
	}
	missing, _ := certcache.New(e.VaultURL(scenario.DemoVault), "missing", cred, (&certcache.Options{}).WithSigner(*opts))
	if _, err := missing.Certificate(ctx); err == nil || !strings.Contains(err.Error(), "CertificateNotFound") {
		t.Fatalf("missing certificate: %v", err)
	}
	// A cancelled caller returns at once even while the read is slow.
	slow, _ := certcache.New(e.VaultURL(scenario.DemoVault), scenario.DemoCertificate, cred, (&certcache.Options{}).WithSigner(*opts))
	// The read is held at the vault until the caller returned: a caller
	// that waited for it would never return.
	hold := make(chan struct{})
	release := sync.OnceFunc(func() { close(hold) })
	defer release()
	e.InjectFault(kvasserttest.OpCertificateGet, kvasserttest.Fault{Hold: hold, Times: 1})
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, err := slow.Certificate(cctx)
	release()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("slow read: %v", err)
	}
}

// A vault URL on this machine is refused unless the caller opts in, so a
// configured URL can never make the app hand its vault token to a local
// listener; opted in, the emulator's default vault works at its bare address.
func TestLoopbackVaultsAreOptIn(t *testing.T) {
	e, cred, opts := setup(t)
	ctx := context.Background()
	keyID := e.URL() + "/keys/signing"
	if _, err := keyvault.NewSigner(ctx, keyID, cred, opts); err == nil || !strings.Contains(err.Error(), "AllowLoopback") {
		t.Fatalf("loopback key without opt-in: %v", err)
	}
	if _, err := certcache.New(e.URL(), scenario.DemoCertificate, cred, (&certcache.Options{}).WithSigner(*opts)); err == nil || !strings.Contains(err.Error(), "AllowLoopback") {
		t.Fatalf("loopback vault without opt-in: %v", err)
	}
	if n := len(e.Counts()); n != 0 {
		t.Fatalf("refused loopback URLs still made requests: %v", e.Counts())
	}
	in := *opts
	in.AllowLoopback = true
	s, err := keyvault.NewSigner(ctx, keyID, cred, &in)
	if err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256([]byte("x"))
	if _, err := s.SignContext(ctx, d[:], crypto.SHA256); err != nil {
		t.Fatalf("opted-in loopback sign: %v", err)
	}
	src, err := certcache.New(e.URL(), scenario.DemoCertificate, cred, (&certcache.Options{}).WithSigner(in))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Certificate(ctx); err != nil {
		t.Fatalf("opted-in loopback certificate: %v", err)
	}
}

// The vault keeps throttling beyond azcore's three retries: the signer waits
// it out while the context allows, and reports the 429 once it does not.
func TestSignerWaitsOutThrottling(t *testing.T) {
	e, cred, opts := setup(t)
	ctx := context.Background()
	s, err := keyvault.NewSigner(ctx, "https://kvassert-hsm.managedhsm.azure.net/keys/rsa", cred, opts)
	if err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256([]byte("x"))
	// Four 429s with Retry-After: 1 s, each waited out at the vault's gate.
	e.InjectFault(kvasserttest.OpKeySign, kvasserttest.Fault{Status: 429, RetryAfter: time.Second, Times: 4})
	if _, err := s.SignContext(ctx, d[:], crypto.SHA256); err != nil {
		t.Fatalf("throttled sign: %v", err)
	}
	if n := e.Count(kvasserttest.OpKeySign); n != 5 {
		t.Fatalf("sign requests = %d, want 5 (4 throttled + 1)", n)
	}
	// With a deadline too short to wait, the call returns at once and says the
	// vault is throttling, never a hang.
	e.InjectFault(kvasserttest.OpKeySign, kvasserttest.Fault{Status: 429, RetryAfter: 30 * time.Second})
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err = s.SignContext(short, d[:], crypto.SHA256)
	// (Had it waited, it would say "until the caller's deadline".)
	if err == nil || !strings.Contains(err.Error(), "(429: the vault's request limit) for 30s more, past the caller's deadline") || !strings.Contains(err.Error(), "Throttled") {
		t.Fatalf("err = %v, want it to say at once that the vault is throttling for 30s more, past the deadline, and the vault's answer", err)
	}
	// The gate is shut: the next caller with a short deadline is told at
	// once, without a request.
	signs := e.Count(kvasserttest.OpKeySign)
	_, err = s.SignContext(short, d[:], crypto.SHA256)
	var hold *keyvault.HoldOffError
	if !errors.As(err, &hold) || hold.Remaining < 25*time.Second || !strings.Contains(err.Error(), "past the caller's deadline") {
		t.Fatalf("err = %v, want a HoldOffError of about 30s", err)
	}
	if n := e.Count(kvasserttest.OpKeySign) - signs; n != 0 {
		t.Fatalf("%d sign requests sent through a shut gate", n)
	}
}

// Signers that share a Throttle share its hold-off: after one signer's 429
// the others wait for the gate instead of hammering the vault.
func TestThrottleIsSharedBySigners(t *testing.T) {
	e, cred, opts := setup(t)
	ctx := context.Background()
	a, _ := keyvault.NewSigner(ctx, "https://kvassert-hsm.managedhsm.azure.net/keys/rsa", cred, opts)
	b, _ := keyvault.NewSigner(ctx, "https://kvassert-hsm.managedhsm.azure.net/keys/ec", cred, opts)
	d := sha256.Sum256([]byte("x"))
	d384 := sha512.Sum384([]byte("x"))
	e.InjectFault(kvasserttest.OpKeySign, kvasserttest.Fault{Status: 429, RetryAfter: time.Second, Times: 1})
	if _, err := a.SignContext(ctx, d[:], crypto.SHA256); err != nil {
		t.Fatal(err)
	}
	// a's 429 shut the gate for a second; b, started right after, waits
	// for it and is not refused.
	signs := e.Count(kvasserttest.OpKeySign)
	if _, err := b.SignContext(ctx, d384[:], crypto.SHA384); err != nil {
		t.Fatal(err)
	}
	if n := e.Count(kvasserttest.OpKeySign) - signs; n != 1 {
		t.Fatalf("b made %d sign requests, want 1", n)
	}
}

// A sign whose context never ends still gives up on a vault that throttles
// for ever, after Options.MaxThrottleWait, naming the throttling.
func TestSignerThrottleBudget(t *testing.T) {
	e, cred, opts := setup(t)
	ctx := context.Background()
	bounded := *opts
	bounded.MaxThrottleWait = 1500 * time.Millisecond
	s, err := keyvault.NewSigner(ctx, "https://kvassert-hsm.managedhsm.azure.net/keys/rsa", cred, &bounded)
	if err != nil {
		t.Fatal(err)
	}
	e.InjectFault(kvasserttest.OpKeySign, kvasserttest.Fault{Status: 429}) // no Retry-After, for ever
	d := sha256.Sum256([]byte("x"))
	err = within30s(t, func() error { _, err := s.Sign(nil, d[:], crypto.SHA256); return err }, "Sign with a context that never ends did not return within 30s while the vault throttled (MaxThrottleWait 1.5s)")
	if err == nil || !strings.Contains(err.Error(), "(429: the vault's request limit)") || !strings.Contains(err.Error(), "MaxThrottleWait") || !strings.Contains(err.Error(), "Throttled") {
		t.Fatalf("err = %v, want it to name the throttling, the budget and the vault's answer", err)
	}
	if n := e.Count(kvasserttest.OpKeySign); n < 1 || n > 4 {
		t.Fatalf("sign requests = %d, want 1-4 (one per second of hold-off within 1.5s)", n)
	}
	if _, err := keyvault.NewSigner(ctx, "https://kvassert-hsm.managedhsm.azure.net/keys/rsa", cred, &keyvault.SignerOptions{ClientOptions: opts.ClientOptions, MaxThrottleWait: -time.Second}); err == nil || !strings.Contains(err.Error(), "MaxThrottleWait") {
		t.Fatalf("negative MaxThrottleWait: %v", err)
	}
}

// recordingThrottle is a Throttle that records what the signer tells it.
type recordingThrottle struct {
	mu        sync.Mutex
	waits     int
	throttled []time.Duration
	refuse    error
}

func (r *recordingThrottle) Wait(context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.waits++
	return r.refuse
}

func (r *recordingThrottle) Throttled(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.throttled = append(r.throttled, d)
}

// The signer asks its Throttle before every attempt, tells it every 429
// with the answer's Retry-After (0 without one), and sends nothing when the
// Throttle refuses.
func TestSignerUsesItsThrottle(t *testing.T) {
	e, cred, o, r := setupThrottled(t)
	ctx := context.Background()
	s, err := keyvault.NewSigner(ctx, "https://kvassert-hsm.managedhsm.azure.net/keys/rsa", cred, &o)
	if err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256([]byte("x"))
	e.InjectFault(kvasserttest.OpKeySign, kvasserttest.Fault{Status: 429, RetryAfter: 2 * time.Second, Times: 1})
	if _, err := s.SignContext(ctx, d[:], crypto.SHA256); err != nil {
		t.Fatal(err)
	}
	e.InjectFault(kvasserttest.OpKeySign, kvasserttest.Fault{Status: 429, Times: 1})
	if _, err := s.SignContext(ctx, d[:], crypto.SHA256); err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	waits, throttled := r.waits, r.throttled
	r.mu.Unlock()
	if waits != 4 || len(throttled) != 2 || throttled[0] != 2*time.Second || throttled[1] != 0 {
		t.Fatalf("waits %d, throttled %v; want 4 waits and [2s 0s]", waits, throttled)
	}
	signs := e.Count(kvasserttest.OpKeySign)
	r.mu.Lock()
	r.refuse = errors.New("fleet gate unreachable")
	r.mu.Unlock()
	if _, err := s.SignContext(ctx, d[:], crypto.SHA256); err == nil || !strings.Contains(err.Error(), "fleet gate unreachable") {
		t.Fatalf("refused by the Throttle: %v", err)
	}
	if n := e.Count(kvasserttest.OpKeySign) - signs; n != 0 {
		t.Fatalf("%d sign requests although the Throttle refused", n)
	}

	// A Throttle that never holds anyone off still cannot make a sign loop
	// for ever: the budget ends it.
	o.Throttle, o.MaxThrottleWait = &recordingThrottle{}, 200*time.Millisecond
	lax, err := keyvault.NewSigner(ctx, "https://kvassert-hsm.managedhsm.azure.net/keys/rsa", cred, &o)
	if err != nil {
		t.Fatal(err)
	}
	e.InjectFault(kvasserttest.OpKeySign, kvasserttest.Fault{Status: 429})
	err = within30s(t, func() error { _, err := lax.SignContext(ctx, d[:], crypto.SHA256); return err }, "a sign behind a Throttle that never waits looped on 429 for 30s (MaxThrottleWait 200ms)")
	if err == nil || !strings.Contains(err.Error(), "MaxThrottleWait") {
		t.Fatalf("err = %v, want it to name MaxThrottleWait", err)
	}
	e.ClearFaults()

	// A caller whose context ended before any throttling gets its context's
	// error, not a story about throttling.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.SignContext(cancelled, d[:], crypto.SHA256); !errors.Is(err, context.Canceled) || strings.Contains(err.Error(), "429") {
		t.Fatalf("cancelled sign: %v", err)
	}
}

// A certificate source's signers use the Throttle of its options.
func TestCertificateSourceUsesItsThrottle(t *testing.T) {
	e, cred, o, r := setupThrottled(t)
	ctx := context.Background()
	src, err := certcache.New(e.VaultURL(scenario.DemoVault), scenario.DemoCertificate, cred, (&certcache.Options{}).WithSigner(o))
	if err != nil {
		t.Fatal(err)
	}
	c, err := src.Certificate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256([]byte("x"))
	if _, err := c.Signer.SignContext(ctx, d[:], crypto.SHA256); err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.waits != 1 {
		t.Fatalf("Throttle.Wait calls = %d, want 1", r.waits)
	}
}

// withPublicKey is o (nil: none) with PublicKey set to pub.
func withPublicKey(o *keyvault.SignerOptions, pub crypto.PublicKey) *keyvault.SignerOptions {
	var c keyvault.SignerOptions
	if o != nil {
		c = *o
	}
	c.PublicKey = pub
	return &c
}

// setupThrottled is setup with a recordingThrottle in the options.
func setupThrottled(t *testing.T) (*kvasserttest.Emulator, azcore.TokenCredential, keyvault.SignerOptions, *recordingThrottle) {
	t.Helper()
	e, cred, opts := setup(t)
	r := &recordingThrottle{}
	o := *opts
	o.Throttle = r
	return e, cred, o, r
}

// within30s runs sign and returns its error; it fails the test with stuck
// when sign has not returned within 30 seconds.
func within30s(t *testing.T, sign func() error, stuck string) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- sign() }()
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal(stuck)
		return nil
	}
}
