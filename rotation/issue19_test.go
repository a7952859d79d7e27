package rotation_test

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azcertificates"

	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/internal/testcert"
	"github.com/kvassert/kvassert/internal/testfixture"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
	"github.com/kvassert/kvassert/rotation"
)

// externalCert is a certificate and key made outside the vault (an import
// pipeline's).
type externalCert struct {
	cert *x509.Certificate
	pem  string
}

func newExternalCert(t *testing.T, notBefore, notAfter time.Time) externalCert {
	t.Helper()
	n, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	c := testcert.New(t, &testcert.Options{Serial: n.Int64(), CommonName: "kvassert imported", NotBefore: notBefore, NotAfter: notAfter})
	return externalCert{cert: c.Cert, pem: string(c.CertPEM()) + string(c.KeyPEM(t))}
}

func (w *world) certClient() *azcertificates.Client {
	c, err := azcertificates.NewClient(w.e.VaultURL(scenario.DemoVault), w.vaultCred(), &azcertificates.ClientOptions{ClientOptions: w.e.ClientOptions()})
	if err != nil {
		w.t.Fatal(err)
	}
	return c
}

// importVersion imports c as a new version of the demo certificate, with
// tags, and returns the version.
func (w *world) importVersion(c externalCert, tags map[string]*string) string {
	w.t.Helper()
	return w.importWithPolicy(c, tags, &azcertificates.CertificatePolicy{})
}

// importWithPolicy imports c as a new version with the given import
// policy (its PEM content type is set here).
func (w *world) importWithPolicy(c externalCert, tags map[string]*string, pol *azcertificates.CertificatePolicy) string {
	w.t.Helper()
	pol.SecretProperties = &azcertificates.SecretProperties{ContentType: to.Ptr("application/x-pem-file")}
	resp, err := w.certClient().ImportCertificate(context.Background(), scenario.DemoCertificate, azcertificates.ImportCertificateParameters{
		Base64EncodedCertificate: &c.pem, Tags: tags, CertificatePolicy: pol,
	}, nil)
	if err != nil {
		w.t.Fatal(err)
	}
	return resp.ID.Version()
}

// setTags replaces a version's tags, as a person (or a pipeline) does.
func (w *world) setTags(version string, tags map[string]*string) {
	w.t.Helper()
	if _, err := w.certClient().UpdateCertificate(context.Background(), scenario.DemoCertificate, version, azcertificates.UpdateCertificateParameters{Tags: tags}, nil); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) tags(version string) map[string]*string {
	w.t.Helper()
	resp, err := w.certClient().GetCertificate(context.Background(), scenario.DemoCertificate, version, nil)
	if err != nil {
		w.t.Fatal(err)
	}
	return resp.Tags
}

// renewNow makes a new version with the certificate's policy, as AutoRenew.
func (w *world) renewNow() string {
	w.t.Helper()
	return testfixture.Renew(w.t, w.certClient(), scenario.DemoCertificate)
}

// createEC makes a new version with an EC (P-256) key, self-signed.
func (w *world) createEC() {
	w.t.Helper()
	ec, curve, self, subject := azcertificates.KeyTypeEC, azcertificates.CurveNameP256, "Self", "CN=kvassert ec"
	if _, err := w.certClient().CreateCertificate(context.Background(), scenario.DemoCertificate, azcertificates.CreateCertificateParameters{CertificatePolicy: &azcertificates.CertificatePolicy{
		IssuerParameters:          &azcertificates.IssuerParameters{Name: &self},
		KeyProperties:             &azcertificates.KeyProperties{Exportable: to.Ptr(false), KeyType: &ec, Curve: &curve},
		X509CertificateProperties: &azcertificates.X509CertificateProperties{Subject: &subject, ValidityInMonths: to.Ptr[int32](12)},
	}}, nil); err != nil {
		w.t.Fatal(err)
	}
}

// disable disables a version, as a person does in the portal.
func (w *world) disable(version string) {
	w.t.Helper()
	if _, err := w.certClient().UpdateCertificate(context.Background(), scenario.DemoCertificate, version, azcertificates.UpdateCertificateParameters{CertificateAttributes: &azcertificates.CertificateAttributes{Enabled: to.Ptr(false)}}, nil); err != nil {
		w.t.Fatal(err)
	}
}

// hasKey reports whether the app holds cert's key.
func (w *world) hasKey(cert *x509.Certificate) bool {
	for _, k := range w.keys() {
		if k.Certificate.Equal(cert) {
			return true
		}
	}
	return false
}

