package assertion

import (
	"context"
	"crypto"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kvassert/kvassert/internal/jwtassert"
	"github.com/kvassert/kvassert/internal/testcert"
)

var (
	keyOnce sync.Once
	testKey *rsa.PrivateKey
)

func rsaKey(t testing.TB) *rsa.PrivateKey {
	keyOnce.Do(func() { testKey = testcert.RSAKey(t, 0) })
	return testKey
}

func selfSigned(t testing.TB, key crypto.Signer, notBefore, notAfter time.Time) *x509.Certificate {
	t.Helper()
	return testcert.New(t, &testcert.Options{Key: key, Serial: 42, CommonName: "assertion test", NotBefore: notBefore, NotAfter: notAfter}).Cert
}

func validCert(t testing.TB) (*x509.Certificate, *rsa.PrivateKey) {
	k := rsaKey(t)
	return selfSigned(t, k, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)), k
}

const (
	clientID = "6d2f4a8b-1c3e-4f5a-9b7d-2e4f6a8c0b16"
	audience = "https://login.microsoftonline.com/2b6e9d10-7c4a-4f0e-8d21-5a3b4c6d7e82/oauth2/v2.0/token"
)

// mustBuild builds an assertion for clientID and audience, failing the test
// on an error.
func mustBuild(t *testing.T, b *Builder) string {
	t.Helper()
	jwt, err := b.Build(context.Background(), clientID, audience)
	if err != nil {
		t.Fatal(err)
	}
	return jwt
}

