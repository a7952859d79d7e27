package certcache

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"sort"
	"time"

	"github.com/kvassert/kvassert/internal/jwtassert"
	"github.com/kvassert/kvassert/internal/kvclient"
	"github.com/kvassert/kvassert/internal/kvid"
	"github.com/kvassert/kvassert/keyvault"
)

// fetch reads one version of the certificate (the latest when version is
// empty) and makes a signer for its key. It refuses a certificate that is
// disabled, pending, not RSA, or whose key is in another vault.
func (s *Cache) fetch(ctx context.Context, version string) (_ *Certificate, err error) {
	ctx, end := s.tel.StartCertificateRead(ctx, s.name)
	defer func() { end(err) }()
	resp, err := s.certs.GetCertificate(ctx, s.name, version, nil)
	if err != nil {
		return nil, fmt.Errorf("keyvault: reading certificate %q from %s: %w", s.name, s.vault.Host, kvclient.Sanitize(err))
	}
	respVersion := ""
	if resp.ID != nil {
		respVersion = resp.ID.Version()
	}
	if len(resp.CER) == 0 {
		return nil, unusable(respVersion, fmt.Sprintf("keyvault: certificate %q has no X.509 content yet (is its creation still pending?)", s.name))
	}
	if a := resp.Attributes; a != nil && a.Enabled != nil && !*a.Enabled {
		return nil, unusable(respVersion, fmt.Sprintf("keyvault: certificate %q is disabled in %s", s.name, s.vault.Host))
	}
	x, err := x509.ParseCertificate(resp.CER)
	if err != nil {
		return nil, fmt.Errorf("keyvault: certificate %q: %w", s.name, err)
	}
	if resp.KID == nil {
		return nil, fmt.Errorf("keyvault: certificate %q has no key ID (kid)", s.name)
	}
	kid, err := kvid.ParseKeyID(string(*resp.KID))
	if err != nil {
		return nil, fmt.Errorf("keyvault: certificate %q: %w", s.name, err)
	}
	if kid.Vault.Host != s.vault.Host && !s.vault.Loopback {
		return nil, fmt.Errorf("keyvault: certificate %q names a key in another vault (%s)", s.name, kid.Vault.Host)
	}
	if kid.Version == "" {
		return nil, fmt.Errorf("keyvault: certificate %q has an unversioned kid", s.name)
	}
	if _, ok := x.PublicKey.(*rsa.PublicKey); !ok {
		return nil, unusable(respVersion, fmt.Sprintf("keyvault: certificate %q has a %T key; Entra client assertions need RSA", s.name, x.PublicKey))
	}
	keyID := kvid.ObjectID{Vault: s.vault, Kind: "keys", Name: kid.Name, Version: kid.Version}.String()
	signer, err := keyvault.NewSigner(ctx, keyID, s.cred, &keyvault.SignerOptions{
		ClientOptions: s.opts.ClientOptions, AllowLoopback: s.opts.AllowLoopback, PublicKey: x.PublicKey,
		Throttle: s.opts.Throttle, MaxThrottleWait: s.opts.MaxThrottleWait, Telemetry: s.opts.Telemetry, Logger: s.opts.Logger,
	})
	if err != nil {
		return nil, err
	}
	x5t, x5tS256 := jwtassert.Thumbprints(x)
	c := &Certificate{
		Certificate: x, KeyID: signer.KeyID(), Version: kid.Version,
		X5T: x5t, X5TS256: x5tS256, Signer: signer, ReadAt: s.opts.Now(),
	}
	if resp.ID != nil {
		c.ID = string(*resp.ID)
		c.Version = resp.ID.Version()
	}
	if version != "" && c.Version != version {
		return nil, fmt.Errorf("keyvault: certificate %q: asked for version %q, the vault returned %q", s.name, version, c.Version)
	}
	if p := resp.Policy; p != nil && p.KeyProperties != nil {
		c.Exportable = p.KeyProperties.Exportable
	}
	return c, nil
}

// unusableError is fetch's refusal of a version that exists but cannot
// sign (pending, disabled, not RSA): an older version may still serve.
type unusableError struct {
	version string // the version read, when the vault said
	msg     string
}

func (e *unusableError) Error() string { return e.msg }

func unusable(version, msg string) error { return &unusableError{version: version, msg: msg} }

// VersionInfo is one entry of a certificate's versions list.
type VersionInfo struct {
	// Version identifier.
	Version string
	// Enabled is false for a disabled version.
	Enabled bool
	// NotBefore and Expires bound the version's validity (zero when the
	// vault did not say).
	NotBefore, Expires time.Time
	// Created is when the version was made.
	Created time.Time
	// X5T is the base64url SHA-1 thumbprint.
	X5T string
	// Tags of the version.
	Tags map[string]string
}

// maxVersionPages bounds a versions listing (Key Vault pages hold 25
// versions): a vault whose nextLink loops must not keep a caller listing.
const maxVersionPages = 200

// Versions lists the certificate's versions, newest first (by creation).
// It needs the certificates/list permission.
func (s *Cache) Versions(ctx context.Context) ([]VersionInfo, error) {
	var out []VersionInfo
	pager := s.certs.NewListCertificatePropertiesVersionsPager(s.name, nil)
	for pages := 0; pager.More(); pages++ {
		if pages == maxVersionPages {
			return nil, fmt.Errorf("keyvault: listing the versions of certificate %q in %s: stopped after %d pages (a nextLink that loops?)", s.name, s.vault.Host, maxVersionPages)
		}
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("keyvault: listing the versions of certificate %q in %s: %w", s.name, s.vault.Host, kvclient.Sanitize(err))
		}
		for _, p := range page.Value {
			if p == nil || p.ID == nil {
				continue
			}
			v := VersionInfo{Version: p.ID.Version(), Enabled: true, Tags: map[string]string{}}
			if a := p.Attributes; a != nil {
				if a.Enabled != nil {
					v.Enabled = *a.Enabled
				}
				v.NotBefore, v.Expires, v.Created = deref(a.NotBefore), deref(a.Expires), deref(a.Created)
			}
			if len(p.X509Thumbprint) > 0 {
				v.X5T = base64.RawURLEncoding.EncodeToString(p.X509Thumbprint)
			}
			for k, t := range p.Tags {
				if t != nil {
					v.Tags[k] = *t
				}
			}
			out = append(out, v)
		}
	}
	// Versions created in the same second (a create right after a renewal)
	// tie: the vault's current version (GET without a version) comes first.
	current := ""
	if len(out) > 1 {
		resp, err := s.certs.GetCertificate(ctx, s.name, "", nil)
		if err != nil {
			return nil, fmt.Errorf("keyvault: reading the current version of certificate %q in %s: %w", s.name, s.vault.Host, kvclient.Sanitize(err))
		}
		if resp.ID != nil {
			current = resp.ID.Version()
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if !a.Created.Equal(b.Created) {
			return a.Created.After(b.Created)
		}
		return a.Version == current && b.Version != current
	})
	return out, nil
}

func deref(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}
