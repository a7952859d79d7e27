package rotation

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azcertificates"

	"github.com/kvassert/kvassert/internal/entraid"
	"github.com/kvassert/kvassert/internal/inputerr"
	"github.com/kvassert/kvassert/internal/jwtassert"
	"github.com/kvassert/kvassert/internal/kvclient"
	"github.com/kvassert/kvassert/internal/kvid"
	"github.com/kvassert/kvassert/keyvault"
)

// Tags kvassert keeps on a certificate version in Key Vault, so that a roll
// can be re-run at any point and needs no Graph read permission. They are
// hints, never trusted over the truth (a probe, Graph's list of keys): each
// value records the thumbprint of the certificate it was written for, and a
// tag whose thumbprint differs from the version's (copied by a renewal or an
// import, or written by hand in the old format) is ignored.
const (
	// tagKeyID holds the Graph keyId that addKey returned for the version,
	// as "keyid=<GUID>;x5t=<thumbprint>;at=<RFC 3339>".
	tagKeyID = "kvassert-graph-key-id"
	// tagAccepted holds when Entra was first seen accepting the version, as
	// "at=<RFC 3339>;x5t=<thumbprint>".
	tagAccepted = "kvassert-accepted"
	// tagRemoved holds when kvassert removed the version's key from the app,
	// as "at=<RFC 3339>;x5t=<thumbprint>". It is a record only: a removed
	// version is never excluded from use.
	tagRemoved = "kvassert-removed"
)

// tagFields parses a kvassert tag value "k=v;k=v" and returns its fields
// when its x5t is the version's thumbprint (nil otherwise: a copied, forged
// or old-format tag).
func (v *certVersion) tagFields(name string) map[string]string {
	raw := v.Tags[name]
	if raw == "" || v.Certificate == nil {
		return nil
	}
	f := map[string]string{}
	for _, kv := range strings.Split(raw, ";") {
		if k, val, ok := strings.Cut(kv, "="); ok {
			f[k] = val
		}
	}
	if !strings.EqualFold(f["x5t"], v.Thumbprint()) {
		return nil
	}
	return f
}

// tagTime is the "at" time of a kvassert tag bound to v (zero if none).
func (v *certVersion) tagTime(name string) time.Time {
	t, _ := time.Parse(time.RFC3339, v.tagFields(name)["at"])
	return t
}

// recordedKeyID is the Graph keyId kvassert recorded for v's certificate
// ("" when none, or when the tag is not bound to v's thumbprint).
func (v *certVersion) recordedKeyID() string {
	id := v.tagFields(tagKeyID)["keyid"]
	if !entraid.ValidClientID(id) {
		return ""
	}
	return id
}

// legacyKeyID is a keyId tag in the format before issue 19 (a bare GUID),
// bound to no certificate: used only to protect keys and, when the app
// cannot read its keys, to find a superseded version's key.
func (v *certVersion) legacyKeyID() string {
	if id := v.Tags[tagKeyID]; entraid.ValidClientID(id) {
		return id
	}
	return ""
}

func keyIDTag(keyID string, v *certVersion, at time.Time) string {
	return "keyid=" + keyID + ";x5t=" + v.Thumbprint() + ";at=" + at.UTC().Format(time.RFC3339)
}

func timeTag(v *certVersion, at time.Time) string {
	return "at=" + at.UTC().Format(time.RFC3339) + ";x5t=" + v.Thumbprint()
}

// certVersion is one version of the certificate in the vault.
type certVersion struct {
	// Version is the Key Vault version identifier.
	Version string
	// KeyID is the versioned key identifier (kid) that signs for it.
	KeyID string
	// Certificate is the parsed X.509 certificate; nil when the version
	// could not be read (see Unreadable) or is disabled.
	Certificate *x509.Certificate
	// Enabled is the version's enabled attribute.
	Enabled bool
	// Created is when the vault created the version.
	Created time.Time
	// Tags are the version's tags (kvassert's are tagKeyID, tagAccepted and
	// tagRemoved).
	Tags map[string]string
	// Imported reports that the version's key is not shown to be generated
	// in the vault: its public key is not the one of the certificate's
	// latest create or renewal operation (an imported certificate, or a
	// version made by an earlier operation). Without an operation, the
	// policy and the version decide (see classify).
	Imported bool
	// Exportable reports that the certificate's policy lets the private key
	// be exported (key_props.exportable is not false).
	Exportable bool
	// Unreadable is why the version could not be read (a pending create has
	// no certificate yet); "" otherwise.
	Unreadable string

	thumb         string // the list's x5t (hex) when Certificate is nil
	policyChanged bool   // the policy was written after the version was made
	opPending     bool   // not shown vault-generated while an operation is in progress
}

