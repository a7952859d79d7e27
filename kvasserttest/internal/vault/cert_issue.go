package vault

// Issuing self-signed certificates and building signing requests.

import (
	"crypto"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"net/http"
	"time"
)

// preparedCert is an issued certificate and its secret value, ready to be
// published as a new version.
type preparedCert struct {
	der         []byte
	cert        *x509.Certificate
	priv        crypto.Signer
	secretValue string
}

// issue creates a self-signed certificate for the policy.
func (v *Vault) issue(p *certPolicy, priv crypto.Signer) (*preparedCert, *apiError) {
	now := v.now().Truncate(time.Second)
	return v.issueWindow(p, priv, now.Add(-10*time.Minute), now.AddDate(0, *p.X509Props.ValidityMonths, 0))
}

// issueWindow creates a self-signed certificate for the policy, valid from
// nbf to exp.
func (v *Vault) issueWindow(p *certPolicy, priv crypto.Signer, nbf, exp time.Time) (*preparedCert, *apiError) {
	xp := p.X509Props
	serial := make([]byte, 16)
	rand.Read(serial) //nolint:errcheck // crypto/rand never fails
	serial[0] &= 0x7f
	tmpl := &x509.Certificate{
		SerialNumber: new(big.Int).SetBytes(serial),
		NotBefore:    nbf,
		NotAfter:     exp,
		KeyUsage:     keyUsage(xp.KeyUsage),
	}
	if xp.Subject != "" {
		raw, e := parseDN(xp.Subject)
		if e != nil {
			return nil, e
		}
		tmpl.RawSubject = raw
	}
	for _, eku := range xp.Ekus {
		oid, _ := parseOID(eku)
		tmpl.UnknownExtKeyUsage = append(tmpl.UnknownExtKeyUsage, oid)
	}
	if xp.Sans != nil {
		tmpl.DNSNames = xp.Sans.DNSNames
		tmpl.EmailAddresses = xp.Sans.Emails
	}
	if xp.BasicConstraints.CA {
		tmpl.BasicConstraintsValid, tmpl.IsCA = true, true
	} else {
		// CA:false, not critical, as the service encodes it.
		tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 19}, Value: []byte{0x30, 0x00}})
	}
	ski, err := subjectKeyID(priv.Public())
	if err != nil {
		return nil, errf(http.StatusInternalServerError, "InternalServerError", "Certificate issuance failed.")
	}
	tmpl.SubjectKeyId, tmpl.AuthorityKeyId = ski, ski
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, priv.Public(), priv)
	if err != nil {
		return nil, badParameter("The certificate cannot be issued from this policy: %v", err)
	}
	return prepare(der, priv, p)
}

// prepare parses an issued or imported certificate and encodes its secret.
func prepare(der []byte, priv crypto.Signer, p *certPolicy) (*preparedCert, *apiError) {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, badParameter("The certificate cannot be parsed: %v", err)
	}
	value, err := secretValue(p.SecretProps.ContentType, der, priv, *p.KeyProps.Exportable)
	if err != nil {
		return nil, errf(http.StatusInternalServerError, "InternalServerError", "The certificate's secret cannot be encoded.")
	}
	return &preparedCert{der: der, cert: cert, priv: priv, secretValue: value}, nil
}

func subjectKeyID(pub crypto.PublicKey) ([]byte, error) {
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	var info struct {
		Algorithm pkix.AlgorithmIdentifier
		Key       asn1.BitString
	}
	if _, err := asn1.Unmarshal(spki, &info); err != nil {
		return nil, err
	}
	sum := sha1.Sum(info.Key.Bytes)
	return sum[:], nil
}

// csrFor builds the signing request of a pending operation.
func csrFor(p *certPolicy, priv crypto.Signer) ([]byte, *apiError) {
	tmpl := &x509.CertificateRequest{}
	if p.X509Props.Subject != "" {
		raw, e := parseDN(p.X509Props.Subject)
		if e != nil {
			return nil, e
		}
		tmpl.RawSubject = raw
	}
	if s := p.X509Props.Sans; s != nil {
		tmpl.DNSNames, tmpl.EmailAddresses = s.DNSNames, s.Emails
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, priv)
	if err != nil {
		return nil, badParameter("The certificate signing request cannot be built: %v", err)
	}
	return der, nil
}
