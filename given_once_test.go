package kvassert_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/internal/testfixture"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// refusingTransport fails every request: a credential whose transport it is
// reaches nothing.
type refusingTransport struct{}

func (refusingTransport) Do(*http.Request) (*http.Response, error) {
	return nil, errors.New("refusingTransport: no network here")
}

// A Key Vault certificate source made with nil options reaches the emulator
// vault when only the credential has the emulator's ClientOptions: the
// transport is given once.
func TestSourceTakesTheCredentialsClientOptions(t *testing.T) {
	e := kvasserttest.NewTB(t, scenario.Demo(), nil)
	for _, tc := range []struct {
		name string
		src  func() kvassert.Source
	}{
		{"certificate", func() kvassert.Source {
			return demoSource(t, e, nil)
		}},
		{"wrapped certificate", func() kvassert.Source {
			s := demoSource(t, e, nil)
			w, err := kvassert.WrapSource(s, s.Assertion)
			if err != nil {
				t.Fatal(err)
			}
			return w
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cred := testfixture.NewCredential(t, e, tc.src(), nil)
			signs := e.Count(kvasserttest.OpKeySign)
			if _, err := cred.GetToken(context.Background(), policy.TokenRequestOptions{TenantID: scenario.DemoContosoTenant, Scopes: []string{graph}}); err != nil {
				t.Fatal(err)
			}
			if got := e.Count(kvasserttest.OpKeySign) - signs; got != 1 {
				t.Fatalf("%d signs in the emulator vault, want 1", got)
			}
		})
	}
}

// A source shared by two credentials keeps the first credential's
// settings; the second credential's (here a transport that reaches
// nothing) do not reach it. A source's own options always win.
func TestSharedSourceKeepsTheFirstCredentialsSettings(t *testing.T) {
	e := kvasserttest.NewTB(t, scenario.Demo(), nil)
	src := demoSource(t, e, nil)
	first := testfixture.NewCredential(t, e, src, nil)
	// The second credential changes nothing (its Logger is not taken).
	second := testfixture.NewCredential(t, e, src, func(o *kvassert.CredentialOptions) { o.Logger = slog.New(slog.DiscardHandler) })
	// Both work concurrently, through the first credential's vault transport.
	var wg sync.WaitGroup
	for i, cred := range []*kvassert.Credential{first, second, first, second} {
		tenant := []string{scenario.DemoContosoTenant, emuhook.DemoFabrikamTenant}[i%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := cred.GetToken(context.Background(), policy.TokenRequestOptions{TenantID: tenant, Scopes: []string{graph}}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()

	// A source given to a credential with a dead transport first keeps
	// it: the first configuration is final.
	dead := demoSource(t, e, nil)
	if _, err := kvassert.NewCredential(scenario.DemoHomeTenant, scenario.DemoAppClientID, dead,
		&kvassert.CredentialOptions{ClientOptions: policy.ClientOptions{Transport: refusingTransport{}}}); err != nil {
		t.Fatal(err)
	}
	later := testfixture.NewCredential(t, e, dead, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := later.GetToken(ctx, policy.TokenRequestOptions{TenantID: scenario.DemoContosoTenant, Scopes: []string{graph}}); err == nil {
		t.Fatal("the second credential's transport reached a source the first one configured")
	}

	// A source's own ClientOptions are never replaced.
	own := demoSource(t, e, &kvassert.KeyVaultCertificateOptions{ClientOptions: e.ClientOptions()})
	mixed := testfixture.NewCredential(t, e, own, nil)
	if _, err := mixed.GetToken(context.Background(), policy.TokenRequestOptions{TenantID: scenario.DemoContosoTenant, Scopes: []string{graph}}); err != nil {
		t.Fatal(err)
	}
}

// A program whose default logger writes INFO sees no line from kvassert on
// a normal token acquisition: routine notices are debug, only what an
// operator must act on is a warning.
func TestNoRoutineLogLinesByDefault(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(lockedWriter{&mu, &buf}, &slog.HandlerOptions{Level: slog.LevelInfo})))
	defer slog.SetDefault(prev)

	e := kvasserttest.NewTB(t, scenario.Demo(), nil)
	src := demoSource(t, e, nil)
	cred := testfixture.NewCredential(t, e, src, nil)
	for _, tenant := range []string{scenario.DemoContosoTenant, emuhook.DemoFabrikamTenant, scenario.DemoContosoTenant} {
		if _, err := cred.GetToken(context.Background(), policy.TokenRequestOptions{TenantID: tenant, Scopes: []string{graph}}); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Contains(buf.String(), "kvassert") {
		t.Fatalf("kvassert wrote to the default logger on a normal acquisition:\n%s", buf.String())
	}
}

// demoSource is a Key Vault certificate source over the demo vault's
// saas-app-auth certificate, made with o (nil: it takes the first
// credential's settings).
func demoSource(t testing.TB, e *kvasserttest.Emulator, o *kvassert.KeyVaultCertificateOptions) *kvassert.KeyVaultCertificateSource {
	t.Helper()
	s, err := kvassert.NewKeyVaultCertificateSource("https://kvassert-demo.vault.azure.net/", "saas-app-auth", testfixture.VaultCredential(t, e), o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}
