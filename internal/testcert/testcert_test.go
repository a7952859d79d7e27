package testcert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"testing"
	"time"
)

func TestNewDefaultsAndVariants(t *testing.T) {
	c := New(t, nil)
	if c.Cert.Subject.CommonName != "kvassert test" || c.RSA(t).N.BitLen() != 2048 || time.Until(c.Cert.NotAfter) < 23*time.Hour {
		t.Fatalf("defaults: %v %v", c.Cert.Subject, c.Cert.NotAfter)
	}
	if err := c.Cert.CheckSignatureFrom(c.Cert); err == nil {
		t.Fatal("a non-CA self-signed certificate checks as its own issuer")
	}
	ca := New(t, &Options{IsCA: true, Curve: elliptic.P256(), CommonName: "ca"})
	if _, ok := ca.Key.(*ecdsa.PrivateKey); !ok {
		t.Fatalf("EC key is %T", ca.Key)
	}
	leaf := New(t, &Options{Bits: 1024, Parent: ca.Cert, ParentKey: ca.Key, DNSNames: []string{"x.test"}})
	if err := leaf.Cert.CheckSignatureFrom(ca.Cert); err != nil || leaf.Cert.PublicKey.(*rsa.PublicKey).N.BitLen() != 1024 {
		t.Fatalf("issued: %v", err)
	}
	if b, _ := pem.Decode(leaf.CertPEM()); b == nil || b.Type != "CERTIFICATE" {
		t.Fatal("CertPEM")
	}
	b, _ := pem.Decode(leaf.KeyPEM(t))
	if _, err := x509.ParsePKCS8PrivateKey(b.Bytes); err != nil {
		t.Fatal(err)
	}
	nb := time.Now().Add(-48 * time.Hour)
	cert, key := SelfSigned(t, nb, nb.Add(time.Hour))
	if !cert.NotBefore.Equal(nb.Truncate(time.Second)) || key == nil {
		t.Fatalf("SelfSigned window %v", cert.NotBefore)
	}
}