// Thumbprint is the SHA-1 thumbprint in upper-case hex, as the Azure portal
// shows it next to a registered certificate.
func (v *certVersion) Thumbprint() string {
	if v.Certificate == nil {
		return v.thumb
	}
	return jwtassert.ThumbprintHex(v.Certificate)
}

// ValidAt reports whether the version is enabled and its certificate valid
// at t.
func (v *certVersion) ValidAt(t time.Time) bool {
	return v.Certificate != nil && v.Enabled && !t.Before(v.Certificate.NotBefore) && !t.After(v.Certificate.NotAfter)
}

// RSA reports whether the version's key is RSA: Entra's client assertions
// (PS256/RS256) and Graph's proofs (RS256) need it.
func (v *certVersion) RSA() bool {
	if v.Certificate == nil {
		return false
	}
	_, ok := v.Certificate.PublicKey.(*rsa.PublicKey)
	return ok
}

// skipReason is why a roll will not register v ("" when it may), given
// whether imported or exportable keys may be registered.
func (v *certVersion) skipReason(now time.Time, allowExternal bool) string {
	switch {
	case v.Unreadable != "":
		return v.Unreadable
	case !v.Enabled:
		return "disabled"
	case v.Certificate != nil && now.After(v.Certificate.NotAfter):
		return "expired " + v.Certificate.NotAfter.UTC().Format(time.RFC3339)
	case !v.RSA():
		return fmt.Sprintf("%s key: Entra client assertions and Graph proofs need RSA", keyType(v.Certificate))
	case v.opPending && !allowExternal:
		return "a create or renewal of the certificate is in progress: only the version it makes can be shown generated in the vault; that one is registered once the operation completes"
	case v.Imported && !allowExternal:
		return "imported (or not the vault's latest created version): its key is not shown to be generated in the vault; kvassert registers only keys generated there (opt in with RegisterImportedKeys / --register-imported-keys)"
	case v.policyChanged && !allowExternal:
		return "the certificate policy changed after this version was made, so whether its key may be exported is not known; kvassert registers only keys known non-exportable (the next version made under the current policy is registered, or opt in with RegisterImportedKeys / --register-imported-keys)"
	case v.Exportable && !allowExternal:
		return "exportable: the certificate policy lets its key leave the vault; kvassert registers only non-exportable keys (set key_props.exportable=false, or opt in with RegisterImportedKeys / --register-imported-keys)"
	}
	return ""
}

func keyType(c *x509.Certificate) string {
	if c == nil {
		return "no"
	}
	switch c.PublicKey.(type) {
	case *ecdsa.PublicKey:
		return "EC"
	case ed25519.PublicKey:
		return "Ed25519"
	}
	return fmt.Sprintf("%T", c.PublicKey)
}

// certStore is the Key Vault side of a roll.
type certStore struct {
	client *azcertificates.Client
	name   string
	vault  kvid.Vault
}

func newCertStore(vaultURL, name string, cred azcore.TokenCredential, opts keyvault.SignerOptions) (*certStore, error) {
	v, err := kvid.ParseVaultURL(vaultURL)
	if err != nil {
		return nil, &inputerr.Error{Package: "rotation", Input: "vaultURL", Reason: "vaultURL: " + strings.TrimPrefix(err.Error(), "keyvault: "), Err: err}
	}
	if v.ManagedHSM {
		return nil, inputErr("vaultURL", "Managed HSM has no certificates; rotation works on a Key Vault certificate (vaultURL)")
	}
	if v.Loopback && !opts.AllowLoopback {
		return nil, inputErr("vaultURL", "vaultURL: %s is an address on this machine; for kvassert's emulators keep the real vault URL and give Options.ClientOptions = emu.ClientOptions() (kvasserttest), another emulator needs Options.AllowLoopback", v.Host)
	}
	if err := kvid.CheckName(name); err != nil {
		return nil, &inputerr.Error{Package: "rotation", Input: "certificate", Reason: "certificate name: " + strings.TrimPrefix(err.Error(), "keyvault: "), Err: err}
	}
	c, err := azcertificates.NewClient(v.URL, cred, &azcertificates.ClientOptions{ClientOptions: opts.ClientOptions, DisableChallengeResourceVerification: v.Loopback})
	if err != nil {
		return nil, err
	}
	return &certStore{client: c, name: name, vault: v}, nil
}

