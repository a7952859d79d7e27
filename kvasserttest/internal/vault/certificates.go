package vault

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"math/big"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/kvassert/kvassert/kvasserttest/internal/emu"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
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
}

type certItem struct {
	name     string
	versions []*certVersion // oldest first
	policy   *certPolicy    // normalized, with attributes
	pending  *pendingOp
}

// pendingOp is the certificate operation of a create.
type pendingOp struct {
	requestID    string
	csr          []byte
	issuer       string
	cancellation bool
	status       string // inProgress, completed
	details      string
	created      time.Time
	polls        int // polls answered inProgress
	// what completion publishes
	priv    crypto.Signer
	policy  *certPolicy
	enabled bool
	tags    map[string]string
	ready   *preparedCert // self-signed: already issued
}

// preparedCert is an issued certificate and its secret value, ready to be
// published as a new version.
type preparedCert struct {
	der         []byte
	cert        *x509.Certificate
	priv        crypto.Signer
	secretValue string
}

type deletedCert struct {
	item    *certItem
	key     *keyItem
	secret  *secretItem
	deleted int64
}

const (
	detailsSelfPending  = "Pending certificate created. Certificate request is in progress. This may take some time based on the issuer provider. Please check again later."
	detailsMergePending = "Pending certificate created. Please Perform Merge to complete the request."
)

// certificateRoute resolves /certificates/... and /deletedcertificates/...
// (segs with the first segment).
func (v *Vault) certificateRoute(method string, segs []string) (route, *apiError) {
	if segs[0] == "deletedcertificates" {
		if len(segs) < 2 || segs[1] == "" {
			return route{}, methodNotAllowed(method, "/deletedcertificates")
		}
		name := segs[1]
		if e := checkName(name); e != nil {
			return route{}, e
		}
		obj := "certificates/" + name
		switch {
		case len(segs) == 2 && method == http.MethodGet:
			return route{emu.OpCertificateDeleted, "certificates/get", obj, v.getDeletedCertificate(name)}, nil
		case len(segs) == 2 && method == http.MethodDelete:
			return route{emu.OpCertificateDeleted, "certificates/delete", obj, v.purgeCertificate(name)}, nil
		case len(segs) == 3 && segs[2] == "recover" && method == http.MethodPost:
			return route{emu.OpCertificateDeleted, "certificates/create", obj, v.recoverCertificate(name)}, nil
		}
		return route{}, methodNotAllowed(method, "/"+strings.Join(segs, "/"))
	}
	segs = segs[1:]
	if len(segs) == 0 || (len(segs) == 1 && segs[0] == "") {
		if method == http.MethodGet {
			return route{op: emu.OpCertificateList, perm: "certificates/list", handle: v.listCertificates}, nil
		}
		return route{}, methodNotAllowed(method, "/certificates")
	}
	name := segs[0]
	if e := checkName(name); e != nil {
		return route{}, e
	}
	obj := "certificates/" + name
	if len(segs) == 1 {
		switch method {
		case http.MethodGet:
			return route{emu.OpCertificateGet, "certificates/get", obj, v.getCertificate(name, "")}, nil
		case http.MethodPatch:
			return route{emu.OpCertificateUpdate, "certificates/update", obj, v.updateCertificate(name, "")}, nil
		case http.MethodDelete:
			return route{emu.OpCertificateDelete, "certificates/delete", obj, v.deleteCertificate(name)}, nil
		}
		return route{}, methodNotAllowed(method, "/certificates/"+name)
	}
	sub := segs[1]
	if len(segs) == 3 && sub == "pending" && segs[2] == "merge" && method == http.MethodPost {
		return route{emu.OpCertificateMerge, "certificates/create", obj, v.mergeCertificate(name)}, nil
	}
	if len(segs) != 2 {
		return route{}, methodNotAllowed(method, "/certificates/"+strings.Join(segs, "/"))
	}
	switch method + " " + sub {
	case "POST create":
		return route{emu.OpCertificateCreate, "certificates/create", obj, v.createCertificate(name)}, nil
	case "POST import":
		return route{emu.OpCertificateImport, "certificates/import", obj, v.importCertificate(name)}, nil
	case "GET versions":
		return route{emu.OpCertificateList, "certificates/list", obj, v.listCertificateVersions(name)}, nil
	case "GET policy":
		return route{emu.OpCertificatePolicy, "certificates/get", obj, v.getPolicy(name)}, nil
	case "PATCH policy":
		return route{emu.OpCertificatePolicy, "certificates/update", obj, v.updatePolicy(name)}, nil
	case "GET pending":
		return route{emu.OpCertificatePending, "certificates/get", obj, v.getPending(name)}, nil
	case "PATCH pending":
		return route{emu.OpCertificatePending, "certificates/update", obj, v.updatePending(name)}, nil
	case "DELETE pending":
		return route{emu.OpCertificateDelete, "certificates/delete", obj, v.deletePending(name)}, nil
	}
	if !isKeyword(sub) {
		switch method {
		case http.MethodGet:
			return route{emu.OpCertificateGet, "certificates/get", obj, v.getCertificate(name, sub)}, nil
		case http.MethodPatch:
			return route{emu.OpCertificateUpdate, "certificates/update", obj, v.updateCertificate(name, sub)}, nil
		}
	}
	return route{}, methodNotAllowed(method, "/certificates/"+strings.Join(segs, "/"))
}

