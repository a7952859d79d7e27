package keyvault_test

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/kvassert/kvassert/internal/certcache"
	"github.com/kvassert/kvassert/internal/testcert"
	"github.com/kvassert/kvassert/internal/testfixture"
	"github.com/kvassert/kvassert/internal/testlog"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// fakeClock is a settable clock for the cache's TTL and back-off.
type fakeClock = testfixture.Clock

// safeBuffer is a log sink safe for background goroutines.
type safeBuffer = testlog.Buffer

// waitUntil fails the test when cond does not hold within 30 s.
var waitUntil = testfixture.WaitUntil

// newCache is a cache of the demo certificate on a fake clock; retries
// are short so that a faulted read ends quickly.
func newCache(t *testing.T, e *kvasserttest.Emulator, ttl time.Duration) (*certcache.Cache, *fakeClock, *safeBuffer) {
	t.Helper()
	cred := testfixture.VaultCredential(t, e)
	clock := testfixture.NewClock(time.Now())
	logs := &safeBuffer{}
	opts := e.ClientOptions()
	opts.Retry = policy.RetryOptions{MaxRetries: 1, RetryDelay: 10 * time.Millisecond, MaxRetryDelay: 10 * time.Millisecond}
	c, err := certcache.New(e.VaultURL(scenario.DemoVault), scenario.DemoCertificate, cred, &certcache.Options{ClientOptions: opts, TTL: ttl, Now: clock.Now, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return c, clock, logs
}

// newCacheRead is a world with newCache over it, and the cache's first
// read.
func newCacheRead(t *testing.T, ttl time.Duration) (*kvasserttest.Emulator, *certcache.Cache, *fakeClock, *safeBuffer, *certcache.Certificate) {
	t.Helper()
	e := kvasserttest.NewTB(t, world(), nil)
	c, clock, logs := newCache(t, e, ttl)
	first, err := c.Certificate(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return e, c, clock, logs, first
}

// renew creates a new version of the demo certificate (as AutoRenew does)
// and returns its version.
func renew(t *testing.T, e *kvasserttest.Emulator) string {
	t.Helper()
	testfixture.Rotate(t, e, scenario.DemoVault, scenario.DemoCertificate)
	r, err := testfixture.Certificates(t, e, scenario.DemoVault).GetCertificate(context.Background(), scenario.DemoCertificate, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	return r.ID.Version()
}

// Issue 9, defect 3: after the TTL, with certificates/get slow (2 s) and
// failing (503), callers are served the cached, valid certificate at once
// (a caller with a 1 s deadline too); one read runs in the background, and
// after it failed no other starts before the back-off ends.
func TestCertificateCacheServesCachedWhileRereadIsSlowAndFailing(t *testing.T) {
	e, c, clock, logs, first := newCacheRead(t, 200*time.Millisecond)
	ctx := context.Background()
	e.InjectFault(kvasserttest.OpCertificateGet, kvasserttest.Fault{Latency: 2 * time.Second, Status: 503})
	clock.Add(time.Second) // past the TTL
	base := e.Count(kvasserttest.OpCertificateGet)
	for i := range 3 {
		short, cancel := context.WithTimeout(ctx, time.Second)
		got, err := c.Certificate(short)
		cancel()
		if err != nil || got != first {
			t.Fatalf("assertion %d after the TTL: %v (want the cached certificate at once)", i+1, err)
		}
	}
	// The background read (one GET and azcore's one retry here) fails...
	waitUntil(t, func() bool { return strings.Contains(logs.String(), "reading the certificate failed") })
	if n := e.Count(kvasserttest.OpCertificateGet) - base; n != 2 {
		t.Fatalf("3 assertions made %d certificate GETs, want 2 (one read, retried once by azcore)", n)
	}
	// ... and is not retried on every call before the back-off ends.
	for range 5 {
		if got, err := c.Certificate(ctx); err != nil || got != first {
			t.Fatalf("during the back-off: %v", err)
		}
	}
	time.Sleep(50 * time.Millisecond)
	if n := e.Count(kvasserttest.OpCertificateGet) - base; n != 2 {
		t.Fatalf("during the back-off: %d GETs, want still 2", n)
	}
	// After it, the next use reads again, and the vault having recovered,
	// succeeds.
	e.ClearFaults()
	clock.Add(10 * time.Minute)
	if _, err := c.Certificate(ctx); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() bool { return e.Count(kvasserttest.OpCertificateGet)-base == 3 })
}

// A caller with no certificate waits for the read; its failure is
// remembered, so the next callers get the error without another read until
// the back-off ends.
func TestCertificateCacheColdFailureIsRemembered(t *testing.T) {
	e := kvasserttest.NewTB(t, world(), nil)
	c, clock, _ := newCache(t, e, time.Hour)
	ctx := context.Background()
	e.InjectFault(kvasserttest.OpCertificateGet, kvasserttest.Fault{Status: 503})
	if _, err := c.Certificate(ctx); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("cold read against a failing vault: %v", err)
	}
	reads := e.Count(kvasserttest.OpCertificateGet)
	for range 5 {
		if _, err := c.Certificate(ctx); err == nil || !strings.Contains(err.Error(), "back-off") {
			t.Fatalf("during the back-off: %v, want the remembered error", err)
		}
	}
	if n := e.Count(kvasserttest.OpCertificateGet); n != reads {
		t.Fatalf("5 calls during the back-off made %d reads", n-reads)
	}
	e.ClearFaults()
	clock.Add(10 * time.Minute)
	if _, err := c.Certificate(ctx); err != nil {
		t.Fatalf("after the back-off: %v", err)
	}
}

// Issue 9, defect 5 (the cache's part): a renewed version that Entra
// refuses is set aside for the accepted one, with one warning naming its
// thumbprint and the fix, tried again after the TTL, and taken once
// accepted.
func TestCertificateCacheFallsBackToTheAcceptedVersion(t *testing.T) {
	e, c, clock, logs, v1 := newCacheRead(t, time.Hour)
	ctx := context.Background()
	c.NoteAccepted(v1.Version)
	if a := c.AcceptedCertificate(); a == nil || a.Version != v1.Version {
		t.Fatal("Accepted did not record the version")
	}
	v2 := renew(t, e)
	clock.Add(2 * time.Hour)
	if got, _ := c.Certificate(ctx); got.Version != v1.Version {
		t.Fatal("the TTL's read did not run in the background")
	}
	waitUntil(t, func() bool { got, _ := c.Certificate(ctx); return got.Version == v2 })
	if n, _ := c.Newest(ctx); n.Version != v2 {
		t.Fatalf("Newest = %s, want %s", n.Version, v2)
	}
	reads, lists := e.Count(kvasserttest.OpCertificateGet), e.Count(kvasserttest.OpCertificateList)

	// A burst of refusals of the new version (one per tenant in flight).
	refuseConcurrently(t, ctx, c, v2, true, "Refused of the renewed version did not ask for a retry")
	if got, _ := c.Certificate(ctx); got.Version != v1.Version {
		t.Fatalf("after the refusal: signing with %s, want the accepted %s", got.Version, v1.Version)
	}
	if e.Count(kvasserttest.OpCertificateGet) != reads || e.Count(kvasserttest.OpCertificateList) != lists {
		t.Fatal("going back to the accepted version read the vault")
	}
	n, _ := c.Newest(ctx)
	sum := sha1.Sum(n.Certificate.Raw)
	thumb := strings.ToUpper(hex.EncodeToString(sum[:]))
	if w := strings.Count(logs.String(), "refused a certificate version it has never accepted"); w != 1 {
		t.Fatalf("warnings = %d, want 1:\n%s", w, logs.String())
	}
	for _, want := range []string{thumb, "kvassert cert export", "--format keycredential", "version=" + v2} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the warning lacks %q:\n%s", want, logs.String())
		}
	}
	// The TTL's next read does not switch back to the refused version
	// before its next try.
	clock.Add(30 * time.Minute)
	if got, _ := c.Certificate(ctx); got.Version != v1.Version {
		t.Fatal("the refused version was tried again before the TTL")
	}
	// After the TTL it is tried once more; refused again, no new warning,
	// and the next try is later (doubled).
	clock.Add(40 * time.Minute)
	if got, _ := c.Certificate(ctx); got.Version != v2 {
		t.Fatalf("the refused version was not tried again after the TTL: %s", got.Version)
	}
	if !c.NoteRefused(ctx, v2, 700027) {
		t.Fatal("second refusal: no retry")
	}
	if got, _ := c.Certificate(ctx); got.Version != v1.Version {
		t.Fatal("second refusal: not back to the accepted version")
	}
	clock.Add(90 * time.Minute)
	if got, _ := c.Certificate(ctx); got.Version != v1.Version {
		t.Fatal("the next try after a second refusal came after one TTL, want two")
	}
	clock.Add(time.Hour)
	if got, _ := c.Certificate(ctx); got.Version != v2 {
		t.Fatal("no try after two TTLs")
	}
	// Registered meanwhile: accepted, and kept.
	c.NoteAccepted(v2)
	clock.Add(10 * time.Hour)
	if got, _ := c.Certificate(ctx); got.Version != v2 || c.AcceptedCertificate().Version != v2 {
		t.Fatal("the accepted renewed version was not kept")
	}
	if w := strings.Count(logs.String(), "refused a certificate version it has never accepted"); w != 1 {
		t.Fatalf("warnings = %d, want 1 (once per version)", w)
	}
}

