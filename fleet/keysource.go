package fleet

import (
	"encoding/base64"
	"fmt"
	"os"
	"strings"
)

// KeyFromBase64 makes a Key from a 32-byte secret in standard or URL-safe
// base64 (padded or not), e.g. the output of `openssl rand -base64 32`.
func KeyFromBase64(id, b64 string) (*Key, error) {
	s := strings.TrimSpace(b64)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if secret, err := enc.DecodeString(s); err == nil {
			defer clear(secret)
			return NewKey(id, secret)
		}
	}
	return nil, fmt.Errorf("fleet: key %q is not base64 (want 32 random bytes, e.g. `openssl rand -base64 32`)", id)
}

// KeyFromEnv reads a base64 key from the environment variable name.
func KeyFromEnv(id, name string) (*Key, error) {
	v, ok := os.LookupEnv(name)
	if !ok || strings.TrimSpace(v) == "" {
		return nil, fmt.Errorf("fleet: environment variable %s (key %q) is not set", name, id)
	}
	k, err := KeyFromBase64(id, v)
	if err != nil {
		return nil, fmt.Errorf("%w (from environment variable %s)", err, name)
	}
	return k, nil
}

// KeyFromFile reads a base64 key from a file (surrounding whitespace is
// ignored), e.g. a mounted Kubernetes secret.
func KeyFromFile(id, path string) (*Key, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("fleet: key %q: %w", id, err)
	}
	defer clear(data)
	k, err := KeyFromBase64(id, string(data))
	if err != nil {
		return nil, fmt.Errorf("%w (from file %s)", err, path)
	}
	return k, nil
}