// TestSameCertificateInTwoVersionsKeepsItsKey (issue 19 defect 1): an import
// re-run puts one certificate into versions A and B; B is accepted through
// A's key; retiring superseded versions must not remove that key.
func TestSameCertificateInTwoVersionsKeepsItsKey(t *testing.T) {
	w := instantGraph(newWorld(t, nil))
	if err := w.e.GrantAppRoles(scenario.DemoAppClientID, "Application.Read.All"); err != nil {
		t.Fatal(err)
	}
	w.advance(time.Hour)
	x := newExternalCert(t, w.now().Add(-time.Minute), w.now().Add(300*24*time.Hour))
	a := w.importVersion(x, nil)
	rep, err := w.roller(registerImported).Roll(context.Background())
	if err != nil || !w.hasKey(x.cert) {
		t.Fatalf("roll 1 (register A %s): %q %v", a, actions(rep), err)
	}
	w.importVersion(x, nil) // B: the same certificate again
	for i := 2; i <= 4; i++ {
		w.advance(8 * 24 * time.Hour)
		rep, err = w.roller(registerImported).Roll(context.Background())
		if err != nil || w.validKeys() == 0 || !w.hasKey(x.cert) {
			t.Fatalf("roll %d: err=%v; app keys now: %d, valid: %d, holds the certificate of A and B: %v; steps %q", i, err, len(w.keys()), w.validKeys(), w.hasKey(x.cert), actions(rep))
		}
	}
	st, err := w.roller(registerImported).Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st {
		if s.Version == a && !strings.Contains(s.Reason, "same certificate as the active version") {
			t.Fatalf("status of A: %s: %s", s.Action, s.Reason)
		}
	}
}

// TestNotYetValidVersionIsWaitedFor (issue 19 defect 2): a pre-staged version
// (NotBefore in the future) registered ahead by a person is not retired as
// superseded, and is used once valid.
func TestNotYetValidVersionIsWaitedFor(t *testing.T) {
	w := instantGraph(newWorld(t, nil))
	if err := w.e.GrantAppRoles(scenario.DemoAppClientID, "Application.Read.All"); err != nil {
		t.Fatal(err)
	}
	f := newExternalCert(t, w.now().Add(30*24*time.Hour), w.now().Add(400*24*time.Hour))
	fv := w.importVersion(f, nil)
	if err := w.e.RegisterCertificate(scenario.DemoAppClientID, f.cert); err != nil {
		t.Fatal(err)
	}
	if _, err := w.roller(registerImported).Roll(context.Background()); err != nil {
		t.Fatal(err)
	}
	w.advance(8 * 24 * time.Hour)
	rep, err := w.roller(registerImported).Roll(context.Background())
	if err != nil || !w.hasKey(f.cert) || w.tags(fv)[rotation.TagRemoved] != nil {
		t.Fatalf("roll past the grace period: %v; the pre-staged version's key is still registered: %v, tags %v; steps %q", err, w.hasKey(f.cert), w.tags(fv), actions(rep))
	}
	w.advance(30 * 24 * time.Hour)
	rep, err = w.roller(registerImported).Roll(context.Background())
	if err != nil || rep.Active != fv {
		t.Fatalf("roll once the pre-staged version is valid: active %q, want %q; %v; steps %q", rep.Active, fv, err, actions(rep))
	}
}

// TestRemovedKeyIsRegisteredAgain (issue 19 defect 3): a person removed the
// key the roller registered; the keyId tag must not stop the next roll from
// registering it again.
func TestRemovedKeyIsRegisteredAgain(t *testing.T) {
	w := instantGraph(renewed(t))
	w.rollOK()
	newest := w.version(w.newest())
	if err := w.e.RemoveCertificate(scenario.DemoAppClientID, newest.Certificate); err != nil {
		t.Fatal(err)
	}
	w.advance(24 * time.Hour)
	rep, err := w.roller(nil).Roll(context.Background())
	if err != nil || !w.hasKey(newest.Certificate) || rep.Active != newest.Version {
		t.Fatalf("roll after a person removed the key: %v; registered again: %v; steps %q", err, w.hasKey(newest.Certificate), actions(rep))
	}
}

// TestCopiedTagIsNotTrusted (issue 19 defect 3): a renewal carries the
// previous version's tags; the new version must still be registered.
func TestCopiedTagIsNotTrusted(t *testing.T) {
	w := instantGraph(renewed(t))
	w.rollOK()
	prev := w.newest()
	w.advance(24 * time.Hour)
	next := w.renewNow()
	w.setTags(next, w.tags(prev))
	rep, err := w.roller(nil).Roll(context.Background())
	if err != nil || rep.Active != next {
		t.Fatalf("roll of a version with copied tags: active %q want %q, %v; steps %q", rep.Active, next, err, actions(rep))
	}
}

