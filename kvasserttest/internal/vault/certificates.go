package vault

// The certificate store: versions, their backing key and secret versions,
// and the helpers that look them up and publish new ones (call with v.mu held).

import (
	"crypto/x509"
	"net/http"
	"strings"
)

// certVersion is one version of a certificate; its key and secret versions
// share its version ID. Mutable fields are guarded by Vault.mu.
type certVersion struct {
	version          string
	der              []byte
	cert             *x509.Certificate
	enabled          bool
	created, updated int64
	tags             map[string]string
	key              *keyVersion
	secret           *secretVersion
	// exportable is the policy's key_props.exportable when the version was
	// published; imported is set for versions made by an import (their key
	// was generated outside the vault). Both only for VersionInfo.
	exportable, imported bool
}

type certItem struct {
	name     string
	versions []*certVersion // oldest first
	policy   *certPolicy    // normalized, with attributes
	pending  *pendingOp
}

func (v *Vault) certID(name, version string) string {
	return v.cfg.BaseURL + "/certificates/" + name + "/" + version
}

// findCert returns a version (latest for ""); call with v.mu held.
func (v *Vault) findCert(name, version string) (*certItem, *certVersion, *apiError) {
	item := v.certs[strings.ToLower(name)]
	if item == nil {
		return nil, nil, certNotFound(name)
	}
	cv, e := pickVersion(item.versions, name, version, certNotFound)
	if e != nil {
		return nil, nil, e
	}
	return item, cv, nil
}

// publish stores a prepared certificate as the latest version, with its key
// and secret versions; call with v.mu held.
func (v *Vault) publish(item *certItem, pc *preparedCert, p *certPolicy, enabled bool, tags map[string]string) *certVersion {
	now := v.now().Unix()
	version := newVersion()
	nbf, exp := pc.cert.NotBefore.Unix(), pc.cert.NotAfter.Unix()
	attrs := attributes{enabled: enabled, notBefore: &nbf, expir: &exp, created: now, updated: now}
	kv := &keyVersion{
		name: item.name, version: version, kty: p.KeyProps.Kty, priv: pc.priv,
		keyOps: keyOpsFor(p.X509Props.KeyUsage), attrs: attrs, managed: true,
	}
	if v.keys[strings.ToLower(item.name)] == nil {
		v.keys[strings.ToLower(item.name)] = &keyItem{name: item.name}
	}
	v.addKeyVersion(kv)
	sv := &secretVersion{
		name: item.name, version: version, contentType: p.SecretProps.ContentType,
		value: pc.secretValue, kid: v.kid(kv), attrs: attrs, managed: true,
	}
	v.addSecretVersion(sv)
	cv := &certVersion{
		version: version, der: pc.der, cert: pc.cert, enabled: enabled,
		created: now, updated: now, tags: cloneTags(tags), key: kv, secret: sv,
		exportable: p.KeyProps.Exportable != nil && *p.KeyProps.Exportable,
	}
	item.versions = append(item.versions, cv)
	v.lifetimeChanged()
	return cv
}

// certItemFor returns (creating) the item of a name; call with v.mu held.
func (v *Vault) certItemFor(name string) *certItem {
	return itemFor(v.certs, name, func() *certItem { return &certItem{name: name} })
}

// itemFor returns the item of items named name (in any case), stored made
// by mk when there is none.
func itemFor[I any](items map[string]*I, name string, mk func() *I) *I {
	lower := strings.ToLower(name)
	item := items[lower]
	if item == nil {
		item = mk()
		items[lower] = item
	}
	return item
}

// setPolicy stores a normalized policy with fresh attributes; call with v.mu held.
func (v *Vault) setPolicy(item *certItem, p *certPolicy) {
	now := v.now().Unix()
	created := now
	if item.policy != nil && item.policy.Attributes != nil {
		created = item.policy.Attributes.Created
	}
	p = clonePolicy(p)
	p.ID = ""
	p.Attributes = &policyAttributes{Enabled: true, Created: created, Updated: now}
	item.policy = p
	v.lifetimeChanged()
}

// claimCert locks v.mu for a create or an import of the certificate name
// and returns its item with pol set, v.mu still held; on a conflict it
// unlocks, writes the error and returns nil.
func (v *Vault) claimCert(w http.ResponseWriter, name string, pol *certPolicy) *certItem {
	v.mu.Lock()
	if e := v.conflict(name); e != nil {
		v.mu.Unlock()
		v.writeError(w, e)
		return nil
	}
	item := v.certItemFor(name)
	v.setPolicy(item, pol)
	return item
}

// conflict checks that a certificate name can take a new version; call with
// v.mu held.
func (v *Vault) conflict(name string) *apiError {
	lower := strings.ToLower(name)
	if v.deleted[lower] != nil {
		return errf(http.StatusConflict, "Conflict", "Certificate %s is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the certificate can only be recovered or purged.", name)
	}
	if k := v.keys[lower]; k != nil && len(k.versions) > 0 && !k.versions[0].managed {
		return errf(http.StatusConflict, "Conflict", "A key with the name %s already exists; a certificate cannot take its name.", name)
	}
	if item := v.certs[lower]; item != nil && item.pending != nil && item.pending.status == "inProgress" {
		return errf(http.StatusConflict, "Conflict", "There is already a pending operation for certificate %s.", name)
	}
	return nil
}
