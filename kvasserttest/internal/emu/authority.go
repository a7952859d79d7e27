package emu

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"time"
)

// AccessClaims are the claims of an emulated Entra ID access token.
type AccessClaims struct {
	Aud   string   `json:"aud"`
	Iss   string   `json:"iss"`
	Tid   string   `json:"tid"`
	AppID string   `json:"appid,omitempty"`
	Azp   string   `json:"azp,omitempty"`
	Oid   string   `json:"oid,omitempty"`
	Sub   string   `json:"sub,omitempty"`
	IdTyp string   `json:"idtyp,omitempty"`
	Ver   string   `json:"ver,omitempty"`
	UTI   string   `json:"uti,omitempty"`
	Roles []string `json:"roles,omitempty"`
	// XmsMirid is the managed identity resource ID (managed identity tokens).
	XmsMirid string `json:"xms_mirid,omitempty"`
	Iat      int64  `json:"iat"`
	Nbf      int64  `json:"nbf"`
	Exp      int64  `json:"exp"`
}

// Authority signs and verifies the emulator's access tokens (RS256 JWTs with
// a "kid" header naming its key in the JWKS). Safe for concurrent use.
type Authority struct {
	key *rsa.PrivateKey
	kid string
	mu  sync.RWMutex
	now func() time.Time
}

// NewAuthority generates a fresh 2048-bit signing key.
func NewAuthority() (*Authority, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	return NewAuthorityWithKey(key), nil
}

// NewAuthorityWithKey returns an authority that signs with key (shared with
// other authorities: each keeps its own clock).
func NewAuthorityWithKey(key *rsa.PrivateKey) *Authority {
	sum := sha256.Sum256(key.PublicKey.N.Bytes())
	return &Authority{key: key, kid: base64.RawURLEncoding.EncodeToString(sum[:12]), now: time.Now}
}

// SetClock replaces the clock used for expiry checks (nil restores time.Now).
func (a *Authority) SetClock(now func() time.Time) {
	if now == nil {
		now = time.Now
	}
	a.mu.Lock()
	a.now = now
	a.mu.Unlock()
}

// Now is the authority's current time.
func (a *Authority) Now() time.Time {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.now()
}

// PublicKey is the verification key.
func (a *Authority) PublicKey() *rsa.PublicKey { return &a.key.PublicKey }

// KeyID is the "kid" of the signing key.
func (a *Authority) KeyID() string { return a.kid }

// Issue signs the claims as an RS256 JWT.
func (a *Authority) Issue(c AccessClaims) (string, error) {
	header, _ := json.Marshal(map[string]string{"typ": "JWT", "alg": "RS256", "kid": a.kid})
	payload, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	signing := b64(header) + "." + b64(payload)
	digest := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, a.key, crypto.SHA256, digest[:])
	if err != nil {
		return "", err
	}
	return signing + "." + b64(sig), nil
}

// ErrTokenExpired is returned by Verify for a token past its exp.
var ErrTokenExpired = errors.New("token expired")

// Verify checks the signature, the time window (with 5 minutes of skew, as
// Azure services allow) and, when audiences are given, that aud is one of
// them (compared without a trailing slash). It never echoes the token.
func (a *Authority) Verify(raw string, audiences ...string) (*AccessClaims, error) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return nil, errors.New("token is not a JWS compact serialization")
	}
	var header struct {
		Alg, Kid string
	}
	hb, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil || json.Unmarshal(hb, &header) != nil {
		return nil, errors.New("token header is not base64url JSON")
	}
	if header.Alg != "RS256" || header.Kid != a.kid {
		return nil, errors.New("token was not issued by this emulator")
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return nil, errors.New("token signature is not base64url")
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if rsa.VerifyPKCS1v15(&a.key.PublicKey, crypto.SHA256, digest[:], sig) != nil {
		return nil, errors.New("token signature is invalid")
	}
	pb, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, errors.New("token payload is not base64url")
	}
	var c AccessClaims
	if err := json.Unmarshal(pb, &c); err != nil {
		return nil, errors.New("token payload is not JSON")
	}
	now := a.Now().Unix()
	const skew = 300
	if now > c.Exp+skew {
		return &c, ErrTokenExpired
	}
	if now+skew < c.Nbf {
		return &c, errors.New("token is not yet valid")
	}
	if len(audiences) > 0 {
		ok := false
		for _, aud := range audiences {
			if strings.TrimSuffix(c.Aud, "/") == strings.TrimSuffix(aud, "/") {
				ok = true
			}
		}
		if !ok {
			return &c, fmt.Errorf("token audience %q is not %s", c.Aud, strings.Join(audiences, " or "))
		}
	}
	return &c, nil
}

// JWKS returns the JSON Web Key Set document with the verification key.
func (a *Authority) JWKS() []byte {
	pub := a.key.PublicKey
	doc, _ := json.Marshal(map[string]any{"keys": []map[string]any{{
		"kty": "RSA", "use": "sig", "kid": a.kid, "alg": "RS256",
		"n": b64(pub.N.Bytes()), "e": b64(big.NewInt(int64(pub.E)).Bytes()),
	}}})
	return doc
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
