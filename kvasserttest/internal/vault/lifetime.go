package vault

// Lifetime actions of certificate policies: AutoRenew creates a new version
// when the emulator's clock passes the trigger of the latest version;
// EmailContacts is kept and reported in the policy but does nothing.
//
// Renewal is lazy: every request to the vault (and CertificateDER /
// PublicKey) first runs the renewals that are due, so advancing the
// emulator's clock (Emulator.SetClock) by a year and then touching the vault
// renews each certificate once, as of the current time. A cached earliest
// trigger keeps the check to one clock read on other requests.
//
// Only self-issued certificates renew (issuer "Self"): a policy with issuer
// "Unknown" would need a CA to merge the request. The renewed version has a
// new key unless the policy's reuse_key is true, no tags, and the validity of
// the policy's validity_months from the time of renewal.

import (
	"math"
	"strings"
	"time"
)

// renewTrigger is when the AutoRenew actions of a policy fire for a version
// (the earliest of them), and false when the policy does not auto-renew.
func renewTrigger(p *certPolicy, cv *certVersion) (time.Time, bool) {
	if p == nil || p.Issuer == nil || !strings.EqualFold(p.Issuer.Name, "self") {
		return time.Time{}, false
	}
	nbf, exp := cv.cert.NotBefore, cv.cert.NotAfter
	var at time.Time
	found := false
	for _, a := range p.LifetimeActions {
		if a.Action == nil || a.Action.ActionType != "AutoRenew" || a.Trigger == nil {
			continue
		}
		var t time.Time
		switch {
		case a.Trigger.LifetimePercentage != nil:
			t = nbf.Add(time.Duration(float64(exp.Sub(nbf)) * float64(*a.Trigger.LifetimePercentage) / 100))
		case a.Trigger.DaysBeforeExpiry != nil:
			t = exp.AddDate(0, 0, -*a.Trigger.DaysBeforeExpiry)
		default:
			continue
		}
		if !found || t.Before(at) {
			at, found = t, true
		}
	}
	return at, found
}

// renewDue runs the AutoRenew actions that are due.
func (v *Vault) renewDue() {
	now := v.now()
	if now.UnixNano() < v.nextRenewal.Load() {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	next := int64(math.MaxInt64)
	for _, item := range v.certs {
		if len(item.versions) == 0 || (item.pending != nil && item.pending.status == "inProgress") {
			continue
		}
		latest := item.versions[len(item.versions)-1]
		at, ok := renewTrigger(item.policy, latest)
		if !ok {
			continue
		}
		if !now.Before(at) {
			if cv := v.renew(item, latest); cv != nil {
				at, ok = renewTrigger(item.policy, cv)
			}
		}
		if ok && at.UnixNano() < next {
			next = at.UnixNano()
		}
	}
	v.nextRenewal.Store(next)
}

// renew issues and publishes a new version of item under its policy; call
// with v.mu held. It returns nil when the policy cannot issue (the vault
// then retries on the next request).
func (v *Vault) renew(item *certItem, latest *certVersion) *certVersion {
	pol := clonePolicy(item.policy)
	pol.Attributes, pol.ID = nil, ""
	op, e := v.newPendingOp(pol, latest.key.priv)
	if e != nil || op.ready == nil {
		return nil
	}
	// As the service does, the renewal is the certificate's latest
	// operation (GET .../pending answers it, completed, with its CSR).
	op.enabled = true
	item.pending = op
	v.complete(item, op)
	return item.versions[len(item.versions)-1]
}

// lifetimeChanged makes the next request recompute the renewal triggers;
// call after anything that adds versions or changes a policy.
func (v *Vault) lifetimeChanged() { v.nextRenewal.Store(0) }
