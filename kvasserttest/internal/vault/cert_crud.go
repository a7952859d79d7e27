package vault

// Reading, listing and updating certificates and their policies.

import (
	"net/http"
	"sort"
	"strings"
)

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
		all := []certListItem{}
		path := "/certificates/" + name + "/versions"
		if item := v.certs[strings.ToLower(name)]; item != nil {
			path = "/certificates/" + item.name + "/versions"
			for _, cv := range item.versions {
				all = append(all, certListItem{ID: v.certID(item.name, cv.version), X5t: x5t(cv.der), Attributes: v.certAttributes(cv), Tags: cloneTags(cv.tags)})
			}
		}
		v.mu.RUnlock()
		out, e := page(r, all, v.cfg.BaseURL, path, int(v.pageSize.Load()))
		if e != nil {
			v.writeError(w, e)
			return
		}
		v.writeJSON(w, http.StatusOK, out)
	}
}

func (v *Vault) updateCertificate(name, version string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var p certificateParams
		if !v.readBody(w, r, &p, tagCheck(&p.Tags)) {
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
		respond(v, w, func() (*certPolicy, *apiError) {
			if item := v.certs[strings.ToLower(name)]; item != nil {
				if pol := v.policyOf(item); pol != nil {
					return pol, nil
				}
			}
			return nil, certNotFound(name)
		})
	}
}

func (v *Vault) updatePolicy(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var upd certPolicy
		if !v.readBody(w, r, &upd) {
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
