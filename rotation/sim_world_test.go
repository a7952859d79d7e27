package rotation_test

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azcertificates"

	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/internal/jwtassert"
	"github.com/kvassert/kvassert/internal/rootaccess"
	"github.com/kvassert/kvassert/internal/testcert"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
	"github.com/kvassert/kvassert/rotation"
)

// The simulation's world: the certificate, the oracle (the vault's and
// Entra's ground truth, read from the emulator, not through the APIs the
// roller uses), the events of people and the vault, and the faults.

// freshCred gets a new token for every request: the people and pipelines of
// the simulation act a few times a month, on a clock that moves by hours
// while azcore and MSAL cache tokens by the real one.
type freshCred struct{ w *world }

func (c freshCred) GetToken(ctx context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	cred, err := c.w.e.ClientSecretCredential(emuhook.DemoWorkloadClientID)
	if err != nil {
		return azcore.AccessToken{}, err
	}
	tok, err := cred.GetToken(ctx, o)
	tok.ExpiresOn = time.Now().Add(time.Second) // asked again for the next request
	return tok, err
}

// simPolicy is the certificate's policy as its owner keeps it (an import
// replaces a certificate's policy; the owner's pipeline puts it back).
type simPolicy struct {
	client *azcertificates.Client
	policy azcertificates.CertificatePolicy
}

// importedCert is a certificate whose key was made outside the vault.
type importedCert struct {
	cert *x509.Certificate
	pem  string
}

func thumb(c *x509.Certificate) string { return jwtassert.ThumbprintHex(c) }

func validNow(c *x509.Certificate, now time.Time) bool {
	return !now.Before(c.NotBefore) && !now.After(c.NotAfter)
}