// maxListPages bounds the pages of one listing of versions (25 versions a
// page): a vault that keeps answering a nextLink does not hold a pass.
const maxListPages = 200

// versionList is what a pass knows of the vault's versions.
type versionList struct {
	// all versions, newest first (by NotBefore, then the vault's current
	// version, then by creation); unreadable and disabled ones last.
	all []*certVersion
	// incomplete says why the listing stopped early ("" when complete): a
	// pass then removes no key, since a version it did not see may hold one.
	incomplete string
	// opPending: a create or renewal of the certificate is in progress.
	opPending bool
	// current is the vault's current (latest) version, the one its
	// AutoRenew lifetime action counts from.
	current string
}

// policyFacts are what the certificate policy and the certificate's latest
// operation tell about its versions' origin.
type policyFacts struct {
	exportable    bool
	issuerUnknown bool      // the policy was last written by an import
	updated       time.Time // when the policy was last written
	// opKey is the public key of the CSR of the certificate's latest
	// create or renewal operation (GET .../pending): the key the vault
	// generated for the version it made last. nil when the vault keeps no
	// operation.
	opKey crypto.PublicKey
	// opPending: that operation is still in progress (a CA has not issued
	// the certificate yet).
	opPending bool
}

// versions reads every version of the certificate (certificates/list, then
// certificates/get per enabled version, and the policy), newest first.
// Listing is bounded: a repeated nextLink or more than maxListPages pages
// end it with versionList.incomplete set.
func (s *certStore) versions(ctx context.Context) (versionList, error) {
	var out versionList
	pol, err := s.policyFacts(ctx)
	if err != nil {
		return out, err
	}
	out.opPending = pol.opPending
	seenLinks := map[string]bool{}
	seen := map[string]bool{}
	pager := s.client.NewListCertificatePropertiesVersionsPager(s.name, nil)
	for pages := 0; pager.More(); pages++ {
		if pages == maxListPages {
			out.incomplete = fmt.Sprintf("the vault's list of versions has more than %d pages; read the first %d only", maxListPages, maxListPages)
			break
		}
		page, err := pager.NextPage(ctx)
		if err != nil {
			return out, fmt.Errorf("rotation: listing the versions of certificate %q in %s (needs certificates/list): %w", s.name, s.vault.Host, kvclient.Sanitize(err))
		}
		if out.all, err = s.pageVersions(ctx, out.all, page.Value, seen, pol); err != nil {
			return out, err
		}
		if next := page.NextLink; next != nil && *next != "" {
			if seenLinks[*next] {
				out.incomplete = "the vault's list of versions loops (a nextLink repeats); read up to the loop only"
				break
			}
			seenLinks[*next] = true
		}
	}
	current, err := s.currentVersion(ctx, out.all)
	if err != nil {
		return out, err
	}
	out.current = current
	sortVersions(out.all, current)
	return out, nil
}

// pageVersions appends the versions of one page of the list to all, each
// once: a disabled version is listed (for status) but not read, since it
// cannot sign.
func (s *certStore) pageVersions(ctx context.Context, all []*certVersion, page []*azcertificates.CertificateProperties, seen map[string]bool, pol policyFacts) ([]*certVersion, error) {
	for _, p := range page {
		if p == nil || p.ID == nil || seen[p.ID.Version()] {
			continue
		}
		seen[p.ID.Version()] = true
		if a := p.Attributes; a != nil && a.Enabled != nil && !*a.Enabled {
			v := &certVersion{Version: p.ID.Version(), Tags: map[string]string{}}
			if len(p.X509Thumbprint) > 0 {
				v.thumb = strings.ToUpper(hex.EncodeToString(p.X509Thumbprint))
			}
			if a.Created != nil {
				v.Created = *a.Created
			}
			all = append(all, v)
			continue
		}
		v, err := s.version(ctx, p.ID.Version())
		if err != nil {
			return all, err
		}
		v.classify(pol)
		all = append(all, v)
	}
	return all, nil
}

