package vault

import (
	"crypto"
	"net/http"
	"slices"
)

// keyOperationParams is the body of sign and verify.
type keyOperationParams struct {
	Alg    string `json:"alg"`
	Value  string `json:"value"`
	Digest string `json:"digest"` // verify only
}

// signatureKey is usable for sign or verify, with the algorithm checked
// against the key and the digest; it writes the error and returns false.
func (v *Vault) signatureKey(w http.ResponseWriter, name, version, op, alg string, digest []byte) (crypto.Signer, string, sigAlg, bool) {
	priv, kid, e := v.usable(name, version, op)
	var a sigAlg
	if e == nil {
		a, e = checkSignature(priv.Public(), alg, digest)
	}
	if e != nil {
		v.writeError(w, e)
		return nil, "", sigAlg{}, false
	}
	return priv, kid, a, true
}

// usable snapshots what a crypto operation needs from a key version, with
// v.mu held, so that the math runs without the lock.
func (v *Vault) usable(name, version, op string) (crypto.Signer, string, *apiError) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	kv, e := v.findKey(name, version)
	if e != nil {
		return nil, "", e
	}
	now := v.now().Unix()
	switch {
	case !kv.attrs.enabled:
		return nil, "", errf(http.StatusForbidden, "Forbidden", "Operation %s is not allowed on a disabled key.", op)
	case kv.attrs.notBefore != nil && now < *kv.attrs.notBefore:
		return nil, "", errf(http.StatusForbidden, "Forbidden", "Operation %s is not allowed on a key that is not yet valid (nbf).", op)
	case kv.attrs.expir != nil && now >= *kv.attrs.expir:
		return nil, "", errf(http.StatusForbidden, "Forbidden", "Operation %s is not allowed on an expired key.", op)
	case !slices.Contains(kv.keyOps, op):
		return nil, "", errf(http.StatusForbidden, "Forbidden", "Operation %s is not allowed by the key's key_ops.", op)
	}
	return kv.priv, v.kid(kv), nil
}

func (v *Vault) sign(name, version string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !v.limiter.Allow() {
			v.writeError(w, errf(http.StatusTooManyRequests, "Throttled", throttledMessage))
			return
		}
		var p keyOperationParams
		if !v.readBody(w, r, &p) {
			return
		}
		digest, err := decodeB64URL(p.Value)
		if err != nil {
			v.writeError(w, badParameter("The parameter 'value' is not base64url."))
			return
		}
		priv, kid, a, ok := v.signatureKey(w, name, version, "sign", p.Alg, digest)
		if !ok {
			return
		}
		sig, err := signDigest(priv, a, digest)
		if err != nil {
			v.writeError(w, errf(http.StatusInternalServerError, "InternalServerError", "The signing operation failed."))
			return
		}
		out := map[string]string{"kid": kid, "value": b64url(sig)}
		if v.hsm {
			out["alg"] = p.Alg
		}
		v.writeJSON(w, http.StatusOK, out)
	}
}

func (v *Vault) verify(name, version string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var p keyOperationParams
		if !v.readBody(w, r, &p) {
			return
		}
		digest, err1 := decodeB64URL(p.Digest)
		sig, err2 := decodeB64URL(p.Value)
		if err1 != nil || err2 != nil {
			v.writeError(w, badParameter("The parameters 'digest' and 'value' must be base64url."))
			return
		}
		priv, kid, a, ok := v.signatureKey(w, name, version, "verify", p.Alg, digest)
		if !ok {
			return
		}
		out := map[string]any{"value": verifyDigest(priv.Public(), a, digest, sig) == nil}
		if v.hsm {
			out["alg"], out["kid"] = p.Alg, kid
		}
		v.writeJSON(w, http.StatusOK, out)
	}
}
