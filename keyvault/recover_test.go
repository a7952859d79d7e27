package keyvault_test

import (
	"context"
	"crypto"
	"crypto/sha256"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/internal/certcache"
	"github.com/kvassert/kvassert/internal/testfixture"
	"github.com/kvassert/kvassert/keyvault"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// panickyCredential is a vault credential that panics while on.
type panickyCredential struct {
	inner azcore.TokenCredential
	on    atomic.Bool
	calls atomic.Int64
}

func (p *panickyCredential) GetToken(ctx context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	p.calls.Add(1)
	if p.on.Load() {
		panic("SECRETMARKER in the vault credential")
	}
	return p.inner.GetToken(ctx, o)
}

// A vault credential that panics in a sign: the signer returns a
// PanicError (which does not quote the panic value) instead of panicking,
// and once the credential stops panicking the next sign works. azcore's
// bearer policy is not panic-safe (a panic leaves its token "being
// acquired" for good, and every later request waited forever), so the
// signer's clients get the credential behind a recovering wrapper.
func TestSignerSurvivesAPanickingVaultCredential(t *testing.T) {
	e, inner, opts := setup(t)
	cred := &panickyCredential{inner: inner}
	cred.on.Store(true)
	cert, err := e.Certificate(scenario.DemoVault, scenario.DemoCertificate)
	if err != nil {
		t.Fatal(err)
	}
	keyID := strings.TrimSuffix(e.VaultURL(scenario.DemoVault), "/") + "/keys/" + scenario.DemoCertificate
	s, err := keyvault.NewSigner(context.Background(), keyID, cred, withPublicKey(opts, cert.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("x"))
	_, err = s.SignContext(context.Background(), digest[:], crypto.SHA256)
	var pe *kvassert.PanicError
	if !errors.As(err, &pe) || strings.Contains(err.Error(), "SECRETMARKER") {
		t.Fatalf("err = %v, want a PanicError that does not quote the panic", err)
	}
	cred.on.Store(false)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // a safety bound: it hung before
	defer cancel()
	if _, err := s.SignContext(ctx, digest[:], crypto.SHA256); err != nil {
		t.Fatalf("the sign after the panic: %v", err)
	}
}

// panicOnWarn is a slog handler that panics on warnings while on.
type panicOnWarn struct{ on atomic.Bool }

func (h *panicOnWarn) Enabled(context.Context, slog.Level) bool { return true }
func (h *panicOnWarn) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *panicOnWarn) WithGroup(string) slog.Handler            { return h }
func (h *panicOnWarn) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn && h.on.Load() {
		panic("SECRETMARKER in the logger")
	}
	return nil
}

// The certificate cache's background re-read runs in a goroutine of its
// own: a panic there (here the Logger, warning that the re-read failed)
// ended the process. Now it is recovered, the cached certificate is still
// served, and a later re-read runs and adopts a renewed version.
func TestCertificateCacheBackgroundRereadRecovers(t *testing.T) {
	w := testfixture.NewWorld(t, &testfixture.WorldOptions{Scenario: world()})
	e, cred := w.Emu, w.VaultCred
	clock := testfixture.NewClock(time.Now())
	h := &panicOnWarn{}
	opts := e.ClientOptions()
	opts.Retry = policy.RetryOptions{MaxRetries: -1}
	c, err := certcache.New(e.VaultURL(scenario.DemoVault), scenario.DemoCertificate, cred, &certcache.Options{ClientOptions: opts, TTL: time.Hour, Now: clock.Now, Logger: slog.New(h)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	first, err := c.Certificate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	h.on.Store(true)
	e.InjectFault(kvasserttest.OpCertificateGet, kvasserttest.Fault{Status: 503, Times: 1})
	clock.Add(2 * time.Hour) // TTL passed: a background re-read, which fails and warns
	if got, err := c.Certificate(ctx); err != nil || got != first {
		t.Fatalf("after the TTL: %v, or not the cached certificate", err)
	}
	waitUntil(t, func() bool { return e.Count(kvasserttest.OpCertificateGet) == 2 })
	h.on.Store(false)
	version := renew(t, e)
	// The re-read that panicked released its key: after the back-off a
	// new one runs and adopts the renewed version.
	waitUntil(t, func() bool {
		clock.Add(10 * time.Minute)
		got, err := c.Certificate(ctx)
		return err == nil && got.Version == version
	})
}

// A caller whose context has ended starts no vault call: a cold
// Certificate does not start a read (it started one in the background
// before), and a sign sends nothing.
func TestEndedContextStartsNoVaultCall(t *testing.T) {
	e, cred, opts := setup(t)
	c, err := certcache.New(e.VaultURL(scenario.DemoVault), scenario.DemoCertificate, cred, (&certcache.Options{}).WithSigner(*opts))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for range 5 {
		if _, err := c.Certificate(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("Certificate with a cancelled context: %v", err)
		}
	}
	cert, err := e.Certificate(scenario.DemoVault, scenario.DemoCertificate)
	if err != nil {
		t.Fatal(err)
	}
	s, err := keyvault.NewSigner(context.Background(), strings.TrimSuffix(e.VaultURL(scenario.DemoVault), "/")+"/keys/"+scenario.DemoCertificate, cred, withPublicKey(opts, cert.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("x"))
	if _, err := s.SignContext(ctx, digest[:], crypto.SHA256); !errors.Is(err, context.Canceled) {
		t.Fatalf("SignContext with a cancelled context: %v", err)
	}
	// A live call afterwards: its read is the first one the vault sees.
	if _, err := c.Certificate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n, s := e.Count(kvasserttest.OpCertificateGet), e.Count(kvasserttest.OpKeySign); n != 1 || s != 0 {
		t.Fatalf("cancelled callers made vault calls: %d certificate reads (want 1: the live one), %d signs", n, s)
	}
}

// panicAlways is a slog handler that panics on every record while on.
type panicAlways struct{ on atomic.Bool }

func (h *panicAlways) Enabled(context.Context, slog.Level) bool { return true }
func (h *panicAlways) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *panicAlways) WithGroup(string) slog.Handler            { return h }
func (h *panicAlways) Handle(context.Context, slog.Record) error {
	if h.on.Load() {
		panic("SECRETMARKER in the logger")
	}
	return nil
}

// The certificate cache logs while holding its lock (a refusal's re-read
// warns of a near expiry, for one): a Logger that panicked there left the
// lock held, so every later call waited forever (or, before the
// credential recovered panics, ended the process). Now a panicking handler
// loses its record and nothing else.
func TestCertificateCacheSurvivesAPanickingLogger(t *testing.T) {
	e, cred, opts := setup(t)
	h := &panicAlways{}
	c, err := certcache.New(e.VaultURL(scenario.DemoVault), scenario.DemoCertificate, cred, (&certcache.Options{Logger: slog.New(h), ExpiryWarning: 400 * 24 * time.Hour /* every read warns */}).WithSigner(*opts))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a safety bound: it hung
	defer cancel()
	first, err := c.Certificate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	h.on.Store(true)
	c.NoteAccepted(first.Version)
	c.NoteRefused(ctx, first.Version, 700027) // re-reads under the lock, and warns
	h.on.Store(false)
	if _, err := c.Certificate(ctx); err != nil {
		t.Fatalf("after the logger panicked: %v", err)
	}
}
