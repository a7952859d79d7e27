package vault

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/asn1"
	"errors"
	"math/big"
)

var randReader = rand.Reader

func ellipticP256() elliptic.Curve { return elliptic.P256() }

func bigOne() *big.Int { return big.NewInt(1) }

// asn1Sig converts r||s halves to an ASN.1 ECDSA signature.
func asn1Sig(r, s []byte) ([]byte, error) {
	return asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(r), new(big.Int).SetBytes(s)})
}

// jwkPublic builds the public key of a JWK.
func jwkPublic(j jwkInput) (crypto.PublicKey, error) {
	switch j.Kty {
	case "RSA", "RSA-HSM":
		n, err1 := decodeB64URL(j.N)
		e, err2 := decodeB64URL(j.E)
		if err1 != nil || err2 != nil {
			return nil, errors.New("bad n or e")
		}
		return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}, nil
	case "EC", "EC-HSM":
		c, ok := curveByName(j.Crv)
		if !ok {
			return nil, errors.New("bad curve")
		}
		x, err1 := decodeB64URL(j.X)
		y, err2 := decodeB64URL(j.Y)
		if err1 != nil || err2 != nil {
			return nil, errors.New("bad x or y")
		}
		pt := append([]byte{4}, append(x, y...)...)
		return ecdsa.ParseUncompressedPublicKey(c, pt)
	}
	return nil, errors.New("unknown kty")
}
