package reliability_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"os"
	"runtime"
	"runtime/pprof"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/internal/rootaccess"
	"github.com/kvassert/kvassert/internal/testfixture"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// long reports whether the long forms run: KVASSERT_LONG=1 and not -short.
// Plain `go test ./...` (and CI) runs the short forms, which keep the
// package under a minute with -race.
func long() bool { return os.Getenv("KVASSERT_LONG") != "" && !testing.Short() }

// fastRetry keeps azcore's retry behaviour (3 retries on 408/429/5xx and
// transport errors, Retry-After honoured) with short backoff so that the
// short test run stays short. MaxRetryDelay must exceed the Retry-After
// values the tests send: azcore does not retry at all when Retry-After is
// longer than MaxRetryDelay.
var fastRetry = policy.RetryOptions{MaxRetries: 3, RetryDelay: 20 * time.Millisecond, MaxRetryDelay: 2 * time.Second}

type env struct {
	e       *kvasserttest.Emulator
	cred    *kvassert.Credential
	src     *kvassert.KeyVaultCertificateSource
	tenants []string
	next    atomic.Int64
}

// newEnv starts an emulator with n extra tenants and a kvassert credential
// over the vault certificate, logging into the capture, with fast retries on
// both the vault and the token pipelines.
func newEnv(t testing.TB, n int) *env {
	return newEnvWith(t, n, nil)
}

// newEnvWith is newEnv with before run on the emulator before any token is
// issued (to set its clock).
func newEnvWith(t testing.TB, n int, before func(*kvasserttest.Emulator)) *env {
	t.Helper()
	s, tenants := testfixture.ManyTenants(n)
	w := testfixture.NewWorld(t, &testfixture.WorldOptions{Scenario: s, Before: before,
		Emulator: &kvasserttest.Options{Logger: testLogger()},
		Source: func(o *kvassert.KeyVaultCertificateOptions) {
			o.ClientOptions.Retry, o.Logger = fastRetry, testLogger()
		},
		Credential: func(o *kvassert.CredentialOptions) {
			o.ClientOptions.Retry, o.Logger = fastRetry, testLogger()
		},
	})
	e, src, cred := w.Emu, w.Src, w.Cred
	// The certificate read and the vault token happen once per process.
	if _, err := rootaccess.Cache(src).Certificate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return &env{e: e, cred: cred, src: src, tenants: tenants}
}

// fresh returns a tenant no test of this env has used.
func (v *env) fresh(t testing.TB) string {
	i := int(v.next.Add(1)) - 1
	if i >= len(v.tenants) {
		t.Fatal("env ran out of tenants")
	}
	return v.tenants[i]
}

// get asks for a Graph token in tenant, recording the error for the leak
// scan and checking the token's tenant.
func (v *env) get(ctx context.Context, t testing.TB, tenant string) (string, error) {
	tok, err := v.cred.GetToken(ctx, testfixture.Opts(tenant))
	noteErr(err)
	if err == nil {
		if tid, derr := testfixture.TenantOf(tok.Token); derr != nil || tid != tenant {
			t.Errorf("asked for tenant %s, got a token for %q (%v)", tenant, tid, derr)
		}
	}
	return tok.Token, err
}

// settle closes idle connections and waits until the goroutine count is back
// to at most base+slack, failing with the goroutine dump if it never is.
func settle(t testing.TB, e *kvasserttest.Emulator, base int, within time.Duration) {
	t.Helper()
	const slack = 2
	deadline := time.Now().Add(within)
	for {
		e.Client().CloseIdleConnections()
		n := runtime.NumGoroutine()
		if n <= base+slack {
			return
		}
		if time.Now().After(deadline) {
			var buf bytes.Buffer
			_ = pprof.Lookup("goroutine").WriteTo(&buf, 1)
			t.Fatalf("goroutines: %d, want at most %d after %v: leaked?\n%.6000s", n, base+slack, within, buf.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// baseline settles the env's idle connections and returns the goroutine
// count to come back to.
func baseline(e *kvasserttest.Emulator) int {
	var n int
	for range 50 {
		e.Client().CloseIdleConnections()
		time.Sleep(10 * time.Millisecond)
		m := runtime.NumGoroutine()
		if m == n {
			break
		}
		n = m
	}
	return n
}

// noPanic runs f and turns a panic into a test failure naming what.
func noPanic(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("%s panicked: %v", what, r)
		}
	}()
	f()
}

const appID = scenario.DemoAppClientID

// rotate creates a new version of the demo certificate and returns it.
func rotate(t testing.TB, e *kvasserttest.Emulator) *x509.Certificate {
	t.Helper()
	return testfixture.Rotate(t, e, scenario.DemoVault, scenario.DemoCertificate)
}

// optsFor is a Graph token request for tenant.
func optsFor(tenant string) policy.TokenRequestOptions { return testfixture.Opts(tenant) }

// tidOf is the tid claim of a token ("" when it has none).
func tidOf(tok string) string {
	tid, _ := testfixture.TenantOf(tok)
	return tid
}