// TestImportedExportableKeyIsNotRegistered (issue 19 defect 4): a
// certificate imported with its (exportable) key is reported, not
// registered, unless the caller opts in.
func TestImportedExportableKeyIsNotRegistered(t *testing.T) {
	w := instantGraph(newWorld(t, nil))
	w.advance(time.Hour)
	x := newExternalCert(t, w.now().Add(-time.Minute), w.now().Add(300*24*time.Hour))
	xv := w.importVersion(x, nil)
	rep, err := w.roller(nil).Roll(context.Background())
	if n := w.e.Count(kvasserttest.OpGraphAddKey); n != 0 || w.hasKey(x.cert) {
		t.Fatalf("the roll registered an imported, exportable key (addKey %d); steps %q err %v", n, actions(rep), err)
	}
	if err != nil || !strings.Contains(actions(rep), "attention") {
		t.Fatalf("want the imported version reported for attention and no error: %q %v", actions(rep), err)
	}
	rep, err = w.roller(registerImported).Roll(context.Background())
	if err != nil || rep.Active != xv || !w.hasKey(x.cert) {
		t.Fatalf("with the opt-in: active %q want %q, %v; steps %q", rep.Active, xv, err, actions(rep))
	}
}

// TestTagWriteFailureAfterAddKeyIsReported (issue 19 defect 5): the tag
// write fails after a successful addKey: the report says the key was added,
// with its keyId.
func TestTagWriteFailureAfterAddKeyIsReported(t *testing.T) {
	w := instantGraph(renewed(t))
	w.e.InjectFault(kvasserttest.Op("certificates/update"), kvasserttest.Fault{Status: http.StatusServiceUnavailable})
	rep, err := w.roller(nil).Roll(context.Background())
	w.e.ClearFaults()
	keys := w.keys()
	if len(keys) != 2 {
		t.Fatalf("%d keys, want 2 (addKey done)", len(keys))
	}
	added := keys[len(keys)-1].KeyID
	if !rep.Changed || !strings.Contains(fmt.Sprint(rep.Steps), added) {
		t.Fatalf("a pass that added key %s reports changed=%v, steps %v (err %v)", added, rep.Changed, rep.Steps, err)
	}
}

// tagOnStep writes a tag on a version when the roller logs a step: another
// roller's write landing while this one works.
type tagOnStep struct {
	slog.Handler
	action string
	do     func()
	done   bool
}

func (h *tagOnStep) Handle(ctx context.Context, r slog.Record) error {
	if !h.done && strings.HasSuffix(r.Message, ": "+h.action) {
		h.done = true
		h.do()
	}
	return h.Handler.Handle(ctx, r)
}

// TestConcurrentTagWriteIsNotLost (issue 19 defect 5): a tag another roller
// writes while this one works survives this roller's own tag write.
func TestConcurrentTagWriteIsNotLost(t *testing.T) {
	w := renewed(t)
	newest := w.newest()
	if err := w.e.RegisterCertificate(scenario.DemoAppClientID, w.version(newest).Certificate); err != nil {
		t.Fatal(err)
	}
	w.advance(time.Hour)
	h := &tagOnStep{Handler: slog.NewTextHandler(io.Discard, nil), action: string(rotation.ActionAccepted), do: func() {
		w.setTags(newest, map[string]*string{"other-roller": to.Ptr("was here")})
	}}
	if _, err := w.roller(func(c *config) { c.Logger = slog.New(h) }).Roll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !h.done || w.tags(newest)["other-roller"] == nil {
		t.Fatalf("the other roller's tag was overwritten: %v", w.tags(newest))
	}
}

// TestECNewestVersionIsSkipped (issue 19 defect 6): an EC newest version is
// skipped and reported; the pass goes on with the RSA versions.
func TestECNewestVersionIsSkipped(t *testing.T) {
	w := newWorld(t, nil)
	w.advance(time.Hour)
	w.createEC()
	rep, err := w.roller(nil).Roll(context.Background())
	if err != nil || rep.Active == "" || !strings.Contains(actions(rep), "attention") {
		t.Fatalf("roll with an EC newest version: %v; active %q; steps %q", err, rep.Active, actions(rep))
	}
}

// TestLoopingNextLinkEndsThePass (issue 19 defect 6).
func TestLoopingNextLinkEndsThePass(t *testing.T) {
	w := newWorld(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // safety bound only
	defer cancel()
	rep, err := w.roller(func(c *config) {
		c.ClientOptions.PerCallPolicies = append(c.ClientOptions.PerCallPolicies, testfixture.LoopingNextLink{})
	}).Roll(ctx)
	if ctx.Err() != nil {
		t.Fatalf("the pass looped on a nextLink until the test's safety bound: %v", err)
	}
	if err == nil && !strings.Contains(actions(rep), "attention") {
		t.Fatalf("a looping nextLink went unreported: %q", actions(rep))
	}
}

// TestHungVaultEndsThePassAtItsDeadline (issue 19 defect 6): a vault that
// never answers ends the pass at the pass's own deadline, with a report,
// although the caller's context has none.
func TestHungVaultEndsThePassAtItsDeadline(t *testing.T) {
	w := newWorld(t, nil)
	w.e.InjectFault(kvasserttest.OpCertificateList, kvasserttest.Fault{Latency: time.Hour})
	for name, call := range map[string]func(*rotation.Roller) error{
		"Roll":   func(r *rotation.Roller) error { _, err := r.Roll(context.Background()); return err },
		"Status": func(r *rotation.Roller) error { _, err := r.Status(context.Background()); return err },
	} {
		done := make(chan error, 1)
		go func() { done <- call(w.roller(passTimeout(2 * time.Second))) }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "deadline") {
				t.Fatalf("%s on a hung vault: %v, want the pass's deadline", name, err)
			}
		case <-time.After(60 * time.Second): // safety bound only
			w.e.ClearFaults()
			t.Fatalf("%s did not end: it has no deadline of its own", name)
		}
	}
}