func isKeyword(s string) bool {
	switch s {
	case "create", "import", "versions", "policy", "pending", "backup", "restore":
		return true
	}
	return false
}

func (v *Vault) certID(name, version string) string {
	return v.cfg.BaseURL + "/certificates/" + name + "/" + version
}

// certAttributesJSON are a certificate version's attributes as answered.
type certAttributesJSON struct {
	Enabled         bool   `json:"enabled"`
	NotBefore       int64  `json:"nbf"`
	Expires         int64  `json:"exp"`
	Created         int64  `json:"created"`
	Updated         int64  `json:"updated"`
	RecoveryLevel   string `json:"recoveryLevel"`
	RecoverableDays int    `json:"recoverableDays"`
}

type idOnly struct {
	ID string `json:"id"`
}

type certBundle struct {
	ID                 string             `json:"id"`
	Kid                string             `json:"kid"`
	Sid                string             `json:"sid"`
	X5t                string             `json:"x5t"`
	Cer                string             `json:"cer"`
	Attributes         certAttributesJSON `json:"attributes"`
	Policy             *certPolicy        `json:"policy,omitempty"`
	Pending            *idOnly            `json:"pending,omitempty"`
	Tags               map[string]string  `json:"tags,omitempty"`
	RecoveryID         string             `json:"recoveryId,omitempty"`
	DeletedDate        int64              `json:"deletedDate,omitempty"`
	ScheduledPurgeDate int64              `json:"scheduledPurgeDate,omitempty"`
}

type certListItem struct {
	ID         string             `json:"id"`
	X5t        string             `json:"x5t"`
	Attributes certAttributesJSON `json:"attributes"`
	Tags       map[string]string  `json:"tags,omitempty"`
}

func x5t(der []byte) string {
	sum := sha1.Sum(der)
	return b64url(sum[:])
}

func (v *Vault) certAttributes(cv *certVersion) certAttributesJSON {
	return certAttributesJSON{
		Enabled: cv.enabled, NotBefore: cv.cert.NotBefore.Unix(), Expires: cv.cert.NotAfter.Unix(),
		Created: cv.created, Updated: cv.updated, RecoveryLevel: recoveryLevel, RecoverableDays: recoverableDays,
	}
}

