package jwtassert

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"strings"

	"github.com/kvassert/kvassert/internal/textutil"
)

// ParseThumbprint accepts a certificate thumbprint as the Azure portal shows
// it (hex, SHA-1: 40 digits, or SHA-256: 64 digits; colons and spaces are
// ignored) or as it appears in a JWT header (base64url, 27 or 43 characters).
// Its length tells the hash, and with it the assertion's form of a
// thumbprint-only assertion.Builder (assertion.Options.Thumbprint): SHA-1 makes RS256 with x5t, SHA-256 PS256 with x5t#S256.
func ParseThumbprint(s string) ([]byte, error) {
	clean := strings.NewReplacer(":", "", " ", "").Replace(strings.TrimSpace(s))
	switch len(clean) {
	case 40, 64:
		if b, err := hex.DecodeString(clean); err == nil {
			return b, nil
		}
	case 27, 43:
		if b, err := base64.RawURLEncoding.Strict().DecodeString(clean); err == nil {
			return b, nil
		}
	}
	return nil, inputErr("thumbprint", "thumbprint %q is neither hex (40 or 64 digits) nor base64url (27 or 43 characters)", textutil.Truncate(s, 80))
}

// Thumbprints of a certificate as they appear in JWT headers: x5t (base64url
// SHA-1, with RS256) and x5t#S256 (base64url SHA-256, with PS256).
func Thumbprints(cert *x509.Certificate) (x5t, x5tS256 string) {
	s1 := sha1.Sum(cert.Raw)
	s256 := sha256.Sum256(cert.Raw)
	return base64.RawURLEncoding.EncodeToString(s1[:]), base64.RawURLEncoding.EncodeToString(s256[:])
}

// ThumbprintHex is the certificate's SHA-1 thumbprint in upper-case hex, as
// the Azure portal and Graph's customKeyIdentifier show it.
func ThumbprintHex(cert *x509.Certificate) string {
	s := sha1.Sum(cert.Raw)
	return strings.ToUpper(hex.EncodeToString(s[:]))
}

// ThumbprintSHA256Hex is the certificate's SHA-256 thumbprint in upper-case
// hex.
func ThumbprintSHA256Hex(cert *x509.Certificate) string {
	s := sha256.Sum256(cert.Raw)
	return strings.ToUpper(hex.EncodeToString(s[:]))
}