// TestForgedKeyIDTagAndRefusedActiveStopRemoval (issue 19 defect 1, without
// Graph read): a keyId tag on a superseded version that names the active
// version's key is not followed; and when the active version is refused
// after a removal anyway, the pass stops there.
func TestForgedKeyIDTagAndRefusedActiveStopRemoval(t *testing.T) {
	w := instantGraph(renewed(t))
	w.rollOK()
	st, err := w.roller(nil).Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	active, old := st[0], st[1]
	if active.GraphKeyID == "" {
		t.Fatalf("no keyId recorded for the registered version: %v", active.Tags)
	}
	forged := "keyid=" + active.GraphKeyID + ";x5t=" + old.Thumbprint + ";at=" + w.now().UTC().Format(time.RFC3339)
	w.setTags(old.Version, map[string]*string{rotation.TagKeyID: &forged})
	w.advance(8 * 24 * time.Hour)
	rep, err := w.roller(nil).Roll(context.Background())
	if err != nil || w.e.Count(kvasserttest.OpGraphRemoveKey) != 0 || !w.hasKey(active.Certificate) || !strings.Contains(actions(rep), "attention") {
		t.Fatalf("a forged keyId tag: %v, removeKey %d, steps %q", err, w.e.Count(kvasserttest.OpGraphRemoveKey), actions(rep))
	}

	// The active version's own tag gone, the forged one is followed: the
	// probe after the removal catches it and the pass stops.
	acceptedTag := active.Tags[rotation.TagAccepted]
	w.setTags(active.Version, map[string]*string{rotation.TagAccepted: &acceptedTag})
	rep, err = w.roller(nil).Roll(context.Background())
	if !errors.Is(err, rotation.ErrActiveRefused) || w.e.Count(kvasserttest.OpGraphRemoveKey) != 1 {
		t.Fatalf("removal of the active key: %v, removeKey %d, steps %q; want ErrActiveRefused after one removal", err, w.e.Count(kvasserttest.OpGraphRemoveKey), actions(rep))
	}
	if w.validKeys() == 0 {
		t.Fatal("no valid key left")
	}
	// The next pass registers the active version again (proof from the old one).
	rep, err = w.roller(nil).Roll(context.Background())
	if err != nil || rep.Active != active.Version || !w.hasKey(active.Certificate) {
		t.Fatalf("recovery: %v, active %q, steps %q", err, rep.Active, actions(rep))
	}
}

// pendingVersion answers a version's GET as a pending create does: no
// certificate and no key yet.
type pendingVersion struct{ version string }

func (p pendingVersion) Do(req *policy.Request) (*http.Response, error) {
	resp, err := req.Next()
	if err != nil || req.Raw().Method != http.MethodGet || !strings.HasSuffix(req.Raw().URL.Path, "/"+p.version) {
		return resp, err
	}
	return testfixture.RewriteJSON(resp, func(m map[string]any) {
		delete(m, "cer")
		delete(m, "kid")
	})
}

// TestPendingVersionIsSkipped (issue 19 defect 6): a version without a
// certificate yet is skipped and reported; the pass goes on.
func TestPendingVersionIsSkipped(t *testing.T) {
	w := newWorld(t, nil)
	w.advance(time.Hour)
	pending := w.renewNow()
	rep, err := w.roller(func(c *config) {
		c.ClientOptions.PerCallPolicies = append(c.ClientOptions.PerCallPolicies, pendingVersion{pending})
	}).Roll(context.Background())
	if err != nil || rep.Active == "" || rep.Active == pending || !strings.Contains(fmt.Sprint(rep.Steps), "pending") {
		t.Fatalf("roll with a pending version: %v, active %q, steps %v", err, rep.Active, rep.Steps)
	}
}