// certBundleOf renders a version; call with v.mu held.
func (v *Vault) certBundleOf(item *certItem, cv *certVersion) certBundle {
	b := certBundle{
		ID:         v.certID(item.name, cv.version),
		Kid:        v.kid(cv.key),
		Sid:        v.cfg.BaseURL + "/secrets/" + item.name + "/" + cv.version,
		X5t:        x5t(cv.der),
		Cer:        base64.StdEncoding.EncodeToString(cv.der),
		Attributes: v.certAttributes(cv),
		Policy:     v.policyOf(item),
		Tags:       cloneTags(cv.tags),
	}
	if item.pending != nil {
		b.Pending = &idOnly{ID: v.cfg.BaseURL + "/certificates/" + item.name + "/pending"}
	}
	return b
}

func (v *Vault) policyOf(item *certItem) *certPolicy {
	p := clonePolicy(item.policy)
	if p != nil {
		p.ID = v.cfg.BaseURL + "/certificates/" + item.name + "/policy"
	}
	return p
}

// findCert returns a version (latest for ""); call with v.mu held.
func (v *Vault) findCert(name, version string) (*certItem, *certVersion, *apiError) {
	item := v.certs[strings.ToLower(name)]
	if item == nil || len(item.versions) == 0 {
		return nil, nil, certNotFound(name)
	}
	if version == "" {
		return item, item.versions[len(item.versions)-1], nil
	}
	for _, cv := range item.versions {
		if cv.version == strings.ToLower(version) {
			return item, cv, nil
		}
	}
	return nil, nil, certNotFound(name + "/" + version)
}

// issue creates a self-signed certificate for the policy.
func (v *Vault) issue(p *certPolicy, priv crypto.Signer) (*preparedCert, *apiError) {
	xp := p.X509Props
	now := v.now().Truncate(time.Second)
	serial := make([]byte, 16)
	rand.Read(serial) //nolint:errcheck // crypto/rand never fails
	serial[0] &= 0x7f
	tmpl := &x509.Certificate{
		SerialNumber: new(big.Int).SetBytes(serial),
		NotBefore:    now.Add(-10 * time.Minute),
		NotAfter:     now.AddDate(0, *xp.ValidityMonths, 0),
		KeyUsage:     keyUsage(xp.KeyUsage),
	}
	if xp.Subject != "" {
		raw, e := parseDN(xp.Subject)
		if e != nil {
			return nil, e
		}
		tmpl.RawSubject = raw
	}
	for _, eku := range xp.Ekus {
		oid, _ := parseOID(eku)
		tmpl.UnknownExtKeyUsage = append(tmpl.UnknownExtKeyUsage, oid)
	}
	if xp.Sans != nil {
		tmpl.DNSNames = xp.Sans.DNSNames
		tmpl.EmailAddresses = xp.Sans.Emails
	}
	if xp.BasicConstraints.CA {
		tmpl.BasicConstraintsValid, tmpl.IsCA = true, true
	} else {
		// CA:false, not critical, as the service encodes it.
		tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 19}, Value: []byte{0x30, 0x00}})
	}
	ski, err := subjectKeyID(priv.Public())
	if err != nil {
		return nil, errf(http.StatusInternalServerError, "InternalServerError", "Certificate issuance failed.")
	}
	tmpl.SubjectKeyId, tmpl.AuthorityKeyId = ski, ski
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, priv.Public(), priv)
	if err != nil {
		return nil, badParameter("The certificate cannot be issued from this policy: %v", err)
	}
	return prepare(der, priv, p)
}

// prepare parses an issued or imported certificate and encodes its secret.
func prepare(der []byte, priv crypto.Signer, p *certPolicy) (*preparedCert, *apiError) {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, badParameter("The certificate cannot be parsed: %v", err)
	}
	value, err := secretValue(p.SecretProps.ContentType, der, priv, *p.KeyProps.Exportable)
	if err != nil {
		return nil, errf(http.StatusInternalServerError, "InternalServerError", "The certificate's secret cannot be encoded.")
	}
	return &preparedCert{der: der, cert: cert, priv: priv, secretValue: value}, nil
}

