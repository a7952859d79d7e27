package vault

import (
	"crypto"
	"crypto/cipher"
	"crypto/des"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
)

// PKCS #12 (RFC 7292) encoding of a certificate secret, the way Key Vault
// returns an application/x-pkcs12 secret: an empty password, the
// certificate in an encrypted bag, the private key (exportable policies
// only) in a shrouded key bag, both 3DES under the RFC 7292 key derivation,
// and a SHA-1 HMAC over the whole. golang.org/x/crypto/pkcs12 (decode only)
// reads it back.

var (
	oidData              = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidEncryptedData     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 6}
	oidCertBag           = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 3}
	oidShroudedKeyBag    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 2}
	oidX509Certificate   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 22, 1}
	oidPBEWithSHA3DESCBC = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 1, 3}
	oidSHA1              = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
	oidLocalKeyID        = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 21}
)

const pkcs12Iterations = 2048

type p12ContentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue `asn1:"tag:0,explicit,optional"`
}

type p12EncryptedData struct {
	Version              int
	EncryptedContentInfo p12EncryptedContentInfo
}

type p12EncryptedContentInfo struct {
	ContentType                asn1.ObjectIdentifier
	ContentEncryptionAlgorithm pkix.AlgorithmIdentifier
	EncryptedContent           []byte `asn1:"tag:0,optional"`
}

type p12SafeBag struct {
	ID         asn1.ObjectIdentifier
	Value      asn1.RawValue  `asn1:"tag:0,explicit"`
	Attributes []p12Attribute `asn1:"set,optional"`
}

type p12Attribute struct {
	ID    asn1.ObjectIdentifier
	Value asn1.RawValue `asn1:"set"`
}

type p12CertBag struct {
	ID   asn1.ObjectIdentifier
	Data []byte `asn1:"tag:0,explicit"`
}

type p12PBEParams struct {
	Salt       []byte
	Iterations int
}

type p12EncryptedPrivateKeyInfo struct {
	Algorithm     pkix.AlgorithmIdentifier
	EncryptedData []byte
}

type p12DigestInfo struct {
	Algorithm pkix.AlgorithmIdentifier
	Digest    []byte
}

type p12MacData struct {
	Mac        p12DigestInfo
	MacSalt    []byte
	Iterations int
}

type p12PFX struct {
	Version  int
	AuthSafe p12ContentInfo
	MacData  p12MacData
}

// encodePKCS12 returns a PFX with the certificate and, when key is not nil,
// its private key, protected by the empty password.
func encodePKCS12(certDER []byte, key crypto.Signer) ([]byte, error) {
	password := []byte{0, 0} // BMPString of "" with its terminator
	localKeyID := sha1.Sum(certDER)
	idAttr, err := localKeyIDAttribute(localKeyID[:])
	if err != nil {
		return nil, err
	}

	certBag, err := asn1.Marshal(p12CertBag{ID: oidX509Certificate, Data: certDER})
	if err != nil {
		return nil, err
	}
	certSafe, err := asn1.Marshal([]p12SafeBag{{ID: oidCertBag, Value: explicit0(certBag), Attributes: idAttr}})
	if err != nil {
		return nil, err
	}
	encCerts, err := encryptedContent(certSafe, password)
	if err != nil {
		return nil, err
	}

	var keyBags []p12SafeBag
	if key != nil {
		pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, err
		}
		alg, enc, err := pbeEncrypt(pkcs8, password)
		if err != nil {
			return nil, err
		}
		shrouded, err := asn1.Marshal(p12EncryptedPrivateKeyInfo{Algorithm: alg, EncryptedData: enc})
		if err != nil {
			return nil, err
		}
		keyBags = append(keyBags, p12SafeBag{ID: oidShroudedKeyBag, Value: explicit0(shrouded), Attributes: idAttr})
	}
	keySafe, err := asn1.Marshal(keyBags)
	if err != nil {
		return nil, err
	}
	keyData, err := dataContent(keySafe)
	if err != nil {
		return nil, err
	}

	authSafe, err := asn1.Marshal([]p12ContentInfo{encCerts, keyData})
	if err != nil {
		return nil, err
	}
	outer, err := dataContent(authSafe)
	if err != nil {
		return nil, err
	}
	macSalt := make([]byte, 8)
	if _, err := rand.Read(macSalt); err != nil {
		return nil, err
	}
	macKey := pkcs12KDF(macSalt, password, pkcs12Iterations, 3, 20)
	mac := hmac.New(sha1.New, macKey)
	mac.Write(authSafe)
	return asn1.Marshal(p12PFX{
		Version:  3,
		AuthSafe: outer,
		MacData: p12MacData{
			Mac:        p12DigestInfo{Algorithm: pkix.AlgorithmIdentifier{Algorithm: oidSHA1, Parameters: asn1.NullRawValue}, Digest: mac.Sum(nil)},
			MacSalt:    macSalt,
			Iterations: pkcs12Iterations,
		},
	})
}

