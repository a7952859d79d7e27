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

	"github.com/kvassert/kvassert/internal/jwtassert"
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

// ContextSigner is implemented by signers that do I/O (such as a Key Vault
// key) so that Build can pass its context. Builders prefer it to
// crypto.Signer.Sign when both exist.
type ContextSigner interface {
	SignContext(ctx context.Context, digest []byte, opts crypto.SignerOpts) ([]byte, error)
}

// Options configure a Builder. A nil *Options means the defaults: PS256 with
// x5t#S256, a 10-minute lifetime, no x5c.
type Options struct {
	// Algorithm is PS256 (with x5t#S256; the default) or RS256 (with x5t);
	// any case is accepted. In thumbprint mode the algorithm must be the
	// thumbprint's (see Thumbprint); empty lets the thumbprint pick it.
	Algorithm Algorithm
	// Lifetime is exp - nbf: 1 to 60 minutes, 0 for the default of 10
	// minutes (Entra recommends 5 to 10).
	Lifetime time.Duration
	// X5C adds the x5c header (standard base64 DER of the chain, leaf
	// first), for apps that trust certificates by subject name and issuer
	// (SNI).
	X5C []*x509.Certificate
	// Thumbprint selects thumbprint mode, for when only the key and the
	// certificate's thumbprint are at hand (a Key Vault key whose
	// certificate is registered on the app): New is then given a nil
	// certificate, and the assertions name the certificate by this
	// thumbprint alone. Its length decides the header's form, as each
	// algorithm goes with one thumbprint: a 20-byte SHA-1 thumbprint makes
	// RS256 assertions with x5t, a 32-byte SHA-256 one PS256 assertions with
	// x5t#S256. The certificate's validity cannot be checked locally then.
	Thumbprint []byte
	// Now replaces time.Now (tests); nil means time.Now.
	Now func() time.Time
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

	thumb []byte // thumbprint-only builders: SHA-1 (20 bytes) or SHA-256 (32)

	header   string // base64url of the header JSON, computed once
	hash     crypto.Hash
	signOpts crypto.SignerOpts
}

// New returns a Builder for cert whose private key is held by signer. The
// certificate must hold an RSA key of at least 2048 bits that matches
// signer.Public() (when the signer can tell it). With opts.Thumbprint set,
// cert must be nil (thumbprint mode, see Options.Thumbprint). Bad input is
// refused with a *kvassert.InputError naming it.
func New(cert *x509.Certificate, signer crypto.Signer, opts *Options) (*Builder, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if signer == nil {
		return nil, inputErr("signer", "no signer")
	}
	b := &Builder{cert: cert, signer: signer}
	if o.Thumbprint != nil {
		if err := b.setThumbprint(cert, o.Thumbprint); err != nil {
			return nil, err
		}
	} else if err := checkCertificate(cert, signer); err != nil {
		return nil, err
	}
	return newBuilder(b, o)
}

// checkCertificate checks cert's key and that signer holds it.
func checkCertificate(cert *x509.Certificate, signer crypto.Signer) error {
	if cert == nil {
		return inputErr("certificate", "no certificate (give one, or Options.Thumbprint for thumbprint mode)")
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return inputErr("certificate", "the certificate holds a %T key; Entra client assertions need RSA", cert.PublicKey)
	}
	if pub.N.BitLen() < 2048 {
		return inputErr("certificate", "the certificate's RSA key has %d bits; Entra requires at least 2048", pub.N.BitLen())
	}
	if sp, ok := signer.Public().(*rsa.PublicKey); ok && !sp.Equal(pub) {
		return inputErr("signer", "the signer's public key does not match the certificate")
	}
	return nil
}

// setThumbprint checks thumbprint mode's input and keeps the thumbprint.
func (b *Builder) setThumbprint(cert *x509.Certificate, thumbprint []byte) error {
	if cert != nil {
		return inputErr("Thumbprint", "Options.Thumbprint is set and a certificate is given; give one of them (the certificate names itself)")
	}
	if len(thumbprint) != sha1.Size && len(thumbprint) != sha256.Size {
		return inputErr("Thumbprint", "a thumbprint is 20 (SHA-1) or 32 (SHA-256) bytes, not %d", len(thumbprint))
	}
	if pub, ok := b.signer.Public().(*rsa.PublicKey); ok && pub.N.BitLen() < 2048 {
		return inputErr("signer", "the signer's RSA key has %d bits; Entra requires at least 2048", pub.N.BitLen())
	}
	b.thumb = append([]byte(nil), thumbprint...)
	return nil
}

