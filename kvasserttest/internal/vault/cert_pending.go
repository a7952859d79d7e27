package vault

// Certificate creation and its pending operation (poll, cancel, delete, merge).

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

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

const (
	detailsSelfPending  = "Pending certificate created. Certificate request is in progress. This may take some time based on the issuer provider. Please check again later."
	detailsMergePending = "Pending certificate created. Please Perform Merge to complete the request."
)

// certificateParams is the body of POST /certificates/{name}/create and of
// PATCH /certificates/{name}/{version}, and part of an import's.
type certificateParams struct {
	Policy     *certPolicy       `json:"policy"`
	Attributes *attributesInput  `json:"attributes"`
	Tags       map[string]string `json:"tags"`
}

func (v *Vault) createCertificate(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var p certificateParams
		if !v.readBody(w, r, &p, tagCheck(&p.Tags)) {
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
		op.enabled = p.Attributes.enabledOr(true)
		op.tags = cloneTags(p.Tags)

		item := v.claimCert(w, name, pol)
		if item == nil {
			return
		}
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

// lockPending locks v.mu and returns the certificate name with its pending
// operation, v.mu still held; when there is none it unlocks, writes the
// error and returns nil.
func (v *Vault) lockPending(w http.ResponseWriter, name string) *certItem {
	v.mu.Lock()
	item := v.certs[strings.ToLower(name)]
	if item == nil || item.pending == nil {
		v.mu.Unlock()
		v.writeError(w, pendingNotFound(name))
		return nil
	}
	return item
}

func (v *Vault) getPending(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		item := v.lockPending(w, name)
		if item == nil {
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
		if !v.readBody(w, r, &p) {
			return
		}
		if p.CancellationRequested == nil {
			v.writeError(w, badParameter("The parameter 'cancellation_requested' is required."))
			return
		}
		item := v.lockPending(w, name)
		if item == nil {
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
		item := v.lockPending(w, name)
		if item == nil {
			return
		}
		body := v.pendingJSON(item, item.pending)
		item.pending = nil
		if len(item.versions) == 0 {
			delete(v.certs, strings.ToLower(name))
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
		if !v.readBody(w, r, &p) {
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
		enabled := p.Attributes.enabledOr(op.enabled)
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
