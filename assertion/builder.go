package assertion

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/kvassert/kvassert/internal/textutil"
)

// Algorithm is a JWS signature algorithm Entra accepts for client assertions.
type Algorithm string

// Supported algorithms. Each goes with one thumbprint header, as Entra
// documents them and MSAL sends them: PS256 with x5t#S256 (SHA-256), RS256
// with x5t (SHA-1). A Builder never mixes them.
const (
	// PS256 is RSASSA-PSS with SHA-256 (salt length = hash length), sent with
	// the x5t#S256 thumbprint. The default.
	PS256 Algorithm = "PS256"
	// RS256 is RSASSA-PKCS1-v1_5 with SHA-256, sent with the SHA-1 x5t
	// thumbprint: for ADFS and setups that predate PS256.
	RS256 Algorithm = "RS256"
)

// ParseAlgorithm accepts "PS256" or "RS256" (any case).
func ParseAlgorithm(s string) (Algorithm, error) {
	switch a := Algorithm(toUpperASCII(s)); a {
	case PS256, RS256:
		return a, nil
	}
	return "", inputErr("algorithm", "algorithm %q is not supported; use PS256 (default) or RS256", textutil.Truncate(s, 40))
}

// Lifetime bounds. Entra recommends 5 to 10 minutes.
const (
	DefaultLifetime = 10 * time.Minute
	MinLifetime     = 1 * time.Minute
	MaxLifetime     = 60 * time.Minute
)

// ContextSigner is implemented by signers that do I/O (such as a Key Vault
// key) so that Build can pass its context. Builders prefer it to
// crypto.Signer.Sign when both exist.
type ContextSigner interface {
	SignContext(ctx context.Context, digest []byte, opts crypto.SignerOpts) ([]byte, error)
}

// Option configures a Builder.
type Option func(*Builder) error

// WithAlgorithm selects PS256 (with x5t#S256; the default for New) or RS256
// (with x5t). For NewWithThumbprint the algorithm must be the one of the
// thumbprint given; without WithAlgorithm the thumbprint picks it.
func WithAlgorithm(a Algorithm) Option {
	return func(b *Builder) error {
		if a != PS256 && a != RS256 {
			return fmt.Errorf("assertion: algorithm %q is not supported; use PS256 or RS256", a)
		}
		b.alg, b.algSet = a, true
		return nil
	}
}

// WithLifetime sets exp - nbf (default 10 minutes, 1 to 60 minutes allowed).
func WithLifetime(d time.Duration) Option {
	return func(b *Builder) error {
		if d < MinLifetime || d > MaxLifetime {
			return fmt.Errorf("assertion: lifetime %v is outside %v..%v (Entra recommends 5-10 minutes)", d, MinLifetime, MaxLifetime)
		}
		b.lifetime = d
		return nil
	}
}

// WithX5C adds the x5c header (standard base64 DER of chain, leaf first), for
// apps that trust certificates by subject name and issuer (SNI).
func WithX5C(chain ...*x509.Certificate) Option {
	return func(b *Builder) error {
		b.x5c = chain
		return nil
	}
}

// WithClock replaces time.Now (for tests).
func WithClock(now func() time.Time) Option {
	return func(b *Builder) error {
		if now == nil {
			return errors.New("assertion: nil clock")
		}
		b.now = now
		return nil
	}
}

// Builder makes signed client assertions for one certificate. It is
// immutable after New and safe for concurrent use.
type Builder struct {
	cert     *x509.Certificate
	signer   crypto.Signer
	alg      Algorithm
	lifetime time.Duration
	x5c      []*x509.Certificate
	now      func() time.Time

	thumb  []byte // thumbprint-only builders: SHA-1 (20 bytes) or SHA-256 (32)
	algSet bool   // WithAlgorithm was given

	header   string // base64url of the header JSON, computed once
	hash     crypto.Hash
	signOpts crypto.SignerOpts
}

// New returns a Builder for cert whose private key is held by signer. The
// certificate must hold an RSA key of at least 2048 bits that matches
// signer.Public() (when the signer can tell it).
func New(cert *x509.Certificate, signer crypto.Signer, opts ...Option) (*Builder, error) {
	if cert == nil {
		return nil, errors.New("assertion: no certificate")
	}
	if signer == nil {
		return nil, errors.New("assertion: no signer")
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("assertion: the certificate holds a %T key; Entra client assertions need RSA", cert.PublicKey)
	}
	if pub.N.BitLen() < 2048 {
		return nil, fmt.Errorf("assertion: the certificate's RSA key has %d bits; Entra requires at least 2048", pub.N.BitLen())
	}
	if sp, ok := signer.Public().(*rsa.PublicKey); ok && !sp.Equal(pub) {
		return nil, errors.New("assertion: the signer's public key does not match the certificate")
	}
	return newBuilder(&Builder{cert: cert, signer: signer}, opts)
}

