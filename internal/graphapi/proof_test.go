package graphapi

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/kvassert/kvassert/internal/testcert"
)

func testCert(t *testing.T, notBefore, notAfter time.Time) (*x509.Certificate, *rsa.PrivateKey) {
	t.Helper()
	c := testcert.New(t, &testcert.Options{CommonName: "app", NotBefore: notBefore, NotAfter: notAfter})
	return c.Cert, c.RSA(t)
}

const objectID = "3F2504E0-4F89-11D3-9A0C-0305E82C3301"

// TestProofFieldByField checks the proof against Microsoft Graph's
// documentation ("Generate proof of possession tokens for rolling keys").
func TestProofFieldByField(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	cert, key := testCert(t, now.Add(-time.Hour), now.Add(time.Hour))
	jwt, err := Proof(context.Background(), cert, key, objectID, now)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(jwt, "=") {
		t.Fatal("proof has base64 padding; Graph answers Authentication_MissingOrMalformed")
	}
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("proof has %d parts", len(parts))
	}
	var header map[string]any
	decode(t, parts[0], &header)
	sha := sha1.Sum(cert.Raw)
	wantHeader := map[string]any{"alg": "RS256", "typ": "JWT", "x5t": base64.RawURLEncoding.EncodeToString(sha[:])}
	if len(header) != len(wantHeader) {
		t.Fatalf("header %v, want exactly %v", header, wantHeader)
	}
	for k, v := range wantHeader {
		if header[k] != v {
			t.Errorf("header %s = %v, want %v", k, header[k], v)
		}
	}
	var claims map[string]any
	decode(t, parts[1], &claims)
	want := map[string]any{
		"aud": "00000002-0000-0000-c000-000000000000",
		"iss": strings.ToLower(objectID),
		"nbf": float64(now.Unix()),
		"exp": float64(now.Add(10 * time.Minute).Unix()),
	}
	if len(claims) != len(want) {
		t.Fatalf("claims %v, want exactly %v", claims, want)
	}
	for k, v := range want {
		if claims[k] != v {
			t.Errorf("claim %s = %v, want %v", k, claims[k], v)
		}
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(&key.PublicKey, crypto.SHA256, digest[:], sig); err != nil {
		t.Fatalf("the proof's RS256 signature does not verify with the certificate's key: %v", err)
	}
}

func TestProofRefusesBadInput(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	cert, key := testCert(t, now.Add(-time.Hour), now.Add(time.Hour))
	expired, oldKey := testCert(t, now.Add(-2*time.Hour), now.Add(-time.Hour))
	cases := []struct {
		name string
		err  func() error
		want string
	}{
		{"client id shape but not a GUID", func() error {
			_, err := Proof(context.Background(), cert, key, "not-a-guid", now)
			return err
		}, "Object ID"},
		{"expired certificate", func() error {
			_, err := Proof(context.Background(), expired, oldKey, objectID, now)
			return err
		}, "not valid now"},
		{"no signer", func() error {
			_, err := Proof(context.Background(), cert, nil, objectID, now)
			return err
		}, "needs the certificate"},
	}
	for _, c := range cases {
		err := c.err()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one mentioning %q", c.name, err, c.want)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Proof(ctx, cert, key, objectID, now); err == nil {
		t.Error("a cancelled context still signed")
	}
}

func decode(t *testing.T, seg string, v any) {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}
