package vault

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"net/http"
	"strings"

	"golang.org/x/crypto/pkcs12"
)

// importCertificateParams is the body of POST /certificates/{name}/import.
type importCertificateParams struct {
	Value    string `json:"value"`
	Password string `json:"pwd"`
	certificateParams
}

func (v *Vault) importCertificate(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var p importCertificateParams
		if !v.readBody(w, r, &p, tagCheck(&p.Tags)) {
			return
		}
		cert, priv, isPEM, e := parseImport(p.Value, p.Password)
		if e != nil {
			v.writeError(w, e)
			return
		}
		pol, e := importedPolicy(cert, priv, isPEM, p.Policy)
		if e != nil {
			v.writeError(w, e)
			return
		}
		pc, e := prepare(cert.Raw, priv, pol)
		if e != nil {
			v.writeError(w, e)
			return
		}
		enabled := p.Attributes.enabledOr(true)
		item := v.claimCert(w, name, pol)
		if item == nil {
			return
		}
		cv := v.publish(item, pc, pol, enabled, p.Tags)
		cv.imported = true
		b := v.certBundleOf(item, cv)
		v.mu.Unlock()
		v.writeJSON(w, http.StatusOK, b)
	}
}

// parseImport reads a PEM (certificate and private key) or a base64
// PKCS #12 and returns the certificate matching the private key.
func parseImport(value, password string) (*x509.Certificate, crypto.Signer, bool, *apiError) {
	value = strings.TrimSpace(value)
	if value == "" {
		return nil, nil, false, badParameter("The parameter 'value' is required.")
	}
	var blocks []*pem.Block
	isPEM := strings.HasPrefix(value, "-----BEGIN")
	if isPEM {
		rest := []byte(value)
		for {
			var b *pem.Block
			b, rest = pem.Decode(rest)
			if b == nil {
				break
			}
			blocks = append(blocks, b)
		}
	} else {
		data, err := base64.StdEncoding.DecodeString(value)
		if err != nil {
			return nil, nil, false, badParameter("The specified certificate content is neither PEM nor base64 PKCS#12.")
		}
		blocks, err = pkcs12.ToPEM(data, password)
		if errors.Is(err, pkcs12.ErrIncorrectPassword) {
			return nil, nil, false, badParameter("The specified PFX password is incorrect.")
		}
		if err != nil {
			return nil, nil, false, badParameter("The specified PKCS#12 content cannot be read: %v", err)
		}
	}
	var certs []*x509.Certificate
	var priv crypto.Signer
	for _, b := range blocks {
		switch b.Type {
		case "CERTIFICATE":
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, nil, false, badParameter("A certificate of the specified content cannot be parsed.")
			}
			certs = append(certs, c)
		case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY":
			k, err := parsePrivateKey(b.Bytes)
			if err != nil {
				return nil, nil, false, badParameter("The private key of the specified content cannot be parsed.")
			}
			priv = k
		case "ENCRYPTED PRIVATE KEY":
			return nil, nil, false, badParameter("Encrypted PEM private keys are not supported; import a PKCS#12 with its password.")
		}
	}
	if len(certs) == 0 {
		return nil, nil, false, badParameter("The specified content has no X.509 certificate.")
	}
	if priv == nil {
		return nil, nil, false, badParameter("Private key is not specified in the specified X.509 certificate content. Please specify private key in the X.509 certificate content.")
	}
	for _, c := range certs {
		if publicKeysEqual(c.PublicKey, priv.Public()) {
			return c, priv, isPEM, nil
		}
	}
	return nil, nil, false, badParameter("The private key does not match the public key of the certificate.")
}

func parsePrivateKey(der []byte) (crypto.Signer, error) {
	var key any
	var err error
	if key, err = x509.ParsePKCS8PrivateKey(der); err != nil {
		if key, err = x509.ParsePKCS1PrivateKey(der); err != nil {
			if key, err = x509.ParseECPrivateKey(der); err != nil {
				return nil, err
			}
		}
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		return k, nil
	case *ecdsa.PrivateKey:
		return k, nil
	}
	return nil, errors.New("unsupported key type")
}

// importedPolicy derives the policy of an imported certificate, as the
// service does, and applies the fields of the request's policy.
func importedPolicy(cert *x509.Certificate, priv crypto.Signer, isPEM bool, req *certPolicy) (*certPolicy, *apiError) {
	kp := &keyProps{Exportable: ptr(true), ReuseKey: ptr(false)}
	switch pub := priv.Public().(type) {
	case *rsa.PublicKey:
		kp.Kty, kp.KeySize = "RSA", ptr(pub.N.BitLen())
	case *ecdsa.PublicKey:
		kp.Kty, kp.Curve, kp.KeySize = "EC", curveName(pub.Curve), ptr(pub.Curve.Params().BitSize)
	}
	contentType := contentPKCS12
	if isPEM {
		contentType = contentPEM
	}
	ekus := []string{}
	for _, u := range cert.ExtKeyUsage {
		if oid, ok := extKeyUsageOIDs[u]; ok {
			ekus = append(ekus, oid)
		}
	}
	for _, oid := range cert.UnknownExtKeyUsage {
		ekus = append(ekus, oid.String())
	}
	pol := &certPolicy{
		KeyProps:    kp,
		SecretProps: &secretProps{ContentType: contentType},
		X509Props: &x509Props{
			Subject:          formatDN(cert.RawSubject),
			Ekus:             ekus,
			KeyUsage:         keyUsageNames(cert.KeyUsage),
			ValidityMonths:   ptr(min(max(validityMonths(cert), 1), 1200)),
			BasicConstraints: &basicConstraints{CA: cert.IsCA},
		},
		Issuer: &issuerParams{Name: "Unknown"},
	}
	if len(cert.DNSNames)+len(cert.EmailAddresses) > 0 {
		pol.X509Props.Sans = &sans{DNSNames: cert.DNSNames, Emails: cert.EmailAddresses}
	}
	if req != nil {
		actual := *kp
		mergePolicy(pol, req)
		if pol.KeyProps.Kty != actual.Kty && pol.KeyProps.Kty != actual.Kty+"-HSM" {
			return nil, badParameter("The key type %s of the policy does not match the imported %s key.", pol.KeyProps.Kty, actual.Kty)
		}
		pol.KeyProps.KeySize, pol.KeyProps.Curve = actual.KeySize, actual.Curve
	}
	if e := normalizePolicy(pol); e != nil {
		return nil, e
	}
	return pol, nil
}

// validityMonths is the validity in whole months, rounded up.
func validityMonths(c *x509.Certificate) int {
	a, b := c.NotBefore.UTC(), c.NotAfter.UTC()
	m := (b.Year()-a.Year())*12 + int(b.Month()) - int(a.Month())
	if b.AddDate(0, -m, 0).After(a) {
		m++
	}
	return m
}

var extKeyUsageOIDs = map[x509.ExtKeyUsage]string{
	x509.ExtKeyUsageAny:             "2.5.29.37.0",
	x509.ExtKeyUsageServerAuth:      "1.3.6.1.5.5.7.3.1",
	x509.ExtKeyUsageClientAuth:      "1.3.6.1.5.5.7.3.2",
	x509.ExtKeyUsageCodeSigning:     "1.3.6.1.5.5.7.3.3",
	x509.ExtKeyUsageEmailProtection: "1.3.6.1.5.5.7.3.4",
	x509.ExtKeyUsageTimeStamping:    "1.3.6.1.5.5.7.3.8",
	x509.ExtKeyUsageOCSPSigning:     "1.3.6.1.5.5.7.3.9",
}