// currentVersion is the vault's current version (what GET without a
// version returns). Versions made in the same second (tests, or a create
// right after a renewal) tie on NotBefore and creation time: the current
// one is the newest then.
func (s *certStore) currentVersion(ctx context.Context, all []*certVersion) (string, error) {
	switch len(all) {
	case 0:
		return "", nil
	case 1:
		return all[0].Version, nil
	}
	resp, err := s.client.GetCertificate(ctx, s.name, "", nil)
	if err != nil {
		return "", fmt.Errorf("rotation: reading the current version of certificate %q: %w", s.name, kvclient.Sanitize(err))
	}
	if resp.ID != nil {
		return resp.ID.Version(), nil
	}
	return "", nil
}

// sortVersions orders all newest first: by NotBefore, then the vault's
// current version, then by creation; unreadable and disabled ones last.
func sortVersions(all []*certVersion, current string) {
	sort.SliceStable(all, func(i, j int) bool {
		a, b := all[i], all[j]
		if (a.Certificate == nil) != (b.Certificate == nil) {
			return b.Certificate == nil
		}
		if a.Certificate != nil && !a.Certificate.NotBefore.Equal(b.Certificate.NotBefore) {
			return a.Certificate.NotBefore.After(b.Certificate.NotBefore)
		}
		if (a.Version == current) != (b.Version == current) {
			return a.Version == current
		}
		return a.Created.After(b.Created)
	})
}

// classify sets Imported and Exportable from the policy, the latest
// operation and the version.
//
// Key Vault records no origin per version. The proof that a version's key
// was generated in the vault is the CSR of the certificate's latest
// operation (a create or a renewal): the vault made that key pair and keeps
// the private key; an import has no operation, and whoever imports cannot
// produce a version with that public key. So a version whose public key is
// the operation's is vault-generated; any other version (imported, or made
// by an earlier operation) is not shown to be, and counts as Imported. When
// the vault keeps no operation, the policy and the version decide: the
// issuer "Unknown" since the version was made (an import wrote the policy),
// or a NotBefore not within a day before the version's creation (the vault
// issues the certificate when it makes the version; a pre-staged or
// re-imported certificate was issued elsewhere) mean Imported.
func (v *certVersion) classify(p policyFacts) {
	if v.Certificate == nil {
		return
	}
	v.Exportable = p.exportable
	// The policy is the certificate's current one: changed after the
	// version was made, it does not tell how the version's key was made.
	v.policyChanged = !p.updated.IsZero() && p.updated.After(v.Created)
	if p.opKey != nil {
		k, ok := v.Certificate.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
		v.Imported = !ok || !k.Equal(p.opKey)
		v.opPending = v.Imported && p.opPending
		return
	}
	nbf := v.Certificate.NotBefore
	v.Imported = (p.issuerUnknown && !v.Created.Before(p.updated)) ||
		v.Created.IsZero() || nbf.Before(v.Created.Add(-24*time.Hour)) || nbf.After(v.Created.Add(5*time.Minute))
}

// policyFacts reads the certificate policy (certificates/get).
func (s *certStore) policyFacts(ctx context.Context) (policyFacts, error) {
	resp, err := s.client.GetCertificatePolicy(ctx, s.name, nil)
	if err != nil {
		return policyFacts{}, fmt.Errorf("rotation: reading the policy of certificate %q (needs certificates/get): %w", s.name, kvclient.Sanitize(err))
	}
	f := policyFacts{exportable: true} // unknown counts as exportable
	if k := resp.KeyProperties; k != nil && k.Exportable != nil {
		f.exportable = *k.Exportable
	}
	if i := resp.IssuerParameters; i != nil && i.Name != nil {
		f.issuerUnknown = strings.EqualFold(*i.Name, "Unknown")
	}
	if a := resp.Attributes; a != nil && a.Updated != nil {
		f.updated = *a.Updated
	}
	op, err := s.client.GetCertificateOperation(ctx, s.name, nil)
	var re *azcore.ResponseError
	switch {
	case err == nil:
		f.opPending = op.Status != nil && strings.EqualFold(*op.Status, "inProgress")
		if len(op.CSR) > 0 {
			if csr, err := x509.ParseCertificateRequest(op.CSR); err == nil {
				f.opKey = csr.PublicKey
			}
		}
	case errors.As(err, &re) && (re.StatusCode == http.StatusNotFound || re.StatusCode == http.StatusForbidden):
		// No operation kept (or not readable): the policy decides.
	default:
		return policyFacts{}, fmt.Errorf("rotation: reading the latest operation of certificate %q (needs certificates/get): %w", s.name, kvclient.Sanitize(err))
	}
	return f, nil
}

