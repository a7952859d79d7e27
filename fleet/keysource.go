package fleet

import (
	"encoding/base64"
	"strings"

	"github.com/kvassert/kvassert/internal/inputerr"
)

// KeyFromBase64 makes a Key from a 32-byte secret in standard or URL-safe
// base64 (padded or not; surrounding whitespace is ignored), e.g. the output
// of `openssl rand -base64 32` kept in an environment variable or a mounted
// Kubernetes secret. Bad input is a *kvassert.InputError that never shows
// the secret.
func KeyFromBase64(id, b64 string) (*Key, error) {
	s := strings.TrimSpace(b64)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if secret, err := enc.DecodeString(s); err == nil {
			defer clear(secret)
			if len(secret) != keySize && validKeyID(id) {
				return nil, inputerr.New("fleet", "b64", "b64 of key %q decodes to %d bytes; AES-256 needs exactly %d", id, len(secret), keySize)
			}
			return NewKey(id, secret)
		}
	}
	return nil, inputerr.New("fleet", "b64", "b64 of key %q is not base64 (want 32 random bytes, e.g. `openssl rand -base64 32`)", truncate(id))
}
