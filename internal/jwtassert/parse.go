package jwtassert

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// MaxTokenSize is the largest JWT Parse accepts (16 KiB; assertions with an
// x5c chain of three certificates stay far below it).
const MaxTokenSize = 16 << 10

// Header is a decoded JWS header.
type Header struct {
	Alg     string   `json:"alg"`
	Typ     string   `json:"typ,omitempty"`
	Kid     string   `json:"kid,omitempty"`
	X5t     string   `json:"x5t,omitempty"`
	X5tS256 string   `json:"x5t#S256,omitempty"`
	X5c     []string `json:"x5c,omitempty"`
}

// Claims are the registered claims of a client assertion.
type Claims struct {
	Aud Audience `json:"aud"`
	Iss string   `json:"iss"`
	Sub string   `json:"sub"`
	Jti string   `json:"jti"`
	Nbf int64    `json:"nbf"`
	Iat int64    `json:"iat"`
	Exp int64    `json:"exp"`
}

// Audience is the aud claim: one string or an array of strings.
type Audience []string

// UnmarshalJSON accepts a string or an array of strings.
func (a *Audience) UnmarshalJSON(b []byte) error {
	if bytes.HasPrefix(bytes.TrimSpace(b), []byte("[")) {
		var many []string
		if err := json.Unmarshal(b, &many); err != nil {
			return err
		}
		*a = many
		return nil
	}
	var one string
	if err := json.Unmarshal(b, &one); err != nil {
		return err
	}
	*a = Audience{one}
	return nil
}

// MarshalJSON writes a single audience as a string.
func (a Audience) MarshalJSON() ([]byte, error) {
	if len(a) == 1 {
		return json.Marshal(a[0])
	}
	return json.Marshal([]string(a))
}

// Token is a parsed, not yet verified, JWT.
type Token struct {
	Header    Header
	Claims    Claims
	RawHeader []byte // decoded header JSON
	RawClaims []byte // decoded claims JSON
	signing   string
	signature []byte
}

// Parse decodes a compact JWS without verifying it. Errors describe what is
// malformed without repeating the token; they are *kvassert.InputError.
func Parse(jwt string) (*Token, error) {
	jwt = strings.TrimSpace(jwt)
	if jwt == "" {
		return nil, inputErr("JWT", "empty token")
	}
	if len(jwt) > MaxTokenSize {
		return nil, inputErr("JWT", "token is %d bytes, more than the %d accepted", len(jwt), MaxTokenSize)
	}
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return nil, inputErr("JWT", "a JWT has 3 dot-separated parts, this has %d", len(parts))
	}
	t := &Token{signing: parts[0] + "." + parts[1]}
	var err error
	if t.RawHeader, err = decodeSegment("header", parts[0]); err != nil {
		return nil, err
	}
	if t.RawClaims, err = decodeSegment("claims", parts[1]); err != nil {
		return nil, err
	}
	if t.signature, err = decodeSegment("signature", parts[2]); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(t.RawHeader, &t.Header); err != nil {
		return nil, inputErr("JWT", "header is not a JSON object of the expected shape: %v", err)
	}
	if err := json.Unmarshal(t.RawClaims, &t.Claims); err != nil {
		return nil, inputErr("JWT", "claims are not a JSON object of the expected shape: %v", err)
	}
	return t, nil
}

func decodeSegment(what, s string) ([]byte, error) {
	if s == "" {
		return nil, inputErr("JWT", "the %s part is empty", what)
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil {
		if strings.ContainsAny(s, "=+/") {
			return nil, inputErr("JWT", "the %s part is not base64url without padding (it has '=', '+' or '/')", what)
		}
		return nil, inputErr("JWT", "the %s part is not base64url", what)
	}
	return b, nil
}

// Signature returns the raw signature bytes.
func (t *Token) Signature() []byte { return append([]byte(nil), t.signature...) }

// VerifySignature checks the signature with an RSA public key for the
// header's alg (PS256 with salt length = hash length, or RS256).
func (t *Token) VerifySignature(pub *rsa.PublicKey) error {
	digest := sha256.Sum256([]byte(t.signing))
	switch t.Header.Alg {
	case "PS256":
		if err := rsa.VerifyPSS(pub, crypto.SHA256, digest[:], t.signature, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}); err != nil {
			return errors.New("assertion: PS256 signature does not verify with this certificate's key")
		}
	case "RS256":
		if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], t.signature); err != nil {
			return errors.New("assertion: RS256 signature does not verify with this certificate's key")
		}
	default:
		return fmt.Errorf("assertion: alg %q is not one Entra accepts for client assertions (PS256, RS256)", t.Header.Alg)
	}
	return nil
}