// TestLaterPassFindsAnUnrecordedKeyByThumbprint (issue 19 defect 5): the
// keyId of a key whose tag write failed is found later in Graph's list by
// thumbprint, and the key is retired like any other.
func TestLaterPassFindsAnUnrecordedKeyByThumbprint(t *testing.T) {
	w := instantGraph(renewed(t))
	w.e.InjectFault(kvasserttest.Op("certificates/update"), kvasserttest.Fault{Status: http.StatusServiceUnavailable})
	if _, err := w.roller(nil).Roll(context.Background()); err == nil {
		t.Fatal("the tag write failed but the pass reports no error")
	}
	w.e.ClearFaults()
	untagged := w.version(w.newest())
	if err := w.e.GrantAppRoles(scenario.DemoAppClientID, "Application.Read.All"); err != nil {
		t.Fatal(err)
	}
	w.advance(24 * time.Hour)
	w.renewNow()
	for i := 0; i < 2; i++ {
		if rep, err := w.roller(nil).Roll(context.Background()); err != nil {
			t.Fatalf("pass %d: %v, steps %q", i, err, actions(rep))
		}
		w.advance(8 * 24 * time.Hour)
	}
	if w.hasKey(untagged.Certificate) || w.validKeys() != 1 {
		t.Fatalf("the untagged key was not retired: keys %d", len(w.keys()))
	}
}

// TestActiveKeyRemovedMidPassKeepsTheOldKey (issue 19 defect 1, a guard):
// a person removes the active version's key while a pass runs; the pass
// must not then remove the superseded key, the app's last one, and the next
// pass registers the active version again.
func TestActiveKeyRemovedMidPassKeepsTheOldKey(t *testing.T) {
	w, active := rolledAndSettled(t)
	h := &tagOnStep{Handler: slog.NewTextHandler(io.Discard, nil), action: string(rotation.ActionAccepted), do: func() {
		if err := w.e.RemoveCertificate(scenario.DemoAppClientID, active.Certificate); err != nil {
			t.Error(err)
		}
	}}
	rep, err := w.roller(func(c *config) { c.Logger = slog.New(h) }).Roll(context.Background())
	if (err != nil && !errors.Is(err, rotation.ErrActiveRefused)) || w.validKeys() == 0 || w.e.Count(kvasserttest.OpGraphRemoveKey) != 0 {
		t.Fatalf("active key removed mid-pass: %v; valid keys %d, removeKey %d; steps %v", err, w.validKeys(), w.e.Count(kvasserttest.OpGraphRemoveKey), rep.Steps)
	}
	rep, err = w.roller(nil).Roll(context.Background())
	if err != nil || rep.Active != active.Version || !w.hasKey(active.Certificate) {
		t.Fatalf("the next pass: %v, active %q, steps %q", err, rep.Active, actions(rep))
	}
}

// TestStatusSaysWhyPerVersion: Status gives each version the roll's
// decision and its reason.
func TestStatusSaysWhyPerVersion(t *testing.T) {
	w := newWorld(t, nil)
	w.advance(time.Hour)
	f := newExternalCert(t, w.now().Add(30*24*time.Hour), w.now().Add(400*24*time.Hour))
	future := w.importVersion(f, nil)
	w.advance(time.Hour)
	w.createEC()
	ecVersion := w.newestID()
	w.advance(time.Hour)
	disabled := w.renewNow()
	w.disable(disabled)
	st, err := w.roller(nil).Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, s := range st {
		got[s.Version] = string(s.Action) + ": " + s.Reason
		if s.Active {
			got["active"] = s.Version
		}
	}
	for v, want := range map[string]string{future: "wait: not valid until", ecVersion: "skipped: EC key", disabled: "skipped: disabled", got["active"]: "accepted: active"} {
		if !strings.HasPrefix(got[v], want) {
			t.Errorf("version %s: %q, want %q…", v, got[v], want)
		}
	}
	if got["active"] == "" || len(st) != 4 {
		t.Fatalf("%d versions, active %q: %v", len(st), got["active"], got)
	}
}

// newestID is the vault's current version.
func (w *world) newestID() string {
	w.t.Helper()
	got, err := w.certClient().GetCertificate(context.Background(), scenario.DemoCertificate, "", nil)
	if err != nil {
		w.t.Fatal(err)
	}
	return got.ID.Version()
}

// rolledAndSettled is a renewed world whose roller registered the renewed
// version and made it active, a week and a day ago (the old key is due for
// retiring); it returns the world and the active version.
func rolledAndSettled(t *testing.T) (*world, rotation.VersionStatus) {
	t.Helper()
	w := instantGraph(renewed(t))
	if err := w.e.GrantAppRoles(scenario.DemoAppClientID, "Application.Read.All"); err != nil {
		t.Fatal(err)
	}
	w.rollOK()
	active := w.version(w.newest())
	w.advance(8 * 24 * time.Hour)
	return w, active
}

// rollConcurrently runs one pass of each of n rollers at once and returns their
// errors.
func (w *world) rollConcurrently(n int) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = w.roller(nil).Roll(context.Background())
		}()
	}
	wg.Wait()
	return errs
}