func subjectKeyID(pub crypto.PublicKey) ([]byte, error) {
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	var info struct {
		Algorithm pkix.AlgorithmIdentifier
		Key       asn1.BitString
	}
	if _, err := asn1.Unmarshal(spki, &info); err != nil {
		return nil, err
	}
	sum := sha1.Sum(info.Key.Bytes)
	return sum[:], nil
}

// csrFor builds the signing request of a pending operation.
func csrFor(p *certPolicy, priv crypto.Signer) ([]byte, *apiError) {
	tmpl := &x509.CertificateRequest{}
	if p.X509Props.Subject != "" {
		raw, e := parseDN(p.X509Props.Subject)
		if e != nil {
			return nil, e
		}
		tmpl.RawSubject = raw
	}
	if s := p.X509Props.Sans; s != nil {
		tmpl.DNSNames, tmpl.EmailAddresses = s.DNSNames, s.Emails
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, priv)
	if err != nil {
		return nil, badParameter("The certificate signing request cannot be built: %v", err)
	}
	return der, nil
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
	}
	item.versions = append(item.versions, cv)
	return cv
}

// certItemFor returns (creating) the item of a name; call with v.mu held.
func (v *Vault) certItemFor(name string) *certItem {
	lower := strings.ToLower(name)
	item := v.certs[lower]
	if item == nil {
		item = &certItem{name: name}
		v.certs[lower] = item
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

// createCertificateParams is the body of POST /certificates/{name}/create.
type createCertificateParams struct {
	Policy     *certPolicy       `json:"policy"`
	Attributes *attributesInput  `json:"attributes"`
	Tags       map[string]string `json:"tags"`
}

func (v *Vault) createCertificate(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var p createCertificateParams
		if e := readJSON(r, &p); e != nil {
			v.writeError(w, e)
			return
		}
		if e := checkTags(p.Tags); e != nil {
			v.writeError(w, e)
			return
		}
		v.mu.RLock()
		e := v.conflict(name)
		var prev crypto.Signer
		pol := clonePolicy(p.Policy)
		if item := v.certs[strings.ToLower(name)]; item != nil {
			if pol == nil {
				pol = clonePolicy(item.policy)
			}
			if len(item.versions) > 0 {
				prev = item.versions[len(item.versions)-1].key.priv
			}
		}
		v.mu.RUnlock()
		if e == nil && pol == nil {
			e = badParameter("The certificate policy is required to create a new certificate.")
		}
		if e == nil {
			pol.Attributes, pol.ID = nil, ""
			e = normalizePolicy(pol)
		}
		if e != nil {
			v.writeError(w, e)
			return
		}
		op, e := v.newPendingOp(pol, prev)
		if e != nil {
			v.writeError(w, e)
			return
		}
		op.enabled = true
		if p.Attributes != nil && p.Attributes.Enabled != nil {
			op.enabled = *p.Attributes.Enabled
		}
		op.tags = cloneTags(p.Tags)

		v.mu.Lock()
		if e := v.conflict(name); e != nil {
			v.mu.Unlock()
			v.writeError(w, e)
			return
		}
		item := v.certItemFor(name)
		v.setPolicy(item, pol)
		item.pending = op
		answer := v.pendingJSON(item, op) // the create answer always says inProgress
		if op.ready != nil && v.pendingPolls == 0 && v.pendingDelay == 0 {
			v.complete(item, op)
		}
		retry := v.retryAfter
		v.mu.Unlock()

		h := w.Header()
		h.Set("Location", v.cfg.BaseURL+"/certificates/"+item.name+"/pending?api-version="+r.URL.Query().Get("api-version"))
		if retry > 0 {
			h.Set("Retry-After", strconv.Itoa(retry))
		}
		v.writeJSON(w, http.StatusAccepted, answer)
	}
}

// newPendingOp generates (or reuses) the key, the CSR and, for self-signed
// policies, the certificate itself.
func (v *Vault) newPendingOp(pol *certPolicy, prev crypto.Signer) (*pendingOp, *apiError) {
	priv := prev
	if priv == nil || !*pol.KeyProps.ReuseKey || !sameKeyShape(priv, pol.KeyProps) {
		var e *apiError
		if priv, e = generateKey(pol.KeyProps.Kty, pol.KeyProps.KeySize, pol.KeyProps.Curve); e != nil {
			return nil, e
		}
	}
	csr, e := csrFor(pol, priv)
	if e != nil {
		return nil, e
	}
	op := &pendingOp{
		requestID: newVersion(), csr: csr, issuer: pol.Issuer.Name, status: "inProgress",
		details: detailsMergePending, created: v.now(), priv: priv, policy: clonePolicy(pol),
	}
	if strings.EqualFold(pol.Issuer.Name, "self") {
		op.details = detailsSelfPending
		if op.ready, e = v.issue(pol, priv); e != nil {
			return nil, e
		}
	}
	return op, nil
}

func sameKeyShape(priv crypto.Signer, kp *keyProps) bool {
	switch pub := priv.Public().(type) {
	case *rsa.PublicKey:
		return strings.HasPrefix(kp.Kty, "RSA") && kp.KeySize != nil && pub.N.BitLen() == *kp.KeySize
	case *ecdsa.PublicKey:
		return strings.HasPrefix(kp.Kty, "EC") && curveName(pub.Curve) == kp.Curve
	}
	return false
}

// complete publishes a pending operation's certificate; call with v.mu held.
func (v *Vault) complete(item *certItem, op *pendingOp) {
	v.publish(item, op.ready, op.policy, op.enabled, op.tags)
	op.status, op.details, op.ready = "completed", "", nil
}

// pendingJSON renders a pending operation; call with v.mu held.
func (v *Vault) pendingJSON(item *certItem, op *pendingOp) map[string]any {
	out := map[string]any{
		"id":                     v.cfg.BaseURL + "/certificates/" + item.name + "/pending",
		"issuer":                 map[string]string{"name": op.issuer},
		"csr":                    base64.StdEncoding.EncodeToString(op.csr),
		"cancellation_requested": op.cancellation,
		"status":                 op.status,
		"request_id":             op.requestID,
	}
	if op.details != "" {
		out["status_details"] = op.details
	}
	if op.status == "completed" {
		out["target"] = v.cfg.BaseURL + "/certificates/" + item.name
	}
	return out
}

func pendingNotFound(name string) *apiError {
	return errf(http.StatusNotFound, "PendingCertificateNotFound", "Pending certificate not found: %s", name)
}

func (v *Vault) getPending(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v.mu.Lock()
		item := v.certs[strings.ToLower(name)]
		if item == nil || item.pending == nil {
			v.mu.Unlock()
			v.writeError(w, pendingNotFound(name))
			return
		}
		op := item.pending
		if op.status == "inProgress" && op.ready != nil {
			if op.polls >= v.pendingPolls && v.now().Sub(op.created) >= v.pendingDelay {
				v.complete(item, op)
			} else {
				op.polls++
			}
		}
		body := v.pendingJSON(item, op)
		inProgress := op.status == "inProgress"
		retry := v.retryAfter
		v.mu.Unlock()
		if inProgress && retry > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(retry))
		}
		v.writeJSON(w, http.StatusOK, body)
	}
}

