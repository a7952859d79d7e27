package testcert_test

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/kvassert/kvassert/internal/testcert"
)

func TestSignJWT(t *testing.T) {
	key := testcert.New(t, nil).RSA(t)
	for _, alg := range []string{"RS256", "PS256", "none"} {
		parts := strings.Split(testcert.SignJWT(t, key, map[string]any{"alg": alg}, map[string]any{"sub": "s"}), ".")
		if len(parts) != 3 {
			t.Fatalf("%s: %d parts", alg, len(parts))
		}
		sig, err := base64.RawURLEncoding.DecodeString(parts[2])
		if err != nil {
			t.Fatal(err)
		}
		d := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
		switch alg {
		case "RS256":
			err = rsa.VerifyPKCS1v15(&key.PublicKey, crypto.SHA256, d[:], sig)
		case "PS256":
			err = rsa.VerifyPSS(&key.PublicKey, crypto.SHA256, d[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		default:
			if rsa.VerifyPKCS1v15(&key.PublicKey, crypto.SHA256, d[:], sig) == nil {
				t.Errorf("%s: a valid signature", alg)
			}
		}
		if err != nil {
			t.Errorf("%s: %v", alg, err)
		}
	}
}
