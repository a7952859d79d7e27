package rotation_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/kvassert/kvassert/internal/testfixture"
	"github.com/kvassert/kvassert/internal/testlog"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
	"github.com/kvassert/kvassert/rotation"
)

// world is the demo scenario on a clock the test moves: the emulator, the
// roller's probes and proofs, and its waits all read it.
type world struct {
	t      *testing.T
	e      *kvasserttest.Emulator
	offset atomic.Int64
	logs   *syncBuffer
}

func newWorld(t *testing.T, opts *kvasserttest.Options) *world {
	w := &world{t: t, e: testfixture.NewWorld(t, &testfixture.WorldOptions{Emulator: opts}).Emu, logs: &syncBuffer{}}
	w.e.SetClock(w.now)
	return w
}

func (w *world) now() time.Time { return time.Now().Add(time.Duration(w.offset.Load())) }

// advance moves the shared clock.
func (w *world) advance(d time.Duration) { w.offset.Add(int64(d)) }

// sleep is the roller's wait: it moves the clock instead of sleeping.
func (w *world) sleep(ctx context.Context, d time.Duration) error {
	w.advance(d)
	return ctx.Err()
}

func (w *world) vaultCred() azcore.TokenCredential {
	return testfixture.NewVaultCredential(w.t, w.e) // a new one: the tests move the clock past its tokens
}

// config is rotation.New's arguments, for tests that change one.
type config struct {
	vaultURL, certificate string
	cred                  azcore.TokenCredential
	app                   rotation.Application
	rotation.Options
}

func (c *config) new() (*rotation.Roller, error) {
	return rotation.New(c.vaultURL, c.certificate, c.cred, c.app, &c.Options)
}

func (w *world) config() config {
	co := w.e.ClientOptions()
	co.Retry.MaxRetries = -1 // failure tests see each answer at once
	c := config{
		vaultURL: w.e.VaultURL(scenario.DemoVault), certificate: scenario.DemoCertificate, cred: w.vaultCred(),
		app: rotation.Application{TenantID: scenario.DemoHomeTenant, ClientID: scenario.DemoAppClientID, ObjectID: scenario.DemoAppObjectID},
		Options: rotation.Options{
			ClientOptions: co,
			Grace:         7 * 24 * time.Hour, AcceptTimeout: 10 * time.Minute,
			Logger: slog.New(slog.NewTextHandler(w.logs, nil)),
		},
	}
	rotation.SetClock(&c.Options, w.now, w.sleep)
	return c
}

func (w *world) roller(mod func(*config)) *rotation.Roller {
	cfg := w.config()
	if mod != nil {
		mod(&cfg)
	}
	r, err := cfg.new()
	if err != nil {
		w.t.Fatal(err)
	}
	return r
}

func (w *world) keys() []kvasserttest.KeyCredential {
	kc, err := w.e.AppKeyCredentials(scenario.DemoAppClientID)
	if err != nil {
		w.t.Fatal(err)
	}
	return kc
}

// validKeys counts the app's keys whose certificate is valid now.
func (w *world) validKeys() int {
	n := 0
	for _, k := range w.keys() {
		if now := w.now(); !k.Revoked && !now.Before(k.Certificate.NotBefore) && !now.After(k.Certificate.NotAfter) {
			n++
		}
	}
	return n
}

func actions(rep *rotation.Report) string {
	var b strings.Builder
	for _, s := range rep.Steps {
		b.WriteString(string(s.Action))
		if !s.Done && (s.Action == rotation.ActionRegister || s.Action == rotation.ActionRemove || s.Action == rotation.ActionCreate) {
			b.WriteString("?") // planned, not done (dry run)
		}
		b.WriteString(" ")
	}
	return strings.TrimSpace(b.String())
}

// syncBuffer is a log sink safe for background goroutines.
type syncBuffer = testlog.Buffer