func (v *Vault) updatePending(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var p struct {
			CancellationRequested *bool `json:"cancellation_requested"`
		}
		if e := readJSON(r, &p); e != nil {
			v.writeError(w, e)
			return
		}
		if p.CancellationRequested == nil {
			v.writeError(w, badParameter("The parameter 'cancellation_requested' is required."))
			return
		}
		v.mu.Lock()
		item := v.certs[strings.ToLower(name)]
		if item == nil || item.pending == nil {
			v.mu.Unlock()
			v.writeError(w, pendingNotFound(name))
			return
		}
		if item.pending.status == "inProgress" && *p.CancellationRequested {
			item.pending.cancellation = true
		}
		body := v.pendingJSON(item, item.pending)
		v.mu.Unlock()
		v.writeJSON(w, http.StatusOK, body)
	}
}

func (v *Vault) deletePending(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v.mu.Lock()
		lower := strings.ToLower(name)
		item := v.certs[lower]
		if item == nil || item.pending == nil {
			v.mu.Unlock()
			v.writeError(w, pendingNotFound(name))
			return
		}
		body := v.pendingJSON(item, item.pending)
		item.pending = nil
		if len(item.versions) == 0 {
			delete(v.certs, lower)
		}
		v.mu.Unlock()
		v.writeJSON(w, http.StatusOK, body)
	}
}