// version reads one version. A version without a certificate or key yet (a
// pending create) or whose certificate does not parse is returned with
// Unreadable set: it is skipped and reported, and does not stop the pass.
func (s *certStore) version(ctx context.Context, version string) (*certVersion, error) {
	resp, err := s.client.GetCertificate(ctx, s.name, version, nil)
	if err != nil {
		var re *azcore.ResponseError
		if errors.As(err, &re) && re.StatusCode == http.StatusNotFound {
			return &certVersion{Version: version, Tags: map[string]string{}, Unreadable: "not found (deleted while the pass read the list)"}, nil
		}
		return nil, fmt.Errorf("rotation: reading version %s of certificate %q: %w", version, s.name, kvclient.Sanitize(err))
	}
	v := &certVersion{Version: version, Enabled: true, Tags: map[string]string{}}
	if a := resp.Attributes; a != nil {
		if a.Enabled != nil {
			v.Enabled = *a.Enabled
		}
		if a.Created != nil {
			v.Created = *a.Created
		}
	}
	for k, p := range resp.Tags {
		if p != nil {
			v.Tags[k] = *p
		}
	}
	if len(resp.CER) == 0 || resp.KID == nil {
		v.Unreadable = "pending: no certificate or key yet"
		return v, nil
	}
	x, err := x509.ParseCertificate(resp.CER)
	if err != nil {
		v.Unreadable = "its certificate does not parse"
		return v, nil
	}
	v.KeyID, v.Certificate = string(*resp.KID), x
	return v, nil
}

// setTags merges tags into the version's tags (certificates/update). It
// reads the version's tags again just before writing, so that a tag another
// roller (or a person) wrote since this pass read the version is kept; Key
// Vault offers no conditional update of certificate tags, so the window is
// the time between that read and the write.
func (s *certStore) setTags(ctx context.Context, v *certVersion, tags map[string]string) error {
	resp, err := s.client.GetCertificate(ctx, s.name, v.Version, nil)
	if err != nil {
		return fmt.Errorf("rotation: reading version %s of certificate %q before tagging it: %w", v.Version, s.name, kvclient.Sanitize(err))
	}
	merged := map[string]*string{}
	fresh := map[string]string{}
	for k, p := range resp.Tags {
		if p != nil {
			merged[k], fresh[k] = to(*p), *p
		}
	}
	for k, val := range tags {
		merged[k] = to(val)
		fresh[k] = val
	}
	if _, err := s.client.UpdateCertificate(ctx, s.name, v.Version, azcertificates.UpdateCertificateParameters{Tags: merged}, nil); err != nil {
		return fmt.Errorf("rotation: tagging version %s of certificate %q (needs certificates/update): %w", v.Version, s.name, kvclient.Sanitize(err))
	}
	v.Tags = fresh
	return nil
}

// autoRenews reports whether the certificate's policy has an AutoRenew
// lifetime action (then the vault creates new versions itself).
func (s *certStore) autoRenews(ctx context.Context) (bool, error) {
	resp, err := s.client.GetCertificatePolicy(ctx, s.name, nil)
	if err != nil {
		return false, fmt.Errorf("rotation: reading the policy of certificate %q: %w", s.name, kvclient.Sanitize(err))
	}
	for _, a := range resp.LifetimeActions {
		if a != nil && a.Action != nil && a.Action.ActionType != nil && *a.Action.ActionType == azcertificates.CertificatePolicyActionAutoRenew {
			return true, nil
		}
	}
	return false, nil
}

// createVersion asks the vault for a new version with the certificate's
// current policy (certificates/create). The version is ready when the
// vault's operation completes; the next roll registers it.
func (s *certStore) createVersion(ctx context.Context) error {
	pol, err := s.client.GetCertificatePolicy(ctx, s.name, nil)
	if err != nil {
		return fmt.Errorf("rotation: reading the policy of certificate %q: %w", s.name, kvclient.Sanitize(err))
	}
	if _, err := s.client.CreateCertificate(ctx, s.name, azcertificates.CreateCertificateParameters{CertificatePolicy: &pol.CertificatePolicy}, nil); err != nil {
		return fmt.Errorf("rotation: creating a new version of certificate %q (needs certificates/create): %w", s.name, kvclient.Sanitize(err))
	}
	return nil
}

func to[T any](v T) *T { return &v }