// Refusals of the version in use with no accepted version to go back to
// share one re-read (and one look at the versions list), and more refusals
// soon after read nothing.
func TestCertificateCacheRefusalsShareOneReread(t *testing.T) {
	e, c, _, _, v1 := newCacheRead(t, time.Hour)
	ctx := context.Background()
	e.InjectFault(kvasserttest.OpCertificateGet, kvasserttest.Fault{Latency: 200 * time.Millisecond})
	reads, lists := e.Count(kvasserttest.OpCertificateGet), e.Count(kvasserttest.OpCertificateList)
	refuseConcurrently(t, ctx, c, v1.Version, false, "retry asked for although nothing else can sign")
	for range 10 {
		c.NoteRefused(ctx, v1.Version, 700027)
	}
	if n := e.Count(kvasserttest.OpCertificateGet) - reads; n != 1 {
		t.Fatalf("30 refusals made %d certificate reads, want 1", n)
	}
	if n := e.Count(kvasserttest.OpCertificateList) - lists; n != 1 {
		t.Fatalf("30 refusals listed the versions %d times, want 1", n)
	}
}

// After a restart there is no memory: a refused latest version sends the
// cache to the versions list for an older valid version; when the list is
// denied it says what to grant, once.
func TestCertificateCacheFindsAnOlderVersionAfterARestart(t *testing.T) {
	e := kvasserttest.NewTB(t, world(), nil)
	old, _ := e.Certificate(scenario.DemoVault, scenario.DemoCertificate)
	v2 := renew(t, e)
	ctx := context.Background()

	denied, _, logs := newCache(t, e, time.Hour)
	if got, err := denied.Certificate(ctx); err != nil || got.Version != v2 {
		t.Fatalf("latest = %v, %v", got, err)
	}
	e.InjectFault(kvasserttest.OpCertificateList, kvasserttest.Fault{Status: 403})
	if denied.NoteRefused(ctx, v2, 700027) {
		t.Fatal("retry asked for although the list was denied")
	}
	if !strings.Contains(logs.String(), "certificates/list") {
		t.Fatalf("no warning naming certificates/list:\n%s", logs.String())
	}
	e.ClearFaults()

	c, _, logs := newCache(t, e, time.Hour)
	if _, err := c.Certificate(ctx); err != nil {
		t.Fatal(err)
	}
	if !c.NoteRefused(ctx, v2, 700027) {
		t.Fatal("no retry although an older valid version exists")
	}
	got, _ := c.Certificate(ctx)
	if !got.Certificate.Equal(old) {
		t.Fatalf("signing with %s, want the older version", got.Version)
	}
	if !strings.Contains(logs.String(), "version="+v2) {
		t.Fatalf("no warning about %s:\n%s", v2, logs.String())
	}
}

