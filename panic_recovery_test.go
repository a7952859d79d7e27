package kvassert

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/internal/testlog"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// panicSwitch panics with a value that looks like a secret while on.
type panicSwitch struct{ on atomic.Bool }

func (p *panicSwitch) maybe(where string) {
	if p.on.Load() {
		panic("SECRETMARKER panic in " + where)
	}
}

// panickySource wraps a Source (and forwards feedback; an internal test,
// since only the package's own Sources implement it) and panics in
// Assertion, Accepted or Refused as told.
type panickySource struct {
	inner                       Source
	assertion, acceptedSw, refd panicSwitch
}

func (s *panickySource) Assertion(ctx context.Context, clientID, endpoint string) (string, error) {
	s.assertion.maybe("Assertion")
	return s.inner.Assertion(ctx, clientID, endpoint)
}

// sourceIdentity forwards the wrapped Source's identity, so that the
// credential may use a SharedCache.
func (s *panickySource) sourceIdentity() string { return sourceIdentity(s.inner) }

func (s *panickySource) accepted(signer string) {
	s.acceptedSw.maybe("Accepted")
	s.inner.(feedback).accepted(signer)
}

func (s *panickySource) refused(ctx context.Context, signer string, code int) bool {
	s.refd.maybe("Refused")
	return s.inner.(feedback).refused(ctx, signer, code)
}

// panickyShared is a SharedCache that panics while on, and
// otherwise acquires itself (no sharing).
type panickyShared struct {
	panicSwitch
	fakeShared
}

func (p *panickyShared) Token(ctx context.Context, _ SharedKey, _ azcore.AccessToken, acquire func(context.Context) (azcore.AccessToken, error)) (azcore.AccessToken, error) {
	p.maybe("SharedCache.Token")
	return acquire(ctx)
}

// panickyVaultCredential is the credential the vault clients use; it panics
// while on.
type panickyVaultCredential struct {
	inner azcore.TokenCredential
	panicSwitch
}

func (p *panickyVaultCredential) GetToken(ctx context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	p.maybe("vault credential")
	return p.inner.GetToken(ctx, o)
}

// A panic in a Source, a Feedback hook, a SharedCache or the vault's
// credential ran in the detached acquisition goroutine and ended the
// process. Now every caller waiting for the acquisition gets a PanicError
// (whose message does not quote the panic value), the stack is logged at
// debug level only, and once the panic stops the next GetToken works.
func TestPanicDuringAcquisitionIsAnError(t *testing.T) {
	cases := []struct {
		name string
		arm  func(src *panickySource, shared *panickyShared, vault *panickyVaultCredential) *atomic.Bool
	}{
		{"Source.Assertion", func(src *panickySource, _ *panickyShared, _ *panickyVaultCredential) *atomic.Bool {
			return &src.assertion.on
		}},
		{"Feedback.Accepted", func(src *panickySource, _ *panickyShared, _ *panickyVaultCredential) *atomic.Bool {
			return &src.acceptedSw.on
		}},
		{"SharedCache.Token", func(_ *panickySource, shared *panickyShared, _ *panickyVaultCredential) *atomic.Bool {
			return &shared.on
		}},
		{"vault credential", func(_ *panickySource, _ *panickyShared, vault *panickyVaultCredential) *atomic.Bool { return &vault.on }},
		// Entra refuses the certificate (not registered: AADSTS700027),
		// so the credential reports it through Feedback.Refused.
		{"Feedback.Refused", func(src *panickySource, _ *panickyShared, _ *panickyVaultCredential) *atomic.Bool {
			return &src.refd.on
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := kvasserttest.NewTB(t, scenario.Demo(), nil)
			inner, err := e.ClientSecretCredential(emuhook.DemoWorkloadClientID)
			if err != nil {
				t.Fatal(err)
			}
			vault := &panickyVaultCredential{inner: inner}
			var logs testlog.Buffer
			logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			// The certificate cache's clock, moved past its back-off after
			// a failed read.
			var offset atomic.Int64
			now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
			kv, err := NewKeyVaultCertificateSource(e.VaultURL(scenario.DemoVault), scenario.DemoCertificate, vault,
				&KeyVaultCertificateOptions{Logger: logger, Clock: now, ClientOptions: e.ClientOptions()})
			if err != nil {
				t.Fatal(err)
			}
			src, shared := &panickySource{inner: kv}, &panickyShared{}
			cred, err := NewCredential(scenario.DemoHomeTenant, scenario.DemoAppClientID, src,
				&CredentialOptions{ClientOptions: e.ClientOptions(), AdditionallyAllowedTenants: []string{"*"}, SharedCache: shared, Logger: logger})
			if err != nil {
				t.Fatal(err)
			}
			on := tc.arm(src, shared, vault)
			on.Store(true)
			if tc.name == "Feedback.Refused" {
				cert, err := e.Certificate(scenario.DemoVault, scenario.DemoCertificate)
				if err != nil {
					t.Fatal(err)
				}
				if err := e.RemoveCertificate(scenario.DemoAppClientID, cert); err != nil {
					t.Fatal(err)
				}
			}
			get := func() error {
				_, err := cred.GetToken(context.Background(), policy.TokenRequestOptions{TenantID: scenario.DemoContosoTenant, Scopes: []string{"https://graph.microsoft.com/.default"}})
				return err
			}
			err = get()
			var pe *PanicError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want a PanicError", err)
			}
			if strings.Contains(err.Error(), "SECRETMARKER") || !strings.Contains(err.Error(), "panic in") || strings.Count(err.Error(), "kvassert: token for tenant") != 1 {
				t.Fatalf("error text %q", err)
			}
			if !strings.Contains(string(pe.Stack), "panic_recovery_test.go") {
				t.Fatalf("the PanicError's stack does not show where it panicked:\n%s", pe.Stack)
			}
			t.Logf("the caller's error: %v", err)
			on.Store(false)
			if tc.name == "Feedback.Refused" {
				cert, _ := e.Certificate(scenario.DemoVault, scenario.DemoCertificate)
				if err := e.RegisterCertificate(scenario.DemoAppClientID, cert); err != nil {
					t.Fatal(err)
				}
			}
			offset.Store(int64(time.Minute))
			if err := get(); err != nil {
				t.Fatalf("GetToken once the panic stopped: %v", err)
			}
			out := logs.String()
			for _, line := range strings.Split(out, "\n") {
				if strings.Contains(line, "SECRETMARKER") && !strings.Contains(line, "level=DEBUG") {
					t.Fatalf("the panic value was logged above debug level: %s", line)
				}
			}
			if !strings.Contains(out, "level=DEBUG msg=\"kvassert: recovered a panic") || !strings.Contains(out, "panic_recovery_test.go") {
				t.Fatalf("no debug record of the panic with its stack:\n%s", out)
			}
		})
	}
}
