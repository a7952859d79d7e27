package assertion

import (
	"encoding/base64"
	"encoding/hex"
	"strings"

	"github.com/kvassert/kvassert/internal/textutil"
)

// ParseThumbprint accepts a certificate thumbprint as the Azure portal shows
// it (hex, SHA-1: 40 digits, or SHA-256: 64 digits; colons and spaces are
// ignored) or as it appears in a JWT header (base64url, 27 or 43 characters).
// Its length tells the hash, and with it the assertion's form in
// NewWithThumbprint: SHA-1 makes RS256 with x5t, SHA-256 PS256 with x5t#S256.
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