func (v *Vault) mergeCertificate(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var p struct {
			X5c        []string          `json:"x5c"`
			Attributes *attributesInput  `json:"attributes"`
			Tags       map[string]string `json:"tags"`
		}
		if e := readJSON(r, &p); e != nil {
			v.writeError(w, e)
			return
		}
		if len(p.X5c) == 0 {
			v.writeError(w, badParameter("The parameter 'x5c' is required."))
			return
		}
		der, err := base64.StdEncoding.DecodeString(p.X5c[0])
		if err != nil {
			v.writeError(w, badParameter("The parameter 'x5c' must hold base64 DER certificates."))
			return
		}
		v.mu.RLock()
		item := v.certs[strings.ToLower(name)]
		var op *pendingOp
		if item != nil {
			op = item.pending
		}
		v.mu.RUnlock()
		if op == nil || op.status != "inProgress" || op.ready != nil {
			v.writeError(w, pendingNotFound(name))
			return
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			v.writeError(w, badParameter("The certificate in 'x5c' cannot be parsed."))
			return
		}
		if !publicKeysEqual(cert.PublicKey, op.priv.Public()) {
			v.writeError(w, badParameter("Public key from x509 certificate and key of this instance doesn't match"))
			return
		}
		pc, e := prepare(der, op.priv, op.policy)
		if e != nil {
			v.writeError(w, e)
			return
		}
		enabled := op.enabled
		if p.Attributes != nil && p.Attributes.Enabled != nil {
			enabled = *p.Attributes.Enabled
		}
		v.mu.Lock()
		if item.pending != op || op.status != "inProgress" {
			v.mu.Unlock()
			v.writeError(w, pendingNotFound(name))
			return
		}
		cv := v.publish(item, pc, op.policy, enabled, p.Tags)
		op.status, op.details = "completed", ""
		b := v.certBundleOf(item, cv)
		v.mu.Unlock()
		v.writeJSON(w, http.StatusCreated, b)
	}
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	ka, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ka.Equal(b)
}

func (v *Vault) getCertificate(name, version string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v.mu.Lock()
		if item := v.certs[strings.ToLower(name)]; item != nil && item.pending != nil && item.pending.status == "inProgress" &&
			item.pending.ready != nil && v.pendingPolls == 0 && v.now().Sub(item.pending.created) >= v.pendingDelay {
			v.complete(item, item.pending)
		}
		item, cv, e := v.findCert(name, version)
		var b certBundle
		if e == nil {
			b = v.certBundleOf(item, cv)
		}
		v.mu.Unlock()
		if e != nil {
			v.writeError(w, e)
			return
		}
		v.writeJSON(w, http.StatusOK, b)
	}
}