// TestRollRegistersRenewedVersionThenRetiresTheOld drives one renewal: the
// vault's AutoRenew creates a version Entra does not know, the roll
// registers it with a vault-signed proof, waits out the propagation delay,
// and retires the old key only after the grace period.
func TestRollRegistersRenewedVersionThenRetiresTheOld(t *testing.T) {
	w := newWorld(t, nil)
	r := w.roller(nil)

	rep, err := r.Roll(context.Background())
	if err != nil {
		t.Fatalf("first roll on a fresh app: %v", err)
	}
	if got := actions(rep); got != "accepted" || rep.Changed {
		t.Fatalf("fresh app: steps %q changed=%v, want only accepted", got, rep.Changed)
	}
	if n := w.e.Count(kvasserttest.OpGraphAddKey); n != 0 {
		t.Fatalf("%d addKey calls with nothing to register", n)
	}

	w.advance(300 * 24 * time.Hour) // past 80 % of the 12-month lifetime: the vault renews
	accepted := ""
	r = w.roller(func(c *config) { c.OnAccepted = func(v string) { accepted = v } })
	rep, err = r.Roll(context.Background())
	if err != nil {
		t.Fatalf("roll after renewal: %v\nsteps: %q", err, actions(rep))
	}
	if got := actions(rep); got != "register accepted keep" || !rep.Changed {
		t.Fatalf("roll after renewal: steps %q changed=%v", got, rep.Changed)
	}
	if accepted == "" || accepted != rep.Active {
		t.Fatalf("OnAccepted(%q), report active %q", accepted, rep.Active)
	}
	if n := w.e.Count(kvasserttest.OpGraphAddKey); n != 1 {
		t.Fatalf("%d addKey calls, want 1", n)
	}
	if k := w.keys(); len(k) != 2 {
		t.Fatalf("%d keys on the app after registering, want 2 (old kept for the grace period)", len(k))
	}

	// Re-running during the grace period changes nothing.
	w.advance(24 * time.Hour)
	r = w.roller(nil) // a fresh vault credential: its cached token follows the real clock
	rep, err = r.Roll(context.Background())
	if err != nil || rep.Changed || actions(rep) != "accepted keep" {
		t.Fatalf("re-run in the grace period: %q changed=%v err=%v", actions(rep), rep.Changed, err)
	}

	// Past the grace period: the old key was registered by a person (the
	// scenario), so its keyId is unknown and the app cannot read its keys:
	// reported, not removed.
	w.advance(7 * 24 * time.Hour)
	r = w.roller(nil)
	rep, err = r.Roll(context.Background())
	if err != nil || actions(rep) != "accepted keep" || !strings.Contains(rep.Steps[1].Why, "Application.Read.All") {
		t.Fatalf("roll after the grace period without Graph read: %q err=%v", actions(rep), err)
	}
	if n := w.e.Count(kvasserttest.OpGraphRemoveKey); n != 0 {
		t.Fatalf("%d removeKey calls for a key whose keyId kvassert does not know", n)
	}
	// With Application.Read.All the roll finds its keyId by thumbprint and
	// removes it, with a proof from the new version.
	if err := w.e.GrantAppRoles(scenario.DemoAppClientID, "Application.Read.All"); err != nil {
		t.Fatal(err)
	}
	r = w.roller(nil)
	rep, err = r.Roll(context.Background())
	if err != nil || actions(rep) != "accepted remove" {
		t.Fatalf("roll after the grace period: %q err=%v", actions(rep), err)
	}
	if k := w.keys(); len(k) != 1 || !k[0].Certificate.Equal(w.version(accepted).Certificate) {
		t.Fatalf("keys after retiring: %d, want only the accepted version's", len(k))
	}
	if n := w.e.Count(kvasserttest.OpGraphRemoveKey); n != 1 {
		t.Fatalf("%d removeKey calls, want 1", n)
	}
	// And then there is nothing left to do.
	rep, err = r.Roll(context.Background())
	if err != nil || rep.Changed || actions(rep) != "accepted" {
		t.Fatalf("final re-run: %q changed=%v err=%v", actions(rep), rep.Changed, err)
	}
	if strings.Contains(w.logs.String(), "eyJ") {
		t.Fatal("a JWT reached the log")
	}
}

// version returns one version as the roller reads it.
func (w *world) version(v string) rotation.VersionStatus {
	w.t.Helper()
	st, err := w.roller(nil).Status(context.Background())
	if err != nil {
		w.t.Fatal(err)
	}
	for _, s := range st {
		if s.Version == v {
			return s
		}
	}
	w.t.Fatalf("no version %s", v)
	return rotation.VersionStatus{}
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
