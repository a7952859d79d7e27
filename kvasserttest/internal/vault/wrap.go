package vault

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // RSA-OAEP is defined with SHA-1
	"crypto/sha256"
	"hash"
	"net/http"
)

// wrapAlgs are the key-wrapping algorithms of RSA keys, as the service
// offers them (RSA1_5 and RSA-OAEP are "not recommended" but served).
var wrapAlgs = map[string]func() hash.Hash{
	"RSA1_5":       nil,
	"RSA-OAEP":     sha1.New,
	"RSA-OAEP-256": sha256.New,
}

// wrapKeyParams is the body of wrapkey and unwrapkey.
type wrapKeyParams struct {
	Alg   string `json:"alg"`
	Value string `json:"value"`
}

// checkWrap validates alg against the key, with the service's wording.
func checkWrap(pub crypto.PublicKey, alg string) (*rsa.PublicKey, func() hash.Hash, *apiError) {
	h, ok := wrapAlgs[alg]
	if !ok {
		if alg == "" {
			return nil, nil, badParameter("Property 'alg' is required.")
		}
		return nil, nil, badParameter("Invalid algorithm: '%s'.", alg)
	}
	rsaPub, ok := pub.(*rsa.PublicKey)
	if !ok {
		return nil, nil, badParameter("Algorithm %s is not valid for a key of type EC.", alg)
	}
	return rsaPub, h, nil
}

// readWrap reads and decodes a wrapkey/unwrapkey body.
func readWrap(r *http.Request) (wrapKeyParams, []byte, *apiError) {
	var p wrapKeyParams
	if e := readJSON(r, &p); e != nil {
		return p, nil, e
	}
	value, err := decodeB64URL(p.Value)
	if err != nil || p.Value == "" {
		return p, nil, badParameter("Content of 'value' is not base64url.\r\nProperty 'value' is required.\r\n")
	}
	return p, value, nil
}

func (v *Vault) wrapKey(name, version string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, value, e := readWrap(r)
		if e != nil {
			v.writeError(w, e)
			return
		}
		priv, kid, e := v.usable(name, version, "wrapKey")
		if e != nil {
			v.writeError(w, e)
			return
		}
		pub, h, e := checkWrap(priv.Public(), p.Alg)
		if e != nil {
			v.writeError(w, e)
			return
		}
		var out []byte
		var err error
		if h == nil {
			out, err = rsa.EncryptPKCS1v15(rand.Reader, pub, value)
		} else {
			out, err = rsa.EncryptOAEP(h(), rand.Reader, pub, value, nil)
		}
		if err != nil {
			v.writeError(w, badParameter("The value is too long to be wrapped with %s by this key (%d bytes).", p.Alg, len(value)))
			return
		}
		v.writeJSON(w, http.StatusOK, map[string]string{"kid": kid, "value": b64url(out)})
	}
}

func (v *Vault) unwrapKey(name, version string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, value, e := readWrap(r)
		if e != nil {
			v.writeError(w, e)
			return
		}
		priv, kid, e := v.usable(name, version, "unwrapKey")
		if e != nil {
			v.writeError(w, e)
			return
		}
		if _, _, e := checkWrap(priv.Public(), p.Alg); e != nil {
			v.writeError(w, e)
			return
		}
		k, ok := priv.(*rsa.PrivateKey)
		if !ok {
			v.writeError(w, errf(http.StatusInternalServerError, "InternalServerError", "The unwrap operation failed."))
			return
		}
		var out []byte
		var err error
		if h := wrapAlgs[p.Alg]; h == nil {
			out, err = rsa.DecryptPKCS1v15(nil, k, value)
		} else {
			out, err = rsa.DecryptOAEP(h(), nil, k, value, nil)
		}
		if err != nil {
			msg := "Error occurred while decoding OAEP padding."
			if p.Alg == "RSA1_5" {
				msg = "Error occurred while decoding PKCS1 padding."
			}
			v.writeError(w, badParameter("%s", msg))
			return
		}
		v.writeJSON(w, http.StatusOK, map[string]string{"kid": kid, "value": b64url(out)})
	}
}