func (v *Vault) listCertificates(w http.ResponseWriter, r *http.Request) {
	v.mu.RLock()
	out := listResult[certListItem]{Value: []certListItem{}}
	for _, item := range v.certs {
		if len(item.versions) == 0 {
			continue
		}
		cv := item.versions[len(item.versions)-1]
		out.Value = append(out.Value, certListItem{ID: v.cfg.BaseURL + "/certificates/" + item.name, X5t: x5t(cv.der), Attributes: v.certAttributes(cv), Tags: cloneTags(cv.tags)})
	}
	v.mu.RUnlock()
	sort.Slice(out.Value, func(i, j int) bool { return out.Value[i].ID < out.Value[j].ID })
	v.writeJSON(w, http.StatusOK, out)
}

func (v *Vault) listCertificateVersions(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v.mu.RLock()
		out := listResult[certListItem]{Value: []certListItem{}}
		if item := v.certs[strings.ToLower(name)]; item != nil {
			for _, cv := range item.versions {
				out.Value = append(out.Value, certListItem{ID: v.certID(item.name, cv.version), X5t: x5t(cv.der), Attributes: v.certAttributes(cv), Tags: cloneTags(cv.tags)})
			}
		}
		v.mu.RUnlock()
		v.writeJSON(w, http.StatusOK, out)
	}
}

func (v *Vault) updateCertificate(name, version string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var p struct {
			Attributes *attributesInput  `json:"attributes"`
			Policy     *certPolicy       `json:"policy"`
			Tags       map[string]string `json:"tags"`
		}
		if e := readJSON(r, &p); e != nil {
			v.writeError(w, e)
			return
		}
		if e := checkTags(p.Tags); e != nil {
			v.writeError(w, e)
			return
		}
		v.mu.Lock()
		item, cv, e := v.findCert(name, version)
		var pol *certPolicy
		if e == nil && p.Policy != nil {
			pol = clonePolicy(item.policy)
			mergePolicy(pol, p.Policy)
			e = normalizePolicy(pol)
		}
		if e != nil {
			v.mu.Unlock()
			v.writeError(w, e)
			return
		}
		now := v.now().Unix()
		if pol != nil {
			v.setPolicy(item, pol)
		}
		// exp and nbf come from the X.509 certificate: the service ignores them.
		if p.Attributes != nil && p.Attributes.Enabled != nil {
			cv.enabled = *p.Attributes.Enabled
			cv.key.attrs.enabled, cv.key.attrs.updated = cv.enabled, now
			cv.secret.attrs.enabled, cv.secret.attrs.updated = cv.enabled, now
		}
		if p.Tags != nil {
			cv.tags = cloneTags(p.Tags)
		}
		cv.updated = now
		b := v.certBundleOf(item, cv)
		v.mu.Unlock()
		v.writeJSON(w, http.StatusOK, b)
	}
}

func (v *Vault) getPolicy(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v.mu.RLock()
		item := v.certs[strings.ToLower(name)]
		var pol *certPolicy
		if item != nil {
			pol = v.policyOf(item)
		}
		v.mu.RUnlock()
		if pol == nil {
			v.writeError(w, certNotFound(name))
			return
		}
		v.writeJSON(w, http.StatusOK, pol)
	}
}

func (v *Vault) updatePolicy(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var upd certPolicy
		if e := readJSON(r, &upd); e != nil {
			v.writeError(w, e)
			return
		}
		v.mu.Lock()
		item := v.certs[strings.ToLower(name)]
		if item == nil || item.policy == nil {
			v.mu.Unlock()
			v.writeError(w, certNotFound(name))
			return
		}
		pol := clonePolicy(item.policy)
		mergePolicy(pol, &upd)
		if e := normalizePolicy(pol); e != nil {
			v.mu.Unlock()
			v.writeError(w, e)
			return
		}
		v.setPolicy(item, pol)
		out := v.policyOf(item)
		v.mu.Unlock()
		v.writeJSON(w, http.StatusOK, out)
	}
}

