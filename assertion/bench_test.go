package assertion

import (
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// nullSigner returns a fixed 256-byte signature so benchmarks measure the
// assertion encoding alone (the remote Key Vault sign is excluded).
type nullSigner struct{ pub crypto.PublicKey }

var fixedSig = make([]byte, 256)

func (n nullSigner) Public() crypto.PublicKey { return n.pub }
func (n nullSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return fixedSig, nil
}

// nullMethod is the same stand-in for golang-jwt.
type nullMethod struct{}

func (nullMethod) Verify(string, []byte, any) error { return nil }
func (nullMethod) Alg() string                      { return "PS256" }
func (nullMethod) Sign(signingString string, _ any) ([]byte, error) {
	sum := sha256.Sum256([]byte(signingString)) // the digest Key Vault would be sent
	_ = sum
	return fixedSig, nil
}

// BenchmarkBuildNoSign: kvassert's Builder, the digest computed, the signature
// stubbed.
func BenchmarkBuildNoSign(b *testing.B) {
	cert, key := validCert(b)
	bl, err := New(cert, nullSigner{pub: &key.PublicKey}, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := bl.Build(ctx, clientID, audience); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGolangJWTNoSign: the same header and claims built with golang-jwt
// v5 (what MSAL Go uses), with the same stub signature.
func BenchmarkGolangJWTNoSign(b *testing.B) {
	cert, _ := validCert(b)
	sum := sha256.Sum256(cert.Raw)
	x5t := base64.RawURLEncoding.EncodeToString(sum[:])
	b.ReportAllocs()
	for b.Loop() {
		now := time.Now()
		var jti [36]byte
		_ = newUUID(&jti)
		tok := jwt.NewWithClaims(nullMethod{}, jwt.MapClaims{
			"aud": audience, "iss": clientID, "sub": clientID, "jti": string(jti[:]),
			"nbf": now.Unix(), "iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(),
		})
		tok.Header["x5t#S256"] = x5t
		if _, err := tok.SignedString(nil); err != nil {
			b.Fatal(err)
		}
	}
}
