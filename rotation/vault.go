package rotation

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azcertificates"

	"github.com/kvassert/kvassert/assertion"
	"github.com/kvassert/kvassert/keyvault"
)

// Tags kvassert keeps on a certificate version in Key Vault, so that a roll
// can be re-run at any point and needs no Graph read permission.
const (
	// TagKeyID holds the Graph keyId that addKey returned for the version.
	TagKeyID = "kvassert-graph-key-id"
	// TagAccepted holds when Entra was first seen accepting the version
	// (RFC 3339).
	TagAccepted = "kvassert-accepted"
	// TagRemoved holds when kvassert removed the version's key from the app
	// (RFC 3339).
	TagRemoved = "kvassert-removed"
)

// Version is one version of the certificate in the vault.
type Version struct {
	// Version is the Key Vault version identifier.
	Version string
	// KeyID is the versioned key identifier (kid) that signs for it.
	KeyID string
	// Certificate is the parsed X.509 certificate.
	Certificate *x509.Certificate
	// Enabled is the version's enabled attribute.
	Enabled bool
	// Created is when the vault created the version.
	Created time.Time
	// Tags are the version's tags (kvassert's are TagKeyID, TagAccepted and
	// TagRemoved).
	Tags map[string]string
}

// Thumbprint is the SHA-1 thumbprint in upper-case hex, as the Azure portal
// shows it next to a registered certificate.
func (v *Version) Thumbprint() string { return assertion.ThumbprintHex(v.Certificate) }

// ValidAt reports whether the version is enabled and its certificate valid
// at t.
func (v *Version) ValidAt(t time.Time) bool {
	return v.Enabled && !t.Before(v.Certificate.NotBefore) && !t.After(v.Certificate.NotAfter)
}

// certStore is the Key Vault side of a roll.
type certStore struct {
	client *azcertificates.Client
	name   string
	vault  keyvault.Vault
}

func newCertStore(vaultURL, name string, cred azcore.TokenCredential, opts keyvault.Options) (*certStore, error) {
	v, err := keyvault.ParseVaultURL(vaultURL)
	if err != nil {
		return nil, err
	}
	if v.ManagedHSM {
		return nil, errors.New("rotation: Managed HSM has no certificates; rotation works on a Key Vault certificate")
	}
	if v.Loopback && !opts.AllowLoopback {
		return nil, fmt.Errorf("rotation: %s is an address on this machine; only Azure vault hosts are used unless keyvault.Options.AllowLoopback is set (for emulators)", v.Host)
	}
	if err := keyvault.CheckName(name); err != nil {
		return nil, err
	}
	c, err := azcertificates.NewClient(v.URL, cred, &azcertificates.ClientOptions{ClientOptions: opts.ClientOptions, DisableChallengeResourceVerification: v.Loopback})
	if err != nil {
		return nil, err
	}
	return &certStore{client: c, name: name, vault: v}, nil
}

// versions reads every version of the certificate (certificates/list, then
// certificates/get per enabled version), newest first (by NotBefore, then
// by creation).
func (s *certStore) versions(ctx context.Context) ([]*Version, error) {
	var out []*Version
	pager := s.client.NewListCertificatePropertiesVersionsPager(s.name, nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("rotation: listing the versions of certificate %q in %s (needs certificates/list): %w", s.name, s.vault.Host, err)
		}
		for _, p := range page.Value {
			if p == nil || p.ID == nil {
				continue
			}
			if a := p.Attributes; a != nil && a.Enabled != nil && !*a.Enabled {
				continue // a disabled version cannot sign; nothing to do with it
			}
			v, err := s.version(ctx, p.ID.Version())
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
	}
	// Versions made in the same second (tests, or a create right after a
	// renewal) tie on NotBefore and creation time: the vault's current
	// version (what GET without a version returns) is the newest then.
	current := ""
	if len(out) > 1 {
		resp, err := s.client.GetCertificate(ctx, s.name, "", nil)
		if err != nil {
			return nil, fmt.Errorf("rotation: reading the current version of certificate %q: %w", s.name, err)
		}
		if resp.ID != nil {
			current = resp.ID.Version()
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if !a.Certificate.NotBefore.Equal(b.Certificate.NotBefore) {
			return a.Certificate.NotBefore.After(b.Certificate.NotBefore)
		}
		if (a.Version == current) != (b.Version == current) {
			return a.Version == current
		}
		return a.Created.After(b.Created)
	})
	return out, nil
}

func (s *certStore) version(ctx context.Context, version string) (*Version, error) {
	resp, err := s.client.GetCertificate(ctx, s.name, version, nil)
	if err != nil {
		return nil, fmt.Errorf("rotation: reading version %s of certificate %q: %w", version, s.name, err)
	}
	if len(resp.CER) == 0 || resp.KID == nil {
		return nil, fmt.Errorf("rotation: version %s of certificate %q has no certificate or key yet (pending?)", version, s.name)
	}
	x, err := x509.ParseCertificate(resp.CER)
	if err != nil {
		return nil, fmt.Errorf("rotation: version %s of certificate %q: %w", version, s.name, err)
	}
	v := &Version{Version: version, KeyID: string(*resp.KID), Certificate: x, Enabled: true, Tags: map[string]string{}}
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
	return v, nil
}

// setTags merges tags into the version's tags (certificates/update).
func (s *certStore) setTags(ctx context.Context, v *Version, tags map[string]string) error {
	merged := map[string]*string{}
	for k, val := range v.Tags {
		merged[k] = to(val)
	}
	for k, val := range tags {
		merged[k] = to(val)
	}
	if _, err := s.client.UpdateCertificate(ctx, s.name, v.Version, azcertificates.UpdateCertificateParameters{Tags: merged}, nil); err != nil {
		return fmt.Errorf("rotation: tagging version %s of certificate %q (needs certificates/update): %w", v.Version, s.name, err)
	}
	for k, val := range tags {
		v.Tags[k] = val
	}
	return nil
}

// autoRenews reports whether the certificate's policy has an AutoRenew
// lifetime action (then the vault creates new versions itself).
func (s *certStore) autoRenews(ctx context.Context) (bool, error) {
	resp, err := s.client.GetCertificatePolicy(ctx, s.name, nil)
	if err != nil {
		return false, fmt.Errorf("rotation: reading the policy of certificate %q: %w", s.name, err)
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
		return fmt.Errorf("rotation: reading the policy of certificate %q: %w", s.name, err)
	}
	if _, err := s.client.CreateCertificate(ctx, s.name, azcertificates.CreateCertificateParameters{CertificatePolicy: &pol.CertificatePolicy}, nil); err != nil {
		return fmt.Errorf("rotation: creating a new version of certificate %q (needs certificates/create): %w", s.name, err)
	}
	return nil
}

func to[T any](v T) *T { return &v }