// TestConcurrentRollersRetireOnce: rollers that retire the same superseded
// key at once all end well, and the app keeps the active key.
func TestConcurrentRollersRetireOnce(t *testing.T) {
	w, active := rolledAndSettled(t)
	errs := w.rollConcurrently(3)
	for i, err := range errs {
		if err != nil {
			t.Errorf("roller %d: %v", i, err)
		}
	}
	if k := w.keys(); len(k) != 1 || !k[0].Certificate.Equal(active.Certificate) {
		t.Fatalf("%d keys after concurrent retiring, want only the active one", len(k))
	}
}

// TestImportDisguisedAsVaultMadeIsNotRegistered (issue 19 defect 4): an
// insider imports a certificate with a policy that claims a self-signed,
// non-exportable vault certificate and a NotBefore just before the import;
// its key is still not the one the vault generated, and is not registered.
func TestImportDisguisedAsVaultMadeIsNotRegistered(t *testing.T) {
	w := instantGraph(newWorld(t, nil))
	w.advance(time.Hour)
	x := newExternalCert(t, w.now().Add(-10*time.Minute), w.now().Add(300*24*time.Hour))
	w.importWithPolicy(x, nil, &azcertificates.CertificatePolicy{
		KeyProperties:    &azcertificates.KeyProperties{Exportable: to.Ptr(false)},
		IssuerParameters: &azcertificates.IssuerParameters{Name: to.Ptr("Self")},
	})
	rep, err := w.roller(nil).Roll(context.Background())
	if n := w.e.Count(kvasserttest.OpGraphAddKey); n != 0 || w.hasKey(x.cert) || err != nil {
		t.Fatalf("a disguised import: addKey %d, %v; steps %v", n, err, rep.Steps)
	}
}

// TestRemovedKeyIsNotRemovedAgain: without Graph read, a key kvassert
// removed (recorded in the version's tags) is not removed again each pass.
func TestRemovedKeyIsNotRemovedAgain(t *testing.T) {
	w := instantGraph(renewed(t))
	w.rollOK()
	w.advance(24 * time.Hour)
	w.renewNow()
	w.rollOK()
	w.advance(8 * 24 * time.Hour)
	for i := 0; i < 3; i++ {
		if rep, err := w.roller(nil).Roll(context.Background()); err != nil {
			t.Fatalf("pass %d: %v %q", i, err, actions(rep))
		}
	}
	if n := w.e.Count(kvasserttest.OpGraphRemoveKey); n != 1 {
		t.Fatalf("%d removeKey calls over three passes, want 1", n)
	}
}

// restorePolicy writes the certificate's policy back to the vault-made one
// (issuer Self, non-exportable), as a Terraform-managed policy is after an
// import.
func (w *world) restorePolicy(exportable bool) {
	w.t.Helper()
	self := "Self"
	if _, err := w.certClient().UpdateCertificatePolicy(context.Background(), scenario.DemoCertificate, azcertificates.CertificatePolicy{
		IssuerParameters: &azcertificates.IssuerParameters{Name: &self},
		KeyProperties:    &azcertificates.KeyProperties{Exportable: &exportable},
		SecretProperties: &azcertificates.SecretProperties{ContentType: to.Ptr("application/x-pkcs12")},
	}, nil); err != nil {
		w.t.Fatal(err)
	}
}

// TestImportThenPolicyRestoredIsNotRegistered (issue 19 defect 4, sim
// finding F2): an import followed by the owner's pipeline restoring the
// vault-made policy; the imported key is still not registered.
func TestImportThenPolicyRestoredIsNotRegistered(t *testing.T) {
	w := instantGraph(newWorld(t, nil))
	w.advance(time.Hour)
	x := newExternalCert(t, w.now().Add(-10*time.Minute), w.now().Add(300*24*time.Hour))
	w.importVersion(x, nil)
	w.advance(time.Minute)
	w.restorePolicy(false)
	rep, err := w.roller(nil).Roll(context.Background())
	if n := w.e.Count(kvasserttest.OpGraphAddKey); n != 0 || w.hasKey(x.cert) || err != nil {
		t.Fatalf("import, then the policy restored: addKey %d, %v; steps %v", n, err, rep.Steps)
	}
}

// TestExportableVersionAfterPolicyChangeIsNotRegistered (issue 19 defect 4):
// a version made under an exportable policy, the policy then made
// non-exportable: the version's key may have been exported and is not
// registered.
func TestExportableVersionAfterPolicyChangeIsNotRegistered(t *testing.T) {
	w := instantGraph(newWorld(t, nil))
	w.advance(time.Hour)
	w.restorePolicy(true)
	w.advance(time.Minute)
	exportable := w.renewNow()
	w.advance(time.Minute)
	w.restorePolicy(false)
	rep, err := w.roller(nil).Roll(context.Background())
	if n := w.e.Count(kvasserttest.OpGraphAddKey); n != 0 || err != nil || rep.Active == exportable {
		t.Fatalf("a version made exportable: addKey %d, %v; steps %v", n, err, rep.Steps)
	}
	// The next version made under the non-exportable policy is registered.
	w.advance(time.Minute)
	next := w.renewNow()
	if rep, err := w.roller(nil).Roll(context.Background()); err != nil || rep.Active != next {
		t.Fatalf("the next version: %v, active %q want %q; steps %v", err, rep.Active, next, rep.Steps)
	}
}