func decodeJSON(t *testing.T, seg string) map[string]any {
	t.Helper()
	if strings.ContainsAny(seg, "=+/") {
		t.Fatalf("segment %q is not unpadded base64url", seg)
	}
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestBuildFieldByField(t *testing.T) {
	cert, key := validCert(t)
	now := time.Unix(time.Now().Unix(), 0)
	for _, alg := range []Algorithm{PS256, RS256} {
		t.Run(string(alg), func(t *testing.T) {
			b, err := New(cert, key, &Options{Algorithm: alg, Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			jwt := mustBuild(t, b)
			parts := strings.Split(jwt, ".")
			if len(parts) != 3 {
				t.Fatalf("want 3 parts, got %d", len(parts))
			}
			h := decodeJSON(t, parts[0])
			s1, s256 := sha1.Sum(cert.Raw), sha256.Sum256(cert.Raw)
			want := map[string]any{"alg": string(alg), "typ": "JWT"}
			if alg == PS256 {
				want["x5t#S256"] = base64.RawURLEncoding.EncodeToString(s256[:])
			} else {
				want["x5t"] = base64.RawURLEncoding.EncodeToString(s1[:])
			}
			if len(h) != len(want) {
				t.Errorf("header has fields %v, want exactly %v", h, want)
			}
			for k, v := range want {
				if h[k] != v {
					t.Errorf("header[%q] = %v, want %v", k, h[k], v)
				}
			}
			c := decodeJSON(t, parts[1])
			if len(c) != 7 {
				t.Errorf("claims = %v, want exactly aud iss sub jti nbf iat exp", c)
			}
			for k, v := range map[string]any{"aud": audience, "iss": clientID, "sub": clientID,
				"nbf": float64(now.Unix()), "iat": float64(now.Unix()), "exp": float64(now.Add(10 * time.Minute).Unix())} {
				if c[k] != v {
					t.Errorf("claims[%q] = %v, want %v", k, c[k], v)
				}
			}
			if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(c["jti"].(string)) {
				t.Errorf("jti %q is not a random UUID", c["jti"])
			}
			sig, err := base64.RawURLEncoding.DecodeString(parts[2])
			if err != nil || strings.ContainsAny(parts[2], "=+/") {
				t.Fatalf("signature not unpadded base64url: %v", err)
			}
			digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
			if alg == PS256 {
				err = rsa.VerifyPSS(&key.PublicKey, crypto.SHA256, digest[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
			} else {
				err = rsa.VerifyPKCS1v15(&key.PublicKey, crypto.SHA256, digest[:], sig)
			}
			if err != nil {
				t.Fatalf("signature does not verify: %v", err)
			}
			tok, err := jwtassert.Parse(jwt)
			if err != nil {
				t.Fatal(err)
			}
			if p := tok.Check(jwtassert.CheckOptions{Certificate: cert, ClientID: clientID, Audience: audience, Now: now}); len(p) != 0 {
				t.Fatalf("Check found problems in a good assertion: %v", p)
			}
		})
	}
}

func TestJTIIsFreshEachTime(t *testing.T) {
	cert, key := validCert(t)
	b, _ := New(cert, key, nil)
	seen := map[string]bool{}
	for range 50 {
		jwt := mustBuild(t, b)
		tok, _ := jwtassert.Parse(jwt)
		if seen[tok.Claims.Jti] {
			t.Fatalf("jti %s repeated", tok.Claims.Jti)
		}
		seen[tok.Claims.Jti] = true
	}
}

func TestX5CAndLifetime(t *testing.T) {
	cert, key := validCert(t)
	b, err := New(cert, key, &Options{X5C: []*x509.Certificate{cert}, Lifetime: 5 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	jwt := mustBuild(t, b)
	tok, _ := jwtassert.Parse(jwt)
	if len(tok.Header.X5c) != 1 || tok.Header.X5c[0] != base64.StdEncoding.EncodeToString(cert.Raw) {
		t.Fatalf("x5c = %v, want the standard-base64 DER of the leaf", tok.Header.X5c)
	}
	if got := tok.Claims.Exp - tok.Claims.Nbf; got != 300 {
		t.Fatalf("lifetime = %ds, want 300", got)
	}
}

func TestNewRejects(t *testing.T) {
	cert, key := validCert(t)
	other := testcert.RSAKey(t, 0)
	ecc := testcert.New(t, &testcert.Options{Curve: elliptic.P256()})
	ecCert, ec := ecc.Cert, ecc.Key
	smallc := testcert.New(t, &testcert.Options{Bits: 1024})
	smallCert, small := smallc.Cert, smallc.Key
	cases := []struct {
		name   string
		cert   *x509.Certificate
		signer crypto.Signer
		opts   *Options
		want   string
	}{
		{"nil cert", nil, key, nil, "no certificate"},
		{"nil signer", cert, nil, nil, "no signer"},
		{"EC certificate", ecCert, ec, nil, "need RSA"},
		{"1024-bit key", smallCert, small, nil, "at least 2048"},
		{"mismatched signer", cert, other, nil, "does not match"},
		{"bad alg", cert, key, &Options{Algorithm: "HS256"}, "not supported"},
		{"lifetime too long", cert, key, &Options{Lifetime: 2 * time.Hour}, "outside"},
		{"lifetime too short", cert, key, &Options{Lifetime: time.Second}, "outside"},
		{"negative lifetime", cert, key, &Options{Lifetime: -time.Minute}, "outside"},
		{"certificate and thumbprint", cert, key, &Options{Thumbprint: make([]byte, 20)}, "give one of them"},
		{"nil x5c entry", cert, key, &Options{X5C: []*x509.Certificate{nil}}, "nil certificate"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := New(c.cert, c.signer, c.opts); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("New error = %v, want %q", err, c.want)
			}
		})
	}
}

func TestBuildRejectsBadInputAndCertificateWindow(t *testing.T) {
	cert, key := validCert(t)
	b, _ := New(cert, key, nil)
	for _, c := range []struct{ client, aud, want string }{
		{"", audience, "empty client ID"},
		{clientID, "", "empty audience"},
		{clientID, "https://x\n", "control character"},
		{"\xff", audience, "UTF-8"},
		{strings.Repeat("a", 5000), audience, "longer than"},
	} {
		if _, err := b.Build(context.Background(), c.client, c.aud); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Build(%.20q, %.20q) error = %v, want %q", c.client, c.aud, err, c.want)
		}
	}
	expired := selfSigned(t, key, time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour))
	b2, _ := New(expired, key, nil)
	if _, err := b2.Build(context.Background(), clientID, audience); !errors.Is(err, ErrCertificateNotValid) || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired certificate: err = %v", err)
	}
	future := selfSigned(t, key, time.Now().Add(time.Hour), time.Now().Add(48*time.Hour))
	b3, _ := New(future, key, nil)
	if _, err := b3.Build(context.Background(), clientID, audience); !errors.Is(err, ErrCertificateNotValid) || !strings.Contains(err.Error(), "not valid before") {
		t.Fatalf("future certificate: err = %v", err)
	}
	// Quotes are escaped, so the claims stay valid JSON.
	jwt, err := b.Build(context.Background(), `a"b\c`, audience)
	if err != nil {
		t.Fatal(err)
	}
	if tok, err := jwtassert.Parse(jwt); err != nil || tok.Claims.Iss != `a"b\c` {
		t.Fatalf("escaped claim round trip: %v %+v", err, tok)
	}
}

// ctxSigner records the context and options it was given and counts calls.
type ctxSigner struct {
	key   *rsa.PrivateKey
	calls int
	ctx   context.Context
	opts  crypto.SignerOpts
	err   error
}

func (s *ctxSigner) Public() crypto.PublicKey { return &s.key.PublicKey }
func (s *ctxSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	panic("Sign must not be called when SignContext exists")
}
func (s *ctxSigner) SignContext(ctx context.Context, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	s.calls++
	s.ctx, s.opts = ctx, opts
	if s.err != nil {
		return nil, s.err
	}
	if pss, ok := opts.(*rsa.PSSOptions); ok {
		return rsa.SignPSS(rand.Reader, s.key, pss.Hash, digest, pss)
	}
	return rsa.SignPKCS1v15(rand.Reader, s.key, opts.HashFunc(), digest)
}

type ctxKey struct{}

func TestContextSignerGetsContextAndOneCall(t *testing.T) {
	cert, key := validCert(t)
	s := &ctxSigner{key: key}
	b, _ := New(cert, s, nil)
	ctx := context.WithValue(context.Background(), ctxKey{}, "v")
	if _, err := b.Build(ctx, clientID, audience); err != nil {
		t.Fatal(err)
	}
	if s.calls != 1 || s.ctx.Value(ctxKey{}) != "v" {
		t.Fatalf("calls=%d ctx passed=%v", s.calls, s.ctx.Value(ctxKey{}))
	}
	pss, ok := s.opts.(*rsa.PSSOptions)
	if !ok || pss.SaltLength != rsa.PSSSaltLengthEqualsHash || pss.Hash != crypto.SHA256 {
		t.Fatalf("PS256 must ask for PSS/SHA-256 with salt = hash length, got %#v", s.opts)
	}
	s.err = errors.New("vault unavailable")
	if _, err := b.Build(ctx, clientID, audience); err == nil || !strings.Contains(err.Error(), "vault unavailable") {
		t.Fatalf("signer error not surfaced: %v", err)
	}
}

func TestBuildHonoursCancelledContextForLocalSigner(t *testing.T) {
	cert, key := validCert(t)
	b, _ := New(cert, key, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := b.Build(ctx, clientID, audience); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// The rule: each algorithm goes with one thumbprint (PS256 with x5t#S256,
// RS256 with x5t), so a thumbprint-only builder takes its algorithm from the
// thumbprint and refuses the other one, saying which thumbprint to give.
func TestThumbprintOnlyBuilder(t *testing.T) {
	cert, key := validCert(t)
	s1, s256 := sha1.Sum(cert.Raw), sha256.Sum256(cert.Raw)
	for _, c := range []struct {
		thumb []byte
		opts  *Options
		field string
		alg   Algorithm
	}{
		{s1[:], &Options{Algorithm: RS256}, "x5t", RS256},
		{s256[:], &Options{Algorithm: PS256}, "x5t#S256", PS256},
		{s1[:], nil, "x5t", RS256},
		{s256[:], nil, "x5t#S256", PS256},
	} {
		b, err := newThumbprint(c.thumb, key, c.opts)
		if err != nil {
			t.Fatal(err)
		}
		jwt := mustBuild(t, b)
		tok, _ := jwtassert.Parse(jwt)
		if p := tok.Check(jwtassert.CheckOptions{Certificate: cert}); len(p) != 0 {
			t.Fatalf("%s/%s: %v", c.field, c.alg, p)
		}
		h := decodeJSON(t, strings.Split(jwt, ".")[0])
		if h[c.field] != base64.RawURLEncoding.EncodeToString(c.thumb) || h["alg"] != string(c.alg) || len(h) != 3 || b.alg != c.alg {
			t.Fatalf("header %v, want alg %s with %s", h, c.alg, c.field)
		}
	}
	for _, c := range []struct {
		thumb []byte
		alg   Algorithm
		want  string
	}{
		{s256[:], RS256, "give the SHA-1 thumbprint"},
		{s1[:], PS256, "give the SHA-256 thumbprint"},
	} {
		if _, err := New(nil, key, &Options{Thumbprint: c.thumb, Algorithm: c.alg}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%d-byte thumbprint with %s: %v, want %q", len(c.thumb), c.alg, err, c.want)
		}
	}
	if _, err := New(nil, key, &Options{Thumbprint: make([]byte, 19)}); err == nil {
		t.Fatal("19-byte thumbprint accepted")
	}
}

// With a certificate, the algorithm picks the thumbprint: PS256 (default)
// with x5t#S256, RS256 with x5t.
func TestCertificateBuilderThumbprintFollowsAlgorithm(t *testing.T) {
	cert, key := validCert(t)
	x5t, x5tS256 := jwtassert.Thumbprints(cert)
	for alg, want := range map[Algorithm][2]string{PS256: {"x5t#S256", x5tS256}, RS256: {"x5t", x5t}} {
		b, err := New(cert, key, &Options{Algorithm: alg})
		if err != nil {
			t.Fatal(err)
		}
		jwt := mustBuild(t, b)
		h := decodeJSON(t, strings.Split(jwt, ".")[0])
		if h["alg"] != string(alg) || h[want[0]] != want[1] || len(h) != 3 {
			t.Fatalf("%s: header %v, want %s", alg, h, want[0])
		}
	}
}

// newThumbprint is New in thumbprint mode with opts (nil: none) plus the thumbprint.
func newThumbprint(thumb []byte, signer crypto.Signer, opts *Options) (*Builder, error) {
	o := Options{}
	if opts != nil {
		o = *opts
	}
	o.Thumbprint = thumb
	return New(nil, signer, &o)
}