// What zero-touch rotation builds on: reading a given version, and telling
// the cache that a version is accepted.
func TestCertificateCacheAcceptAndVersion(t *testing.T) {
	e, c, _, _, v1 := newCacheRead(t, time.Hour)
	ctx := context.Background()
	v2 := renew(t, e)
	got, err := c.Version(ctx, v2)
	if err != nil || got.Version != v2 || got.Signer == nil || !strings.HasSuffix(got.KeyID, "/"+v2) {
		t.Fatalf("Version(%s) = %+v, %v", v2, got, err)
	}
	if cur, _ := c.Certificate(ctx); cur.Version != v1.Version {
		t.Fatal("reading a version changed the one in use")
	}
	if err := c.Adopt(ctx, v2); err != nil {
		t.Fatal(err)
	}
	if cur, _ := c.Certificate(ctx); cur.Version != v2 || c.AcceptedCertificate().Version != v2 {
		t.Fatal("Accept did not switch to the version")
	}
	vs, err := c.Versions(ctx)
	if err != nil || len(vs) != 2 || vs[0].Version != v2 || !vs[0].Enabled || vs[0].X5T != got.X5T {
		t.Fatalf("Versions = %+v, %v", vs, err)
	}
	if _, err := c.Version(ctx, "../x"); err == nil {
		t.Fatal("a bad version was accepted")
	}
}

// An expired latest version is not read again on every call: the callers
// get it at once (the assertion builder refuses it) until the back-off ends.
func TestCertificateCacheDoesNotRereadAnExpiredCertificatePerCall(t *testing.T) {
	e := kvasserttest.NewTB(t, world(), nil)
	ctx := context.Background()
	testfixture.Import(t, e, "expired", testcert.New(t, &testcert.Options{Serial: 7, CommonName: "expired",
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)}))
	cred := testfixture.VaultCredential(t, e)
	c, err := certcache.New(e.VaultURL(scenario.DemoVault), "expired", cred, &certcache.Options{ClientOptions: e.ClientOptions()})
	if err != nil {
		t.Fatal(err)
	}
	reads := e.Count(kvasserttest.OpCertificateGet)
	for range 5 {
		got, err := c.Certificate(ctx)
		if err != nil || got.Certificate.NotAfter.After(time.Now()) {
			t.Fatalf("Certificate = %v, want the expired certificate", err)
		}
	}
	if n := e.Count(kvasserttest.OpCertificateGet) - reads; n != 1 {
		t.Fatalf("5 calls with an expired certificate made %d reads, want 1", n)
	}
}

// refuseConcurrently notes 20 concurrent refusals of version (one per
// tenant in flight), each of which must answer wantRetry.
func refuseConcurrently(t *testing.T, ctx context.Context, c *certcache.Cache, version string, wantRetry bool, complaint string) {
	t.Helper()
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if c.NoteRefused(ctx, version, 700027) != wantRetry {
				t.Error(complaint)
			}
		})
	}
	wg.Wait()
}
