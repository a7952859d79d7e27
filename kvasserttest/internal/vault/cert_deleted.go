package vault

// Soft delete: deleting, reading, recovering and purging certificates.

import (
	"net/http"
	"strings"
)

type deletedCert struct {
	item    *certItem
	key     *keyItem
	secret  *secretItem
	deleted int64
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
		respond(v, w, func() (certBundle, *apiError) {
			d := v.deleted[strings.ToLower(name)]
			if d == nil {
				return certBundle{}, deletedNotFound(name)
			}
			return v.deletedBundle(d, d.item.versions[len(d.item.versions)-1]), nil
		})
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
		v.lifetimeChanged()
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