// NewWithThumbprint returns a Builder that names its certificate by
// thumbprint alone, for when only the key and the thumbprint are at hand (a
// Key Vault key whose certificate is registered on the app). The thumbprint
// decides the header's form, as each algorithm goes with one thumbprint: a
// 20-byte SHA-1 thumbprint makes RS256 assertions with x5t, a 32-byte SHA-256
// one PS256 assertions with x5t#S256. WithAlgorithm may confirm that choice;
// the other algorithm is refused with an error that says which thumbprint
// to give instead (PS256 needs the SHA-256 thumbprint, RS256 the SHA-1 one).
// The certificate's validity cannot be checked locally.
func NewWithThumbprint(thumbprint []byte, signer crypto.Signer, opts ...Option) (*Builder, error) {
	if len(thumbprint) != sha1.Size && len(thumbprint) != sha256.Size {
		return nil, fmt.Errorf("assertion: a thumbprint is 20 (SHA-1) or 32 (SHA-256) bytes, not %d", len(thumbprint))
	}
	if signer == nil {
		return nil, errors.New("assertion: no signer")
	}
	if pub, ok := signer.Public().(*rsa.PublicKey); ok && pub.N.BitLen() < 2048 {
		return nil, fmt.Errorf("assertion: the signer's RSA key has %d bits; Entra requires at least 2048", pub.N.BitLen())
	}
	return newBuilder(&Builder{signer: signer, thumb: append([]byte(nil), thumbprint...)}, opts)
}

// thumbprintAlgorithm picks or checks the algorithm of a thumbprint-only
// Builder: RS256 for a SHA-1 thumbprint (x5t), PS256 for a SHA-256 one
// (x5t#S256).
func (b *Builder) thumbprintAlgorithm() error {
	want := PS256
	if len(b.thumb) == sha1.Size {
		want = RS256
	}
	switch {
	case !b.algSet:
		b.alg = want
	case b.alg == PS256 && want == RS256:
		return errors.New("assertion: PS256 assertions name the certificate by its SHA-256 thumbprint (x5t#S256), but a SHA-1 thumbprint was given; give the SHA-256 thumbprint (64 hex digits, or the 43-character x5t#S256 that 'kvassert cert show' prints), or use RS256 with the SHA-1 thumbprint (x5t)")
	case b.alg == RS256 && want == PS256:
		return errors.New("assertion: RS256 assertions name the certificate by its SHA-1 thumbprint (x5t, which ADFS needs), but a SHA-256 thumbprint was given; give the SHA-1 thumbprint (40 hex digits, as the Azure portal shows it), or use PS256 with the SHA-256 thumbprint (x5t#S256)")
	}
	return nil
}

func newBuilder(b *Builder, opts []Option) (*Builder, error) {
	b.alg, b.lifetime, b.now, b.hash = PS256, DefaultLifetime, time.Now, crypto.SHA256
	for _, o := range opts {
		if err := o(b); err != nil {
			return nil, err
		}
	}
	if b.thumb != nil {
		if err := b.thumbprintAlgorithm(); err != nil {
			return nil, err
		}
	}
	b.signOpts = crypto.SHA256
	if b.alg == PS256 {
		b.signOpts = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}
	}
	h, err := b.encodeHeader()
	if err != nil {
		return nil, err
	}
	b.header = h
	return b, nil
}

func (b *Builder) encodeHeader() (string, error) {
	// Field order is fixed for stable output: alg, typ, thumbprint, x5c.
	buf := []byte(`{"alg":"` + string(b.alg) + `","typ":"JWT",`)
	switch {
	case b.thumb != nil && b.alg == RS256: // a SHA-1 thumbprint (thumbprintAlgorithm)
		buf = append(buf, `"x5t":"`...)
		buf = base64.RawURLEncoding.AppendEncode(buf, b.thumb)
	case b.thumb != nil: // PS256 and a SHA-256 thumbprint
		buf = append(buf, `"x5t#S256":"`...)
		buf = base64.RawURLEncoding.AppendEncode(buf, b.thumb)
	case b.alg == PS256:
		sum := sha256.Sum256(b.cert.Raw)
		buf = append(buf, `"x5t#S256":"`...)
		buf = base64.RawURLEncoding.AppendEncode(buf, sum[:])
	default:
		sum := sha1.Sum(b.cert.Raw)
		buf = append(buf, `"x5t":"`...)
		buf = base64.RawURLEncoding.AppendEncode(buf, sum[:])
	}
	buf = append(buf, '"')
	if len(b.x5c) > 0 {
		chain := make([]string, len(b.x5c))
		for i, c := range b.x5c {
			if c == nil {
				return "", errors.New("assertion: nil certificate in x5c chain")
			}
			chain[i] = base64.StdEncoding.EncodeToString(c.Raw)
		}
		x5c, _ := json.Marshal(chain)
		buf = append(buf, `,"x5c":`...)
		buf = append(buf, x5c...)
	}
	buf = append(buf, '}')
	return base64.RawURLEncoding.EncodeToString(buf), nil
}

// Certificate is the certificate the assertions name (nil for a
// thumbprint-only Builder).
func (b *Builder) Certificate() *x509.Certificate { return b.cert }

