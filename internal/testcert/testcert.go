// Package testcert makes the self-signed (or CA-issued) certificates and keys
// the tests need. It imports only the standard library, so that every
// package's tests can use it, including the internal tests of packages that
// internal/testfixture imports (the root, keyvault, the emulators).
package testcert

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Options says what certificate to make; nil or zero fields are defaults.
type Options struct {
	// CommonName is the subject's CN; "" means "kvassert test".
	CommonName string
	// Bits is the RSA key size; 0 means 2048. Ignored when Curve is set.
	Bits int
	// Curve, when set, makes an ECDSA key on it instead of an RSA key.
	Curve elliptic.Curve
	// Key, when set, is used instead of a new key.
	Key crypto.Signer
	// NotBefore and NotAfter bound the validity; zero means an hour ago and
	// a day from now.
	NotBefore, NotAfter time.Time
	// Serial is the serial number; 0 means 1.
	Serial int64
	// KeyUsage is the key usage; 0 means digital signature.
	KeyUsage x509.KeyUsage
	// IsCA makes a CA certificate (basic constraints, cert signing).
	IsCA bool
	// DNSNames and IPAddresses are the subject alternative names.
	DNSNames    []string
	IPAddresses []net.IP
	// ExtKeyUsage are the extended key usages (say, server authentication).
	ExtKeyUsage []x509.ExtKeyUsage
	// Subject, when set, is the whole subject (CommonName is then unused).
	Subject *pkix.Name
	// PublicKey, when set with Parent, is the certified public key (say,
	// a CSR's); no key is made and the Cert's Key is nil.
	PublicKey crypto.PublicKey
	// Parent and ParentKey, when set, issue the certificate from that CA
	// instead of self-signing it.
	Parent    *x509.Certificate
	ParentKey crypto.Signer
}

// Cert is a certificate and its private key.
type Cert struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// DER is the certificate's DER encoding.
func (c *Cert) DER() []byte { return c.Cert.Raw }

// RSA is the key as an RSA key (it fails the test when the key is not RSA).
func (c *Cert) RSA(tb testing.TB) *rsa.PrivateKey {
	tb.Helper()
	k, ok := c.Key.(*rsa.PrivateKey)
	if !ok {
		tb.Fatalf("testcert: key is %T, not RSA", c.Key)
	}
	return k
}

// CertPEM is the certificate in a CERTIFICATE PEM block.
func (c *Cert) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Cert.Raw})
}

// KeyPEM is the key in a PKCS #8 PRIVATE KEY PEM block.
func (c *Cert) KeyPEM(tb testing.TB) []byte {
	tb.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(c.Key)
	if err != nil {
		tb.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// New makes a certificate as o says (nil: a self-signed RSA-2048 certificate
// valid from an hour ago to a day from now).
func New(tb testing.TB, o *Options) *Cert {
	tb.Helper()
	if o == nil {
		o = &Options{}
	}
	key := o.Key
	if key == nil && (o.PublicKey == nil || o.Parent == nil) {
		key = NewKey(tb, o.Bits, o.Curve)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(max(o.Serial, 1)),
		Subject:               pkix.Name{CommonName: o.CommonName},
		NotBefore:             o.NotBefore,
		NotAfter:              o.NotAfter,
		KeyUsage:              o.KeyUsage,
		DNSNames:              o.DNSNames,
		IPAddresses:           o.IPAddresses,
		ExtKeyUsage:           o.ExtKeyUsage,
		IsCA:                  o.IsCA,
		BasicConstraintsValid: o.IsCA,
	}
	if o.Subject != nil {
		tmpl.Subject = *o.Subject
	} else if tmpl.Subject.CommonName == "" {
		tmpl.Subject.CommonName = "kvassert test"
	}
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore = now.Add(-time.Hour)
	}
	if tmpl.NotAfter.IsZero() {
		tmpl.NotAfter = now.Add(24 * time.Hour)
	}
	if tmpl.KeyUsage == 0 {
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		if o.IsCA {
			tmpl.KeyUsage |= x509.KeyUsageCertSign
		}
	}
	parent, signer := tmpl, key
	if o.Parent != nil {
		parent, signer = o.Parent, o.ParentKey
	}
	var pub crypto.PublicKey
	if key != nil {
		pub = key.Public()
	} else {
		pub = o.PublicKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return &Cert{Cert: cert, Key: key}
}

// SelfSigned is the common case: a self-signed RSA-2048 certificate valid
// from notBefore to notAfter (zero: the defaults of New).
func SelfSigned(tb testing.TB, notBefore, notAfter time.Time) (*x509.Certificate, *rsa.PrivateKey) {
	tb.Helper()
	c := New(tb, &Options{NotBefore: notBefore, NotAfter: notAfter})
	return c.Cert, c.RSA(tb)
}

// NewKey makes a key: ECDSA on curve when curve is not nil, else RSA of bits
// (0: 2048).
func NewKey(tb testing.TB, bits int, curve elliptic.Curve) crypto.Signer {
	tb.Helper()
	if curve != nil {
		k, err := ecdsa.GenerateKey(curve, rand.Reader)
		if err != nil {
			tb.Fatal(err)
		}
		return k
	}
	if bits == 0 {
		bits = 2048
	}
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// RSAKey is NewKey for an RSA key of bits (0: 2048).
func RSAKey(tb testing.TB, bits int) *rsa.PrivateKey {
	tb.Helper()
	return NewKey(tb, bits, nil).(*rsa.PrivateKey)
}

// WriteFiles writes the certificate and the key as two PEM files (mode 0600)
// in dir and returns their paths.
func (c *Cert) WriteFiles(tb testing.TB, dir string) (certFile, keyFile string) {
	tb.Helper()
	certFile, keyFile = filepath.Join(dir, "app.crt"), filepath.Join(dir, "app.key")
	if err := os.WriteFile(certFile, c.CertPEM(), 0o600); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(keyFile, c.KeyPEM(tb), 0o600); err != nil {
		tb.Fatal(err)
	}
	return certFile, keyFile
}

// SignJWT builds a compact JWS of header and claims signed by key:
// header["alg"] picks RS256 (PKCS #1 v1.5) or PS256 (PSS, salt the size of
// the hash); any other alg gets a signature that is not one, for tests of
// refused algorithms.
func SignJWT(tb testing.TB, key *rsa.PrivateKey, header, claims map[string]any) string {
	tb.Helper()
	hb, err := json.Marshal(header)
	if err != nil {
		tb.Fatal(err)
	}
	cb, err := json.Marshal(claims)
	if err != nil {
		tb.Fatal(err)
	}
	in := base64.RawURLEncoding.EncodeToString(hb) + "." + base64.RawURLEncoding.EncodeToString(cb)
	digest := sha256.Sum256([]byte(in))
	var sig []byte
	switch header["alg"] {
	case "PS256":
		sig, err = rsa.SignPSS(rand.Reader, key, crypto.SHA256, digest[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	case "RS256":
		sig, err = rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
	default:
		sig = []byte("not-a-real-signature")
	}
	if err != nil {
		tb.Fatal(err)
	}
	return in + "." + base64.RawURLEncoding.EncodeToString(sig)
}