func (v *Vault) deleteCertificate(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		lower := strings.ToLower(name)
		v.mu.Lock()
		item, cv, e := v.findCert(name, "")
		if e != nil {
			v.mu.Unlock()
			v.writeError(w, e)
			return
		}
		d := &deletedCert{item: item, key: v.keys[lower], secret: v.secrets[lower], deleted: v.now().Unix()}
		delete(v.certs, lower)
		delete(v.keys, lower)
		delete(v.secrets, lower)
		v.deleted[lower] = d
		b := v.deletedBundle(d, cv)
		v.mu.Unlock()
		v.writeJSON(w, http.StatusOK, b)
	}
}

// deletedBundle renders a deleted certificate; call with v.mu held.
func (v *Vault) deletedBundle(d *deletedCert, cv *certVersion) certBundle {
	b := v.certBundleOf(d.item, cv)
	b.RecoveryID = v.cfg.BaseURL + "/deletedcertificates/" + d.item.name
	b.DeletedDate = d.deleted
	b.ScheduledPurgeDate = d.deleted + recoverableDays*24*3600
	return b
}

func deletedNotFound(name string) *apiError {
	return errf(http.StatusNotFound, "CertificateNotFound", "Deleted Certificate not found: %s", name)
}

func (v *Vault) getDeletedCertificate(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v.mu.RLock()
		d := v.deleted[strings.ToLower(name)]
		var b certBundle
		if d != nil {
			b = v.deletedBundle(d, d.item.versions[len(d.item.versions)-1])
		}
		v.mu.RUnlock()
		if d == nil {
			v.writeError(w, deletedNotFound(name))
			return
		}
		v.writeJSON(w, http.StatusOK, b)
	}
}

func (v *Vault) purgeCertificate(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		lower := strings.ToLower(name)
		v.mu.Lock()
		d := v.deleted[lower]
		delete(v.deleted, lower)
		v.mu.Unlock()
		if d == nil {
			v.writeError(w, deletedNotFound(name))
			return
		}
		v.standardHeaders(w)
		w.WriteHeader(http.StatusNoContent)
	}
}

func (v *Vault) recoverCertificate(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		lower := strings.ToLower(name)
		v.mu.Lock()
		d := v.deleted[lower]
		if d == nil {
			v.mu.Unlock()
			v.writeError(w, deletedNotFound(name))
			return
		}
		delete(v.deleted, lower)
		v.certs[lower] = d.item
		if d.key != nil {
			v.keys[lower] = d.key
		}
		if d.secret != nil {
			v.secrets[lower] = d.secret
		}
		b := v.certBundleOf(d.item, d.item.versions[len(d.item.versions)-1])
		v.mu.Unlock()
		v.writeJSON(w, http.StatusOK, b)
	}
}

// createScenarioCertificate creates a scenario certificate at New, as a
// completed self-signed create would.
func (v *Vault) createScenarioCertificate(c scenario.VaultCertificate) error {
	subject := c.Subject
	if subject == "" {
		subject = "CN=" + c.Name
	}
	pol := &certPolicy{
		KeyProps:  &keyProps{Exportable: ptr(c.Exportable), Kty: c.KeyType, Curve: c.Curve},
		X509Props: &x509Props{Subject: subject},
		Issuer:    &issuerParams{Name: "Self"},
	}
	if c.KeySize != 0 {
		pol.KeyProps.KeySize = ptr(c.KeySize)
	}
	if c.ValidityMonths != 0 {
		pol.X509Props.ValidityMonths = ptr(c.ValidityMonths)
	}
	if e := normalizePolicy(pol); e != nil {
		return e
	}
	if e := checkName(c.Name); e != nil {
		return e
	}
	op, e := v.newPendingOp(pol, nil)
	if e != nil {
		return e
	}
	op.enabled = true
	v.mu.Lock()
	defer v.mu.Unlock()
	if e := v.conflict(c.Name); e != nil {
		return e
	}
	item := v.certItemFor(c.Name)
	v.setPolicy(item, pol)
	item.pending = op
	v.complete(item, op)
	return nil
}