// Algorithm is the signature algorithm in use.
func (b *Builder) Algorithm() Algorithm { return b.alg }

// Build returns a signed client assertion for clientID with aud = audience
// (the token endpoint the assertion will be sent to). It makes exactly one
// call to the signer. It refuses a certificate that is expired or not yet
// valid, since Entra would reject it (AADSTS1000502).
func (b *Builder) Build(ctx context.Context, clientID, audience string) (string, error) {
	if err := checkClaimValue("client ID", clientID); err != nil {
		return "", err
	}
	if err := checkClaimValue("audience", audience); err != nil {
		return "", err
	}
	now := b.now()
	if b.cert != nil {
		if now.Before(b.cert.NotBefore) {
			return "", fmt.Errorf("%w: valid from %s", ErrCertificateNotYetValid, b.cert.NotBefore.UTC().Format(time.RFC3339))
		}
		if !now.Before(b.cert.NotAfter) {
			return "", fmt.Errorf("%w: expired %s", ErrCertificateExpired, b.cert.NotAfter.UTC().Format(time.RFC3339))
		}
	}
	signingInput, err := b.signingInput(clientID, audience, now)
	if err != nil {
		return "", err
	}
	digest := sha256.Sum256(signingInput)
	var sig []byte
	if cs, ok := b.signer.(ContextSigner); ok {
		sig, err = cs.SignContext(ctx, digest[:], b.signOpts)
	} else {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		sig, err = b.signer.Sign(rand.Reader, digest[:], b.signOpts)
	}
	if err != nil {
		return "", fmt.Errorf("assertion: signing: %w", err)
	}
	out := make([]byte, 0, len(signingInput)+1+base64.RawURLEncoding.EncodedLen(len(sig)))
	out = append(out, signingInput...)
	out = append(out, '.')
	out = base64.RawURLEncoding.AppendEncode(out, sig)
	return string(out), nil
}

// Errors for certificates outside their validity window.
var (
	ErrCertificateExpired     = errors.New("assertion: certificate expired")
	ErrCertificateNotYetValid = errors.New("assertion: certificate not yet valid")
)

// signingInput returns base64url(header) "." base64url(claims).
func (b *Builder) signingInput(clientID, audience string, now time.Time) ([]byte, error) {
	var jti [36]byte
	if err := newUUID(&jti); err != nil {
		return nil, fmt.Errorf("assertion: random jti: %w", err)
	}
	iat := now.Unix()
	exp := now.Add(b.lifetime).Unix()

	// The claims JSON, written by hand: the values are validated to need no
	// escaping beyond what appendJSONString does.
	var claims [512]byte
	c := claims[:0]
	c = append(c, `{"aud":`...)
	c = appendJSONString(c, audience)
	c = append(c, `,"iss":`...)
	c = appendJSONString(c, clientID)
	c = append(c, `,"sub":`...)
	c = appendJSONString(c, clientID)
	c = append(c, `,"jti":"`...)
	c = append(c, jti[:]...)
	c = append(c, `","nbf":`...)
	c = strconv.AppendInt(c, iat, 10)
	c = append(c, `,"iat":`...)
	c = strconv.AppendInt(c, iat, 10)
	c = append(c, `,"exp":`...)
	c = strconv.AppendInt(c, exp, 10)
	c = append(c, '}')

	enc := base64.RawURLEncoding
	out := make([]byte, 0, len(b.header)+1+enc.EncodedLen(len(c)))
	out = append(out, b.header...)
	out = append(out, '.')
	out = enc.AppendEncode(out, c)
	return out, nil
}

const maxClaimLen = 2048

func checkClaimValue(what, s string) error {
	switch {
	case s == "":
		return fmt.Errorf("assertion: empty %s", what)
	case len(s) > maxClaimLen:
		return fmt.Errorf("assertion: %s is longer than %d bytes", what, maxClaimLen)
	case !utf8.ValidString(s):
		return fmt.Errorf("assertion: %s is not valid UTF-8", what)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("assertion: %s contains a control character", what)
		}
	}
	return nil
}

// appendJSONString appends s as a JSON string; s has no control characters
// (checkClaimValue), so only '"' and '\\' need escaping.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '"' || c == '\\' {
			dst = append(dst, '\\')
		}
		dst = append(dst, s[i])
	}
	return append(dst, '"')
}

// newUUID writes a random (version 4) UUID in its 36-character text form.
func newUUID(dst *[36]byte) error {
	var u [16]byte
	if _, err := rand.Read(u[:]); err != nil {
		return err
	}
	u[6] = (u[6] & 0x0f) | 0x40
	u[8] = (u[8] & 0x3f) | 0x80
	const hexdigits = "0123456789abcdef"
	j := 0
	for i, c := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			dst[j] = '-'
			j++
		}
		dst[j], dst[j+1] = hexdigits[c>>4], hexdigits[c&0xf]
		j += 2
	}
	return nil
}

func toUpperASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 32
		}
	}
	return string(b)
}