func localKeyIDAttribute(id []byte) ([]p12Attribute, error) {
	v, err := asn1.Marshal(id)
	if err != nil {
		return nil, err
	}
	return []p12Attribute{{ID: oidLocalKeyID, Value: asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSet, IsCompound: true, Bytes: v}}}, nil
}

func explicit0(der []byte) asn1.RawValue {
	return asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: der}
}

func dataContent(content []byte) (p12ContentInfo, error) {
	octets, err := asn1.Marshal(content)
	if err != nil {
		return p12ContentInfo{}, err
	}
	return p12ContentInfo{ContentType: oidData, Content: explicit0(octets)}, nil
}

func encryptedContent(content, password []byte) (p12ContentInfo, error) {
	alg, enc, err := pbeEncrypt(content, password)
	if err != nil {
		return p12ContentInfo{}, err
	}
	der, err := asn1.Marshal(p12EncryptedData{Version: 0, EncryptedContentInfo: p12EncryptedContentInfo{
		ContentType: oidData, ContentEncryptionAlgorithm: alg, EncryptedContent: enc,
	}})
	if err != nil {
		return p12ContentInfo{}, err
	}
	return p12ContentInfo{ContentType: oidEncryptedData, Content: explicit0(der)}, nil
}

// pbeEncrypt encrypts with pbeWithSHAAnd3-KeyTripleDES-CBC.
func pbeEncrypt(plain, password []byte) (pkix.AlgorithmIdentifier, []byte, error) {
	salt := make([]byte, 8)
	if _, err := rand.Read(salt); err != nil {
		return pkix.AlgorithmIdentifier{}, nil, err
	}
	params, err := asn1.Marshal(p12PBEParams{Salt: salt, Iterations: pkcs12Iterations})
	if err != nil {
		return pkix.AlgorithmIdentifier{}, nil, err
	}
	key := pkcs12KDF(salt, password, pkcs12Iterations, 1, 24)
	iv := pkcs12KDF(salt, password, pkcs12Iterations, 2, 8)
	block, err := des.NewTripleDESCipher(key)
	if err != nil {
		return pkix.AlgorithmIdentifier{}, nil, err
	}
	pad := 8 - len(plain)%8
	buf := make([]byte, len(plain)+pad)
	copy(buf, plain)
	for i := len(plain); i < len(buf); i++ {
		buf[i] = byte(pad)
	}
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(buf, buf)
	return pkix.AlgorithmIdentifier{Algorithm: oidPBEWithSHA3DESCBC, Parameters: asn1.RawValue{FullBytes: params}}, buf, nil
}

// pkcs12KDF is the key derivation of RFC 7292 appendix B.2 with SHA-1
// (u = 20, v = 64): id 1 derives keys, 2 IVs, 3 MAC keys.
func pkcs12KDF(salt, password []byte, iterations int, id byte, size int) []byte {
	const u, v = 20, 64
	fill := func(p []byte) []byte {
		if len(p) == 0 {
			return nil
		}
		n := (len(p) + v - 1) / v * v
		out := make([]byte, n)
		for i := range out {
			out[i] = p[i%len(p)]
		}
		return out
	}
	d := make([]byte, v)
	for i := range d {
		d[i] = id
	}
	in := append(fill(salt), fill(password)...)
	var out []byte
	one := big.NewInt(1)
	for len(out) < size {
		h := sha1.New()
		h.Write(d)
		h.Write(in)
		a := h.Sum(nil)
		for r := 1; r < iterations; r++ {
			s := sha1.Sum(a)
			a = s[:]
		}
		out = append(out, a...)
		if len(out) >= size {
			break
		}
		b := make([]byte, v)
		for i := range b {
			b[i] = a[i%u]
		}
		bn := new(big.Int).SetBytes(b)
		bn.Add(bn, one)
		for j := 0; j < len(in); j += v {
			ij := new(big.Int).SetBytes(in[j : j+v])
			ij.Add(ij, bn)
			raw := ij.Bytes()
			if len(raw) > v {
				raw = raw[len(raw)-v:]
			}
			blk := in[j : j+v]
			clear(blk)
			copy(blk[v-len(raw):], raw)
		}
	}
	return out[:size]
}
