package proxy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math/big"
	"net"
	"strings"
	"time"
)

// tlsCertificateLifetime is how long the self-signed certificate of a proxy
// started with AllowRemote is valid (Options.AllowRemote says "7 days"):
// restart the proxy (a new certificate, a new fingerprint, new secrets) at
// least this often.
const tlsCertificateLifetime = 7 * 24 * time.Hour

// selfSignedCertificate makes the TLS certificate of a proxy reachable from
// other machines: a fresh ECDSA P-256 key, valid from a few minutes ago for
// tlsCertificateLifetime, with the listen address as subject alternative
// name (every address of this machine when it listens on all of them).
// Clients cannot chain it to a root: they pin its SHA-256 fingerprint.
func selfSignedCertificate(addr string, now time.Time) (*tls.Certificate, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("proxy: listen address %q is not host:port: %w", addr, err)
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "kvassert proxy"},
		NotBefore:             now.Add(-5 * time.Minute),
		NotAfter:              now.Add(tlsCertificateLifetime),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	ip := net.ParseIP(host)
	switch {
	case strings.EqualFold(host, "localhost"):
		tmpl.DNSNames = []string{"localhost"}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	case ip != nil && !ip.IsUnspecified():
		tmpl.IPAddresses = []net.IP{ip}
	default: // every interface ("", 0.0.0.0, ::)
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
		if addrs, err := net.InterfaceAddrs(); err == nil {
			for _, a := range addrs {
				if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() {
					tmpl.IPAddresses = append(tmpl.IPAddresses, n.IP)
				}
			}
		}
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("proxy: TLS certificate: %w", err)
	}
	tmpl.SerialNumber = serial
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("proxy: TLS key: %w", err)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("proxy: TLS certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("proxy: TLS certificate: %w", err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// Fingerprint is the SHA-256 fingerprint of the proxy's TLS certificate,
// upper-case hex in colon-separated pairs as openssl prints it, or "" when
// the proxy serves plain HTTP on loopback (without AllowRemote).
func (s *Server) Fingerprint() string {
	if s.tlsCert == nil {
		return ""
	}
	sum := sha256.Sum256(s.tlsCert.Certificate[0])
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	var b strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[i : i+2])
	}
	return b.String()
}

// PublicKeyPin is the pin of the TLS certificate's public key as curl's
// --pinnedpubkey takes it ("sha256//" and the base64 SHA-256 of the
// SubjectPublicKeyInfo), or "" without AllowRemote.
func (s *Server) PublicKeyPin() string {
	if s.tlsCert == nil {
		return ""
	}
	sum := sha256.Sum256(s.tlsCert.Leaf.RawSubjectPublicKeyInfo)
	return "sha256//" + base64.StdEncoding.EncodeToString(sum[:])
}
