package vault

// Test hooks: versions a test adds without going through the REST API
// (shapes the service can hold but a self-signed create cannot make, such
// as a validity that starts in the future), and the vault's ground truth
// about each version, for simulation oracles.

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"errors"
	"strings"
	"time"

	"github.com/kvassert/kvassert/internal/emuhook"
)

// VersionSpec shapes a version AddVersion publishes (see emuhook).
type VersionSpec = emuhook.VersionSpec

// AddVersion publishes a new version of an existing certificate, with a
// key generated in the vault and a self-signed certificate shaped by s,
// as the latest version and as the certificate's latest (completed)
// operation, whose CSR holds the key. The certificate's policy is not
// changed. It returns the new version's ID.
func (v *Vault) AddVersion(name string, s VersionSpec) (string, error) {
	v.renewDue() // renewals due before now come first, as on a request
	if e := checkTags(s.Tags); e != nil {
		return "", errors.New(e.message)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	item := v.certs[strings.ToLower(name)]
	if item == nil || item.policy == nil || len(item.versions) == 0 {
		return "", errors.New("vault: no certificate " + name)
	}
	pol := clonePolicy(item.policy)
	pol.Attributes, pol.ID = nil, ""
	kp := *pol.KeyProps
	kp.Exportable = ptr(s.Exportable)
	if s.EC {
		kp.Kty, kp.KeySize, kp.Curve = "EC", nil, "P-256"
	}
	pol.KeyProps = &kp
	priv := s.Key
	switch pub := priv.(type) {
	case nil:
		var e *apiError
		if priv, e = generateKey(kp.Kty, kp.KeySize, kp.Curve); e != nil {
			return "", errors.New(e.message)
		}
	case *rsa.PrivateKey:
		kp.Kty, kp.KeySize, kp.Curve = "RSA", ptr(pub.N.BitLen()), ""
	case *ecdsa.PrivateKey:
		kp.Kty, kp.KeySize, kp.Curve = "EC", ptr(pub.Curve.Params().BitSize), curveName(pub.Curve)
	default:
		return "", errors.New("vault: Key must be an *rsa.PrivateKey or *ecdsa.PrivateKey")
	}
	now := v.now().Truncate(time.Second)
	nbf, exp := s.NotBefore, s.NotAfter
	if nbf.IsZero() {
		nbf = now.Add(-10 * time.Minute)
	}
	if exp.IsZero() {
		exp = nbf.Add(10*time.Minute).AddDate(0, *pol.X509Props.ValidityMonths, 0)
	}
	pc, e := v.issueWindow(pol, priv, nbf.Truncate(time.Second), exp.Truncate(time.Second))
	if e != nil {
		return "", errors.New(e.message)
	}
	csr, e := csrFor(pol, priv)
	if e != nil {
		return "", errors.New(e.message)
	}
	// As in the service, where such a version comes from a create (or a
	// create merged with a CA's certificate), it is the certificate's
	// latest operation: GET .../pending answers it, completed, with its CSR.
	op := &pendingOp{
		requestID: newVersion(), csr: csr, issuer: pol.Issuer.Name, status: "inProgress", created: v.now(),
		priv: priv, policy: pol, enabled: !s.Disabled, tags: cloneTags(s.Tags), ready: pc,
	}
	item.pending = op
	v.complete(item, op)
	return item.versions[len(item.versions)-1].version, nil
}

// VersionInfo is the vault's ground truth about one certificate version.
type VersionInfo = emuhook.VersionInfo

// Versions returns every version of a certificate, oldest first, after
// running the renewals that are due.
func (v *Vault) Versions(name string) ([]VersionInfo, error) {
	v.renewDue()
	v.mu.Lock()
	defer v.mu.Unlock()
	item := v.certs[strings.ToLower(name)]
	if item == nil {
		return nil, errors.New("vault: no certificate " + name)
	}
	out := make([]VersionInfo, 0, len(item.versions))
	for _, cv := range item.versions {
		out = append(out, VersionInfo{
			Version: cv.version, Certificate: cv.cert, Enabled: cv.enabled,
			Exportable: cv.exportable, Imported: cv.imported, KeyType: cv.key.kty, Tags: cloneTags(cv.tags),
		})
	}
	return out, nil
}