// TestKeyAlreadyRemovedIsNotAChange (sim finding F4): a superseded key a
// person removed already is reported as such, and the pass as unchanged.
func TestKeyAlreadyRemovedIsNotAChange(t *testing.T) {
	w := instantGraph(renewed(t))
	w.rollOK()
	old := w.version(w.newest())
	w.advance(24 * time.Hour)
	w.renewNow()
	w.rollOK()
	if err := w.e.RemoveCertificate(scenario.DemoAppClientID, old.Certificate); err != nil {
		t.Fatal(err)
	}
	w.advance(8 * 24 * time.Hour)
	rep, err := w.roller(nil).Roll(context.Background())
	if err != nil || rep.Changed || !strings.Contains(fmt.Sprint(rep.Steps), "already removed") {
		t.Fatalf("removing a key already gone: %v, changed=%v, steps %v", err, rep.Changed, rep.Steps)
	}
}

// TestCAIssuedPrestagedVersionIsWaitedForThenRegistered (issue 19 defect 2,
// with no opt-in): the vault makes a key and a CSR (issuer Unknown), a CA
// issues a certificate valid from next week, it is merged. While the
// operation is pending nothing is registered; once merged the version is
// waited for, and registered once valid: its key is the operation's.
func TestCAIssuedPrestagedVersionIsWaitedForThenRegistered(t *testing.T) {
	w := instantGraph(newWorld(t, nil))
	w.advance(time.Hour)
	c := w.certClient()
	unknown, subject, rsaT := "Unknown", "CN=kvassert demo SaaS", azcertificates.KeyTypeRSA
	op, err := c.CreateCertificate(context.Background(), scenario.DemoCertificate, azcertificates.CreateCertificateParameters{CertificatePolicy: &azcertificates.CertificatePolicy{
		IssuerParameters:          &azcertificates.IssuerParameters{Name: &unknown},
		KeyProperties:             &azcertificates.KeyProperties{Exportable: to.Ptr(false), KeyType: &rsaT, KeySize: to.Ptr[int32](2048)},
		X509CertificateProperties: &azcertificates.X509CertificateProperties{Subject: &subject, ValidityInMonths: to.Ptr[int32](12)},
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := w.roller(nil).Roll(context.Background())
	if err != nil || rep.Active == "" || w.e.Count(kvasserttest.OpGraphAddKey) != 0 || !strings.Contains(fmt.Sprint(rep.Steps), "in progress") {
		t.Fatalf("while the operation is pending: %v, active %q, addKey %d, steps %v", err, rep.Active, w.e.Count(kvasserttest.OpGraphAddKey), rep.Steps)
	}
	csr, err := x509.ParseCertificateRequest(op.CSR)
	if err != nil {
		t.Fatal(err)
	}
	ca := testcert.New(t, &testcert.Options{CommonName: "test CA", NotBefore: w.now().Add(-time.Hour), NotAfter: w.now().Add(800 * 24 * time.Hour),
		IsCA: true, KeyUsage: x509.KeyUsageCertSign})
	der := testcert.New(t, &testcert.Options{Serial: 2, Subject: &csr.Subject, PublicKey: csr.PublicKey, Parent: ca.Cert, ParentKey: ca.Key,
		NotBefore: w.now().Add(7 * 24 * time.Hour), NotAfter: w.now().Add(400 * 24 * time.Hour)}).DER()
	merged, err := c.MergeCertificate(context.Background(), scenario.DemoCertificate, azcertificates.MergeCertificateParameters{X509Certificates: [][]byte{der}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rep, err = w.roller(nil).Roll(context.Background())
	if err != nil || !strings.Contains(actions(rep), "wait") || w.e.Count(kvasserttest.OpGraphAddKey) != 0 {
		t.Fatalf("a merged version valid from next week: %v, steps %v", err, rep.Steps)
	}
	w.advance(8 * 24 * time.Hour)
	rep, err = w.roller(nil).Roll(context.Background())
	if err != nil || rep.Active != merged.ID.Version() {
		t.Fatalf("once valid: %v, active %q want %q; steps %v", err, rep.Active, merged.ID.Version(), rep.Steps)
	}
}

// TestNoRegistrableVersionNearExpiryCreatesOne (issue 19 defect 6): the
// vault's latest operation made a version that cannot be used (disabled),
// so no version may be registered; as the accepted one nears expiry, a roll
// with RenewBefore creates the next version and the next roll registers it.
func TestNoRegistrableVersionNearExpiryCreatesOne(t *testing.T) {
	w := newWorld(t, nil)
	w.emailOnlyPolicy()
	emuhook.Of(w.e).SetGraphPropagationDelay(0)
	w.advance(time.Hour)
	d := w.renewNow()
	w.disable(d)
	w.advance(340 * 24 * time.Hour)
	renew := func(c *config) { c.RenewBefore = 30 * 24 * time.Hour }
	rep, err := w.roller(renew).Roll(context.Background())
	if err != nil || !strings.Contains(actions(rep), "create") {
		t.Fatalf("near expiry with no registrable version: %v, steps %v", err, rep.Steps)
	}
	next := w.newestID()
	rep, err = w.roller(renew).Roll(context.Background())
	if err != nil || rep.Active != next {
		t.Fatalf("the next roll: %v, active %q want %q; steps %v", err, rep.Active, next, rep.Steps)
	}
}

// TestRenewBeforeWhileACreateIsPending: a create awaiting a CA (issuer
// Unknown) is in progress as the accepted version nears expiry; a roll with
// RenewBefore does not try a second create (409 on every pass).
func TestRenewBeforeWhileACreateIsPending(t *testing.T) {
	for _, optIn := range []bool{false, true} {
		w := newWorld(t, nil)
		w.emailOnlyPolicy()
		unknown, subject, rsaT := "Unknown", "CN=kvassert demo SaaS", azcertificates.KeyTypeRSA
		if _, err := w.certClient().CreateCertificate(context.Background(), scenario.DemoCertificate, azcertificates.CreateCertificateParameters{CertificatePolicy: &azcertificates.CertificatePolicy{
			IssuerParameters:          &azcertificates.IssuerParameters{Name: &unknown},
			KeyProperties:             &azcertificates.KeyProperties{Exportable: to.Ptr(false), KeyType: &rsaT, KeySize: to.Ptr[int32](2048)},
			X509CertificateProperties: &azcertificates.X509CertificateProperties{Subject: &subject, ValidityInMonths: to.Ptr[int32](12)},
		}}, nil); err != nil {
			t.Fatal(err)
		}
		w.advance(340 * 24 * time.Hour)
		rep, err := w.roller(func(c *config) {
			c.RenewBefore, c.RegisterImportedKeys = 30*24*time.Hour, optIn
		}).Roll(context.Background())
		if err != nil || rep.Active == "" || w.e.Count(kvasserttest.Op("certificates/create")) != 1 {
			t.Fatalf("opt-in %v: %v, creates %d, steps %v", optIn, err, w.e.Count(kvasserttest.Op("certificates/create")), rep.Steps)
		}
	}
}

// TestRenewBeforeWhenAutoRenewCountsFromAnotherVersion (sim finding F6):
// the vault's latest version is an unusable one (disabled) whose AutoRenew
// trigger comes after the active version expires; a roll with RenewBefore
// creates the next version instead of waiting for AutoRenew.
func TestRenewBeforeWhenAutoRenewCountsFromAnotherVersion(t *testing.T) {
	w := instantGraph(newWorld(t, nil))
	w.advance(time.Hour)
	x := newExternalCert(t, w.now().Add(-time.Minute), w.now().Add(800*24*time.Hour))
	xv := w.importVersion(x, nil)
	w.disable(xv)
	w.advance(time.Minute)
	w.restorePolicy(false)
	auto, pct := azcertificates.CertificatePolicyActionAutoRenew, int32(80) // of the latest version: X, in ~21 months
	if _, err := w.certClient().UpdateCertificatePolicy(context.Background(), scenario.DemoCertificate, azcertificates.CertificatePolicy{
		LifetimeActions: []*azcertificates.LifetimeAction{{Action: &azcertificates.LifetimeActionType{ActionType: &auto}, Trigger: &azcertificates.LifetimeActionTrigger{LifetimePercentage: &pct}}},
	}, nil); err != nil {
		t.Fatal(err)
	}
	w.advance(340 * 24 * time.Hour)
	cfg := func(c *config) { c.RenewBefore, c.RegisterImportedKeys = 30*24*time.Hour, true }
	rep, err := w.roller(cfg).Roll(context.Background())
	if err != nil || !strings.Contains(actions(rep), "create") {
		t.Fatalf("active version near expiry, AutoRenew counting from another: %v, steps %v", err, rep.Steps)
	}
	next := w.newestID()
	if rep, err := w.roller(cfg).Roll(context.Background()); err != nil || rep.Active != next {
		t.Fatalf("the next roll: %v, active %q want %q; steps %v", err, rep.Active, next, rep.Steps)
	}
}