// thumbprintAlgorithm picks or checks the algorithm of a thumbprint-only
// Builder: RS256 for a SHA-1 thumbprint (x5t), PS256 for a SHA-256 one
// (x5t#S256). set tells whether Options.Algorithm was given.
func (b *Builder) thumbprintAlgorithm(set bool) error {
	want := PS256
	if len(b.thumb) == sha1.Size {
		want = RS256
	}
	switch {
	case !set:
		b.alg = want
	case b.alg == PS256 && want == RS256:
		return inputErr("Algorithm", "PS256 assertions name the certificate by its SHA-256 thumbprint (x5t#S256), but a SHA-1 thumbprint was given; give the SHA-256 thumbprint (64 hex digits, or the 43-character x5t#S256 that 'kvassert cert show' prints), or use RS256 with the SHA-1 thumbprint (x5t)")
	case b.alg == RS256 && want == PS256:
		return inputErr("Algorithm", "RS256 assertions name the certificate by its SHA-1 thumbprint (x5t, which ADFS needs), but a SHA-256 thumbprint was given; give the SHA-1 thumbprint (40 hex digits, as the Azure portal shows it), or use PS256 with the SHA-256 thumbprint (x5t#S256)")
	}
	return nil
}

// newBuilder applies o to b and encodes the header once.
func newBuilder(b *Builder, o Options) (*Builder, error) {
	b.alg, b.lifetime, b.now, b.hash = PS256, jwtassert.DefaultLifetime, time.Now, crypto.SHA256
	if o.Algorithm != "" {
		a, err := jwtassert.ParseAlgorithm(string(o.Algorithm))
		if err != nil {
			return nil, err
		}
		b.alg = Algorithm(a)
	}
	if o.Lifetime != 0 {
		if o.Lifetime < jwtassert.MinLifetime || o.Lifetime > jwtassert.MaxLifetime {
			return nil, inputErr("Lifetime", "lifetime %v is outside %v..%v (Entra recommends 5-10 minutes)", o.Lifetime, jwtassert.MinLifetime, jwtassert.MaxLifetime)
		}
		b.lifetime = o.Lifetime
	}
	for _, c := range o.X5C {
		if c == nil {
			return nil, inputErr("X5C", "nil certificate in the x5c chain")
		}
	}
	b.x5c = o.X5C
	if o.Now != nil {
		b.now = o.Now
	}
	if b.thumb != nil {
		if err := b.thumbprintAlgorithm(o.Algorithm != ""); err != nil {
			return nil, err
		}
	}
	b.signOpts = crypto.SHA256
	if b.alg == PS256 {
		b.signOpts = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}
	}
	b.header = b.encodeHeader()
	return b, nil
}

func (b *Builder) encodeHeader() string {
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
			chain[i] = base64.StdEncoding.EncodeToString(c.Raw)
		}
		x5c, _ := json.Marshal(chain)
		buf = append(buf, `,"x5c":`...)
		buf = append(buf, x5c...)
	}
	buf = append(buf, '}')
	return base64.RawURLEncoding.EncodeToString(buf)
}

// Build returns a signed client assertion for clientID with aud = audience
// (the token endpoint the assertion will be sent to). It makes exactly one
// call to the signer. It refuses a certificate that is expired or not yet
// valid, since Entra would reject it (AADSTS1000502): that error wraps
// ErrCertificateNotValid. A bad clientID or audience is refused with a
// *kvassert.InputError.
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
			return "", fmt.Errorf("%w: not valid before %s", ErrCertificateNotValid, b.cert.NotBefore.UTC().Format(time.RFC3339))
		}
		if !now.Before(b.cert.NotAfter) {
			return "", fmt.Errorf("%w: expired %s", ErrCertificateNotValid, b.cert.NotAfter.UTC().Format(time.RFC3339))
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

// ErrCertificateNotValid is wrapped by Build's error when the certificate
// is outside its validity period (expired, or not valid yet); the message
// says which and when. Read it with errors.Is.
var ErrCertificateNotValid = errors.New("assertion: certificate outside its validity period")

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
		return inputErr(what, "empty %s", what)
	case len(s) > maxClaimLen:
		return inputErr(what, "%s is longer than %d bytes", what, maxClaimLen)
	case !utf8.ValidString(s):
		return inputErr(what, "%s is not valid UTF-8", what)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return inputErr(what, "%s contains a control character", what)
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
