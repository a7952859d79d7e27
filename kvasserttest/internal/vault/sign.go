package vault

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	_ "crypto/sha256" // SHA-256 for RS256, PS256, ES256
	_ "crypto/sha512" // SHA-384 and SHA-512
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
)

// sigAlg describes a JWS signature algorithm of the sign/verify operations.
type sigAlg struct {
	family string // "RS", "PS" or "ES"
	hash   crypto.Hash
	curve  string // ES only: the curve the algorithm needs
}

var sigAlgs = map[string]sigAlg{
	"RS256": {"RS", crypto.SHA256, ""}, "RS384": {"RS", crypto.SHA384, ""}, "RS512": {"RS", crypto.SHA512, ""},
	"PS256": {"PS", crypto.SHA256, ""}, "PS384": {"PS", crypto.SHA384, ""}, "PS512": {"PS", crypto.SHA512, ""},
	"ES256": {"ES", crypto.SHA256, "P-256"}, "ES384": {"ES", crypto.SHA384, "P-384"}, "ES512": {"ES", crypto.SHA512, "P-521"},
}

// checkSignature validates alg against the key and the digest length, with
// the service's BadParameter messages.
func checkSignature(pub crypto.PublicKey, alg string, digest []byte) (sigAlg, *apiError) {
	a, ok := sigAlgs[alg]
	if !ok {
		if alg == "ES256K" {
			return a, badParameter("Algorithm ES256K (curve P-256K) is not supported by the kvassert emulator.")
		}
		return a, badParameter("Invalid algorithm: '%s'.", alg)
	}
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if a.family == "ES" {
			return a, badParameter("Algorithm %s is not valid for a key of type RSA.", alg)
		}
	case *ecdsa.PublicKey:
		if a.family != "ES" {
			return a, badParameter("Algorithm %s is not valid for a key of type EC.", alg)
		}
		if crv := curveName(k.Curve); crv != a.curve {
			return a, badParameter("Algorithm %s is not valid for a key with curve %s.", alg, crv)
		}
	default:
		return a, badParameter("Key type does not support signing.")
	}
	if len(digest) != a.hash.Size() {
		return a, badParameter("Invalid length of 'value': %d bytes. %s requires %d bytes, encoded with base64url.", len(digest), alg, a.hash.Size())
	}
	return a, nil
}

// SignDigest signs a digest as the sign operation does: RS* with PKCS #1
// v1.5, PS* with PSS and a salt as long as the hash, ES* as the fixed-width
// concatenation r||s. The digest must have the algorithm's hash length.
func SignDigest(priv crypto.Signer, alg string, digest []byte) ([]byte, error) {
	a, e := checkSignature(priv.Public(), alg, digest)
	if e != nil {
		return nil, errors.New(e.message)
	}
	return signDigest(priv, a, digest)
}

func signDigest(priv crypto.Signer, a sigAlg, digest []byte) ([]byte, error) {
	switch k := priv.(type) {
	case *rsa.PrivateKey:
		if a.family == "PS" {
			return rsa.SignPSS(rand.Reader, k, a.hash, digest, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		}
		return rsa.SignPKCS1v15(rand.Reader, k, a.hash, digest)
	case *ecdsa.PrivateKey:
		der, err := k.Sign(rand.Reader, digest, a.hash)
		if err != nil {
			return nil, err
		}
		var sig struct{ R, S *big.Int }
		if _, err := asn1.Unmarshal(der, &sig); err != nil {
			return nil, err
		}
		size := (k.Curve.Params().BitSize + 7) / 8
		out := make([]byte, 2*size)
		sig.R.FillBytes(out[:size])
		sig.S.FillBytes(out[size:])
		return out, nil
	}
	return nil, fmt.Errorf("unsupported key type %T", priv)
}

// VerifyDigest verifies a signature over a digest exactly as the emulator's
// verify operation does (see SignDigest for the formats). It returns nil for
// a valid signature.
func VerifyDigest(pub crypto.PublicKey, alg string, digest, sig []byte) error {
	a, e := checkSignature(pub, alg, digest)
	if e != nil {
		return errors.New(e.message)
	}
	return verifyDigest(pub, a, digest, sig)
}

var errBadSignature = errors.New("signature is invalid")

func verifyDigest(pub crypto.PublicKey, a sigAlg, digest, sig []byte) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if a.family == "PS" {
			return rsa.VerifyPSS(k, a.hash, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		}
		return rsa.VerifyPKCS1v15(k, a.hash, digest, sig)
	case *ecdsa.PublicKey:
		size := (k.Curve.Params().BitSize + 7) / 8
		if len(sig) != 2*size {
			return errBadSignature
		}
		r := new(big.Int).SetBytes(sig[:size])
		s := new(big.Int).SetBytes(sig[size:])
		if !ecdsa.Verify(k, digest, r, s) {
			return errBadSignature
		}
		return nil
	}
	return fmt.Errorf("unsupported key type %T", pub)
}

func curveName(c elliptic.Curve) string {
	switch c {
	case elliptic.P256():
		return "P-256"
	case elliptic.P384():
		return "P-384"
	case elliptic.P521():
		return "P-521"
	}
	return c.Params().Name
}

func curveByName(name string) (elliptic.Curve, bool) {
	switch name {
	case "P-256":
		return elliptic.P256(), true
	case "P-384":
		return elliptic.P384(), true
	case "P-521":
		return elliptic.P521(), true
	}
	return nil, false
}
