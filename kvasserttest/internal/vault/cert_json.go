package vault

// The JSON shapes of certificate answers.

import (
	"crypto/sha1"
	"encoding/base64"
)

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