// createCertificate creates the simulation's certificate: 3 months, RSA
// 2048 non-exportable, AutoRenew at 80 %; it returns its first version.
func (s *sim) createCertificate() *x509.Certificate {
	t := s.t
	c, err := azcertificates.NewClient(s.w.e.VaultURL(scenario.DemoVault), freshCred{s.w}, &azcertificates.ClientOptions{ClientOptions: s.w.e.ClientOptions()})
	if err != nil {
		t.Fatal(err)
	}
	f, months, pct, size := false, int32(3), int32(80), int32(2048)
	self, subject, kty := "Self", "CN=kvassert sim", azcertificates.KeyTypeRSA
	auto := azcertificates.CertificatePolicyActionAutoRenew
	pol := azcertificates.CertificatePolicy{
		IssuerParameters: &azcertificates.IssuerParameters{Name: &self},
		KeyProperties:    &azcertificates.KeyProperties{Exportable: &f, KeyType: &kty, KeySize: &size},
		X509CertificateProperties: &azcertificates.X509CertificateProperties{Subject: &subject, ValidityInMonths: &months,
			KeyUsage: []*azcertificates.KeyUsageType{ptr(azcertificates.KeyUsageTypeDigitalSignature)}},
		LifetimeActions: []*azcertificates.LifetimeAction{{Action: &azcertificates.LifetimeActionType{ActionType: &auto},
			Trigger: &azcertificates.LifetimeActionTrigger{LifetimePercentage: &pct}}},
	}
	if _, err := c.CreateCertificate(s.ctx, simCert, azcertificates.CreateCertificateParameters{CertificatePolicy: &pol}, nil); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetCertificatePolicy(s.ctx, simCert, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.pol = &simPolicy{client: c, policy: got.CertificatePolicy}
	vs := s.versions()
	if len(vs) != 1 {
		t.Fatalf("%d versions after create", len(vs))
	}
	return vs[0].Certificate
}

func (s *sim) versions() []emuhook.VersionInfo {
	vs, err := emuhook.Of(s.w.e).CertificateVersions(scenario.DemoVault, simCert)
	if err != nil {
		s.t.Fatal(err)
	}
	return vs
}

// good reports whether a version is what the app should authenticate with
// now: generated in the vault, non-exportable, RSA, enabled and valid.
func good(v emuhook.VersionInfo, now time.Time) bool {
	return v.Enabled && !v.Imported && !v.Exportable && strings.HasPrefix(v.KeyType, "RSA") && validNow(v.Certificate, now)
}

// keptInVault reports whether a version's key never left the vault's
// keeping: generated there and non-exportable.
func keptInVault(v emuhook.VersionInfo) bool { return !v.Imported && !v.Exportable }

func (s *sim) vaultHasGoodKey() bool {
	now := s.w.now()
	for _, v := range s.versions() {
		if good(v, now) {
			return true
		}
	}
	return false
}

// goodRegistered returns the app's keys that Entra accepts now, whose
// version is an enabled RSA version that is valid and that the vault holds
// non-exportable.
func (s *sim) goodRegistered() []kvasserttest.KeyCredential {
	now := s.w.now()
	held := map[string]bool{}
	for _, v := range s.versions() {
		if v.Enabled && !v.Exportable && strings.HasPrefix(v.KeyType, "RSA") && validNow(v.Certificate, now) {
			held[thumb(v.Certificate)] = true
		}
	}
	var out []kvasserttest.KeyCredential
	for _, k := range s.w.keys() {
		if !k.Revoked && validNow(k.Certificate, now) && !now.Before(k.ActiveAt) && held[thumb(k.Certificate)] {
			out = append(out, k)
		}
	}
	return out
}

// checkInvariant returns the kind of violation and why the promise is
// broken now, or "", "". While the vault holds a good version (generated
// there, non-exportable, RSA, enabled, valid), the app must hold a key that
// Entra accepts of a valid version the vault holds non-exportable, and the
// version the credential last had accepted must not be exportable nor
// imported.
func (s *sim) checkInvariant() (string, string) {
	if !s.vaultHasGoodKey() {
		return "", "" // nothing the roller could have registered
	}
	if len(s.goodRegistered()) == 0 {
		return "no-key", "the app holds no key that Entra accepts of an enabled, valid RSA version the vault holds non-exportable"
	}
	if acc := rootaccess.Cache(s.src).AcceptedCertificate(); acc != nil {
		tp := thumb(acc.Certificate)
		for _, v := range s.versions() {
			if thumb(v.Certificate) != tp {
				continue
			}
			if v.Exportable {
				return "exportable-key-used", fmt.Sprintf("the credential signs with version %s, whose key is exportable (imported %v)", short8(v.Version), v.Imported)
			}
			if v.Imported {
				return "imported-key-used", fmt.Sprintf("the credential signs with version %s, whose key was made outside the vault (imported, non-exportable)", short8(v.Version))
			}
		}
	}
	return "", ""
}

// state describes the vault's versions and the app's keys, for a failure.
func (s *sim) state() string {
	now := s.w.now()
	var b strings.Builder
	fmt.Fprintf(&b, "now %s\n  vault versions (oldest first):", now.UTC().Format(time.RFC3339))
	for _, v := range s.versions() {
		fmt.Fprintf(&b, "\n    %s thumb %s enabled=%v imported=%v exportable=%v kty=%s valid %s..%s good=%v tags=%v",
			short8(v.Version), thumb(v.Certificate)[:8], v.Enabled, v.Imported, v.Exportable, v.KeyType,
			v.Certificate.NotBefore.UTC().Format("2006-01-02"), v.Certificate.NotAfter.UTC().Format("2006-01-02"), good(v, now), simTags(v.Tags))
	}
	b.WriteString("\n  app keys:")
	for _, k := range s.w.keys() {
		fmt.Fprintf(&b, "\n    keyId %s thumb %s valid %s..%s revoked=%v activeAt=%s", short8(k.KeyID), thumb(k.Certificate)[:8],
			k.Certificate.NotBefore.UTC().Format("2006-01-02"), k.Certificate.NotAfter.UTC().Format("2006-01-02"), k.Revoked, k.ActiveAt.UTC().Format(time.RFC3339))
	}
	if acc := rootaccess.Cache(s.src).AcceptedCertificate(); acc != nil {
		fmt.Fprintf(&b, "\n  credential's accepted version: %s thumb %s", short8(acc.Version), thumb(acc.Certificate)[:8])
	}
	return b.String()
}

// simTags keeps kvassert's tags, shortened.
func simTags(tags map[string]string) string {
	var parts []string
	for _, k := range []string{rotation.TagKeyID, rotation.TagAccepted, rotation.TagRemoved} {
		if v, ok := tags[k]; ok {
			parts = append(parts, strings.TrimPrefix(k, "kvassert-")+"="+short8(v))
		}
	}
	return "{" + strings.Join(parts, " ") + "}"
}

// event makes one thing happen to the vault or the app, as people, a
// pipeline or the vault itself do.
func (s *sim) event() {
	kinds := []struct {
		name   string
		weight int
		do     func() string
	}{
		{"manual-renew", 1, s.manualRenew},
		{"import-new", 2, s.importNew},
		{"import-same", 2, s.importSame},
		{"prestaged-version", 2, s.preStaged},
		{"disabled-version", 1, func() string {
			return s.addVersion(emuhook.VersionSpec{Disabled: true, Key: s.rsaKey()}, "disabled")
		}},
		{"ec-version", 1, func() string { return s.addVersion(emuhook.VersionSpec{EC: true}, "EC") }},
		{"disable-version", 1, s.disableVersion},
		{"enable-version", 1, s.enableVersion},
		{"tags-copied", 2, s.copyTags},
		{"tags-removed", 1, s.removeTags},
		{"person-adds-key", 2, s.personAdds},
		{"person-removes-key", 2, s.personRemoves},
	}
	total := 0
	for i, k := range kinds {
		if simSkipped(k.name) {
			kinds[i].weight = 0
		}
		total += kinds[i].weight
	}
	n := s.rng.IntN(total)
	for _, k := range kinds {
		if n < k.weight {
			if what := k.do(); what != "" {
				s.st.events[k.name]++
				s.logf("event %s: %s", k.name, what)
			}
			return
		}
		n -= k.weight
	}
}

// simSkipped reports whether KVASSERT_SIM_SKIP (comma-separated event
// kinds) turns an event kind off, to isolate a finding when replaying.
func simSkipped(kind string) bool {
	for _, k := range strings.Split(os.Getenv("KVASSERT_SIM_SKIP"), ",") {
		if strings.TrimSpace(k) == kind {
			return true
		}
	}
	return false
}

func (s *sim) manualRenew() string {
	if _, err := s.pol.client.CreateCertificate(s.ctx, simCert, azcertificates.CreateCertificateParameters{}, nil); err != nil {
		s.t.Fatalf("manual renew: %v", err)
	}
	vs := s.versions()
	return "new version " + short8(vs[len(vs)-1].Version)
}

// importNew imports a certificate whose key was made outside the vault.
func (s *sim) importNew() string {
	now := s.w.now()
	c := testcert.New(s.t, &testcert.Options{Key: s.rsaKey(), Serial: s.rng.Int64N(1<<62) + 1, CommonName: "kvassert sim",
		NotBefore: now.Add(-10 * time.Minute).Truncate(time.Second), NotAfter: now.AddDate(0, 2+s.rng.IntN(4), 0).Truncate(time.Second)})
	ic := importedCert{cert: c.Cert, pem: string(c.CertPEM()) + string(c.KeyPEM(s.t))}
	s.imported = append(s.imported, ic)
	return s.importPEM(ic, "new certificate")
}

// importSame imports a certificate imported before again (a pipeline
// re-run): the same certificate in a new version.
func (s *sim) importSame() string {
	if len(s.imported) == 0 {
		return "" // nothing imported yet
	}
	return s.importPEM(s.imported[s.rng.IntN(len(s.imported))], "same certificate again")
}

func (s *sim) importPEM(ic importedCert, what string) string {
	exportable := s.rng.IntN(2) == 0
	ct := "application/x-pem-file"
	resp, err := s.pol.client.ImportCertificate(s.ctx, simCert, azcertificates.ImportCertificateParameters{
		Base64EncodedCertificate: &ic.pem,
		CertificatePolicy: &azcertificates.CertificatePolicy{
			KeyProperties:    &azcertificates.KeyProperties{Exportable: &exportable},
			SecretProperties: &azcertificates.SecretProperties{ContentType: &ct},
		},
	}, nil)
	if err != nil {
		s.t.Fatalf("import: %v", err)
	}
	// The owner's pipeline puts the certificate's policy back.
	if _, err := s.pol.client.UpdateCertificatePolicy(s.ctx, simCert, s.pol.policy, nil); err != nil {
		s.t.Fatalf("restoring the policy: %v", err)
	}
	version := ""
	if resp.ID != nil {
		version = resp.ID.Version()
	}
	return fmt.Sprintf("%s (thumb %s, exportable %v) as version %s", what, thumb(ic.cert)[:8], exportable, short8(version))
}

func (s *sim) preStaged() string {
	start := s.w.now().Add(time.Duration(1+s.rng.IntN(30*24)) * time.Hour)
	return s.addVersion(emuhook.VersionSpec{NotBefore: start, Key: s.rsaKey()}, "valid from "+start.UTC().Format("2006-01-02T15"))
}

func (s *sim) addVersion(spec emuhook.VersionSpec, what string) string {
	v, err := emuhook.Of(s.w.e).AddCertificateVersion(scenario.DemoVault, simCert, spec)
	if err != nil {
		s.t.Fatalf("adding a version: %v", err)
	}
	return "version " + short8(v) + " " + what
}

// inUse is the thumbprint of the version the credential last had accepted.
func (s *sim) inUse() string {
	if acc := rootaccess.Cache(s.src).AcceptedCertificate(); acc != nil {
		return thumb(acc.Certificate)
	}
	return ""
}

// disableVersion disables a version, as a person may; never the one the
// service signs with, nor the last good version registered on the app (a
// person who does that stops the service whatever the roller does).
func (s *sim) disableVersion() string {
	vs := s.versions()
	var cand []emuhook.VersionInfo
	for _, v := range vs {
		if v.Enabled && thumb(v.Certificate) != s.inUse() {
			cand = append(cand, v)
		}
	}
	if len(cand) == 0 {
		return ""
	}
	v := cand[s.rng.IntN(len(cand))]
	tp := thumb(v.Certificate)
	left := 0
	for _, k := range s.goodRegistered() {
		if thumb(k.Certificate) != tp {
			left++
		}
	}
	if left == 0 {
		return ""
	}
	s.setEnabled(v.Version, false)
	return "version " + short8(v.Version)
}

func (s *sim) enableVersion() string {
	var cand []string
	for _, v := range s.versions() {
		if !v.Enabled {
			cand = append(cand, v.Version)
		}
	}
	if len(cand) == 0 {
		return ""
	}
	v := cand[s.rng.IntN(len(cand))]
	s.setEnabled(v, true)
	return "version " + short8(v)
}

func (s *sim) setEnabled(version string, on bool) {
	if _, err := s.pol.client.UpdateCertificate(s.ctx, simCert, version, azcertificates.UpdateCertificateParameters{
		CertificateAttributes: &azcertificates.CertificateAttributes{Enabled: &on},
	}, nil); err != nil {
		s.t.Fatalf("setting enabled=%v: %v", on, err)
	}
}

// copyTags copies one version's kvassert tags onto another (an import or
// a renewal pipeline that carries tags over).
func (s *sim) copyTags() string {
	vs := s.versions()
	var from []emuhook.VersionInfo
	for _, v := range vs {
		if v.Tags[rotation.TagKeyID] != "" || v.Tags[rotation.TagAccepted] != "" {
			from = append(from, v)
		}
	}
	if len(from) == 0 || len(vs) < 2 {
		return ""
	}
	src := from[s.rng.IntN(len(from))]
	dst := vs[len(vs)-1] // most often the newest, as a pipeline would
	if s.rng.IntN(3) == 0 {
		dst = vs[s.rng.IntN(len(vs))]
	}
	if dst.Version == src.Version {
		return ""
	}
	tags := map[string]*string{}
	for k, v := range dst.Tags {
		tags[k] = ptr(v)
	}
	for k, v := range src.Tags {
		if strings.HasPrefix(k, "kvassert-") {
			tags[k] = ptr(v)
		}
	}
	s.setTags(dst.Version, tags)
	return fmt.Sprintf("from %s to %s: %s", short8(src.Version), short8(dst.Version), simTags(src.Tags))
}

// removeTags removes kvassert's tags from a version (a person tidying up).
func (s *sim) removeTags() string {
	var cand []emuhook.VersionInfo
	for _, v := range s.versions() {
		for k := range v.Tags {
			if strings.HasPrefix(k, "kvassert-") {
				cand = append(cand, v)
				break
			}
		}
	}
	if len(cand) == 0 {
		return ""
	}
	v := cand[s.rng.IntN(len(cand))]
	tags := map[string]*string{}
	for k, val := range v.Tags {
		if !strings.HasPrefix(k, "kvassert-") {
			tags[k] = ptr(val)
		}
	}
	s.setTags(v.Version, tags)
	return "from " + short8(v.Version) + " " + simTags(v.Tags)
}

func (s *sim) setTags(version string, tags map[string]*string) {
	if _, err := s.pol.client.UpdateCertificate(s.ctx, simCert, version, azcertificates.UpdateCertificateParameters{Tags: tags}, nil); err != nil {
		s.t.Fatalf("tagging: %v", err)
	}
}

// personAdds registers a certificate on the app by hand: a vault version
// generated in the vault, or a certificate that is not in the vault at all.
// (Not an imported one: a person who registers a key made outside the vault
// has chosen to trust it, which is outside the roller's promise.)
func (s *sim) personAdds() string {
	onApp := map[string]bool{}
	for _, k := range s.w.keys() {
		onApp[thumb(k.Certificate)] = true
	}
	var cand []emuhook.VersionInfo
	for _, v := range s.versions() {
		if keptInVault(v) && !onApp[thumb(v.Certificate)] && v.Certificate.NotAfter.After(s.w.now()) {
			cand = append(cand, v)
		}
	}
	if len(cand) == 0 || s.rng.IntN(4) == 0 {
		if s.foreign == nil {
			s.foreign = s.foreignCert()
		}
		if onApp[thumb(s.foreign.cert)] {
			return ""
		}
		if err := s.w.e.RegisterCertificate(scenario.DemoAppClientID, s.foreign.cert); err != nil {
			s.t.Fatal(err)
		}
		return "a certificate that is not in the vault (thumb " + thumb(s.foreign.cert)[:8] + ")"
	}
	v := cand[s.rng.IntN(len(cand))]
	if err := s.w.e.RegisterCertificate(scenario.DemoAppClientID, v.Certificate); err != nil {
		s.t.Fatal(err)
	}
	return "version " + short8(v.Version) + " (thumb " + thumb(v.Certificate)[:8] + ")"
}

func (s *sim) foreignCert() *importedCert {
	key := s.rsaKey()
	now := s.w.now()
	c := testcert.New(s.t, &testcert.Options{Key: key, Serial: 7, CommonName: "someone's test certificate", NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(2, 0, 0)})
	return &importedCert{cert: c.Cert}
}

// personRemoves removes a key from the app by hand; never the one the
// service signs with, nor the last good one Entra accepts.
func (s *sim) personRemoves() string {
	keys := s.w.keys()
	if len(keys) == 0 {
		return ""
	}
	k := keys[s.rng.IntN(len(keys))]
	tp := thumb(k.Certificate)
	if tp == s.inUse() {
		return ""
	}
	left := 0
	for _, g := range s.goodRegistered() {
		if thumb(g.Certificate) != tp {
			left++
		}
	}
	if left == 0 {
		return ""
	}
	if err := s.w.e.RemoveCertificate(scenario.DemoAppClientID, k.Certificate); err != nil {
		s.t.Fatal(err)
	}
	return "keyId " + short8(k.KeyID) + " (thumb " + tp[:8] + ")"
}

// armFault arms one fault for the coming rolls and names it.
func (s *sim) armFault() string {
	e := s.w.e
	times := 1 + s.rng.IntN(2)
	faults := []struct {
		name string
		arm  func()
	}{
		{"graph-addKey-429", func() {
			e.InjectFault(kvasserttest.OpGraphAddKey, kvasserttest.Fault{Status: http.StatusTooManyRequests, Times: times})
		}},
		{"graph-addKey-503", func() {
			e.InjectFault(kvasserttest.OpGraphAddKey, kvasserttest.Fault{Status: http.StatusServiceUnavailable, Times: times})
		}},
		{"graph-removeKey-503", func() {
			e.InjectFault(kvasserttest.OpGraphRemoveKey, kvasserttest.Fault{Status: http.StatusServiceUnavailable, Times: times})
		}},
		{"graph-read-429", func() {
			e.InjectFault(kvasserttest.Op("graph/applications/get"), kvasserttest.Fault{Status: http.StatusTooManyRequests, Times: times})
		}},
		{"graph-addKey-timeout", func() { e.InjectFault(kvasserttest.OpGraphAddKey, kvasserttest.Fault{Drop: true, Times: times}) }},
		{"graph-addKey-answer-lost", func() {
			emuhook.Of(e).InjectGraphFaultAfterCommit(kvasserttest.OpGraphAddKey, kvasserttest.Fault{Status: http.StatusGatewayTimeout, Times: 1})
		}},
		{"graph-addKey-answer-dropped", func() {
			emuhook.Of(e).InjectGraphFaultAfterCommit(kvasserttest.OpGraphAddKey, kvasserttest.Fault{Drop: true, Times: 1})
		}},
		{"graph-removeKey-answer-lost", func() {
			emuhook.Of(e).InjectGraphFaultAfterCommit(kvasserttest.OpGraphRemoveKey, kvasserttest.Fault{Status: http.StatusGatewayTimeout, Times: 1})
		}},
		{"tag-write-fails-after-addKey", func() {
			emuhook.Of(e).OnGraphAddKey(func(kvasserttest.KeyCredential) {
				e.InjectFault(kvasserttest.Op("certificates/update"), kvasserttest.Fault{Status: http.StatusServiceUnavailable, Times: 2})
			})
		}},
		{"vault-list-503", func() {
			e.InjectFault(kvasserttest.OpCertificateList, kvasserttest.Fault{Status: http.StatusServiceUnavailable, Times: times})
		}},
		{"vault-get-503", func() {
			e.InjectFault(kvasserttest.OpCertificateGet, kvasserttest.Fault{Status: http.StatusServiceUnavailable, Times: times})
		}},
		{"vault-get-timeout", func() { e.InjectFault(kvasserttest.OpCertificateGet, kvasserttest.Fault{Drop: true, Times: times}) }},
		{"vault-update-429", func() {
			e.InjectFault(kvasserttest.Op("certificates/update"), kvasserttest.Fault{Status: http.StatusTooManyRequests, Times: times})
		}},
		{"vault-sign-503", func() {
			e.InjectFault(kvasserttest.OpKeySign, kvasserttest.Fault{Status: http.StatusServiceUnavailable, Times: times})
		}},
		{"entra-token-503", func() {
			e.InjectFault(kvasserttest.OpToken, kvasserttest.Fault{Status: http.StatusServiceUnavailable, Times: times})
		}},
	}
	f := faults[s.rng.IntN(len(faults))]
	f.arm()
	s.st.faults[f.name]++
	return f.name
}

func (s *sim) clearFaults() {
	s.w.e.ClearFaults()
	emuhook.Of(s.w.e).ClearGraphFaultsAfterCommit()
	emuhook.Of(s.w.e).OnGraphAddKey(nil)
}

// simKeys are throw-away RSA keys made once for these tests: generating
// 2048-bit keys for every version would make most of the simulation's cost.
var simKeys = sync.OnceValues(func() ([]*rsa.PrivateKey, error) {
	b, err := os.ReadFile(filepath.Join("testdata", "sim-keys.pem"))
	if err != nil {
		return nil, err
	}
	var out []*rsa.PrivateKey
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return out, nil
		}
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, k.(*rsa.PrivateKey))
	}
})

// rsaKey returns a key no other version of this run has: the next of
// simKeys in this run's order, or a new one when they are used up.
func (s *sim) rsaKey() *rsa.PrivateKey {
	keys, err := simKeys()
	if err != nil {
		s.t.Fatal(err)
	}
	if s.keyOrder == nil {
		s.keyOrder = s.rng.Perm(len(keys))
	}
	if s.keysUsed < len(keys) {
		s.keysUsed++
		return keys[s.keyOrder[s.keysUsed-1]]
	}
	return testcert.RSAKey(s.t, 0)
}