// CheckOptions tell Check what to expect. Zero fields are not checked.
type CheckOptions struct {
	// Certificate whose key must have signed the token and whose thumbprint
	// the header must carry.
	Certificate *x509.Certificate
	// Now is the time to check against (default time.Now()).
	Now time.Time
	// ClientID expected in iss and sub.
	ClientID string
	// Audience expected in aud.
	Audience string
}

// Check inspects a client assertion as Entra would and returns each problem
// found as one plain sentence; none means it would be accepted.
func (t *Token) Check(o CheckOptions) []string {
	var p problems
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	p.header(t.Header)
	p.claims(t.Claims, o, now)
	if o.Certificate != nil {
		p.certificate(t, o.Certificate, now)
	}
	return p
}

// problems collects Check's sentences.
type problems []string

func (p *problems) add(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

// header checks alg, typ and the thumbprint.
func (p *problems) header(h Header) {
	if h.Alg != "PS256" && h.Alg != "RS256" {
		p.add("alg is %q; Entra accepts PS256 or RS256 for certificate credentials", h.Alg)
	}
	if h.Typ != "" && !strings.EqualFold(h.Typ, "JWT") {
		p.add("typ is %q; expected JWT", h.Typ)
	}
	if h.X5t == "" && h.X5tS256 == "" {
		p.add("the header has neither x5t nor x5t#S256, so Entra cannot find the certificate")
	}
}

// claims checks aud, iss, sub, jti and the time claims.
func (p *problems) claims(c Claims, o CheckOptions, now time.Time) {
	if len(c.Aud) != 1 || c.Aud[0] == "" {
		p.add("aud must be exactly one value, the token endpoint")
	} else if o.Audience != "" && c.Aud[0] != o.Audience {
		p.add("aud is %q but the token endpoint is %q", c.Aud[0], o.Audience)
	} else if !strings.HasPrefix(c.Aud[0], "https://") {
		p.add("aud %q is not an https token endpoint", c.Aud[0])
	}
	if c.Iss == "" || c.Iss != c.Sub {
		p.add("iss (%q) and sub (%q) must both be the client ID", c.Iss, c.Sub)
	}
	if o.ClientID != "" && c.Iss != o.ClientID {
		p.add("iss is %q, not the client ID %q", c.Iss, o.ClientID)
	}
	if c.Jti == "" {
		p.add("jti is missing; Entra needs a unique ID per assertion")
	}
	p.times(c, now)
}

// times checks exp, nbf and the lifetime.
func (p *problems) times(c Claims, now time.Time) {
	switch {
	case c.Exp == 0:
		p.add("exp is missing")
	case now.Unix() >= c.Exp:
		p.add("expired %s ago (exp %s)", now.Sub(time.Unix(c.Exp, 0)).Round(time.Second), time.Unix(c.Exp, 0).UTC().Format(time.RFC3339))
	}
	if c.Nbf != 0 && now.Unix()+300 < c.Nbf {
		p.add("not valid until %s (nbf is in the future: check the clock)", time.Unix(c.Nbf, 0).UTC().Format(time.RFC3339))
	}
	if c.Exp != 0 && c.Nbf != 0 && time.Duration(c.Exp-c.Nbf)*time.Second > MaxLifetime {
		p.add("lifetime is %v; Entra recommends 5-10 minutes", time.Duration(c.Exp-c.Nbf)*time.Second)
	}
}

// certificate checks the thumbprints, the signature and the certificate's
// validity against cert.
func (p *problems) certificate(t *Token, cert *x509.Certificate, now time.Time) {
	h := t.Header
	x5t, x5tS256 := Thumbprints(cert)
	if h.X5t != "" && h.X5t != x5t {
		p.add("x5t %s is not this certificate's SHA-1 thumbprint (%s)", h.X5t, x5t)
	}
	if h.X5tS256 != "" && h.X5tS256 != x5tS256 {
		p.add("x5t#S256 %s is not this certificate's SHA-256 thumbprint (%s)", h.X5tS256, x5tS256)
	}
	if pub, ok := cert.PublicKey.(*rsa.PublicKey); !ok {
		p.add("the certificate holds a %T key; client assertions need RSA", cert.PublicKey)
	} else if err := t.VerifySignature(pub); err != nil {
		p.add("%s", strings.TrimPrefix(err.Error(), "assertion: "))
	}
	if now.Before(cert.NotBefore) {
		p.add("the certificate is not valid before %s", cert.NotBefore.UTC().Format(time.RFC3339))
	}
	if now.After(cert.NotAfter) {
		p.add("the certificate expired %s", cert.NotAfter.UTC().Format(time.RFC3339))
	}
}
