package graph

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // x5t is a SHA-1 thumbprint by definition
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math"
	"strings"
	"time"

	"github.com/kvassert/kvassert/kvasserttest/internal/entra"
)

// Proof rules (Graph documentation, "Generate proof of possession tokens for
// rolling keys").
const (
	// ProofAudience is the aud of every proof: the Azure AD Graph app ID.
	ProofAudience = "00000002-0000-0000-c000-000000000000"
	// MaxProofLifetime bounds exp - nbf.
	MaxProofLifetime = 10 * time.Minute
	// clockSkew is allowed either way on nbf and exp, as the emulator's
	// token service allows for client assertions.
	clockSkew = 5 * time.Minute
)

type proofHeader struct {
	Alg string `json:"alg"`
	X5t string `json:"x5t"`
}

type proofClaims struct {
	Aud json.RawMessage `json:"aud"`
	Iss string          `json:"iss"`
	Nbf json.RawMessage `json:"nbf"`
	Exp json.RawMessage `json:"exp"`
}

// checkProof validates a proof of possession for the app whose credentials
// are creds, and returns the credential that signed it. Messages name the
// defect but never echo the proof.
func checkProof(raw string, app entra.App, creds []entra.KeyCredential, now time.Time) (*entra.KeyCredential, *graphError) {
	p, gerr := parseProof(raw)
	if gerr != nil {
		return nil, gerr
	}
	if p.header.Alg != "RS256" {
		return nil, badProof("alg %q is not supported: sign the proof with RS256.", truncate(p.header.Alg))
	}
	if gerr := checkProofClaims(p.claims, app, now); gerr != nil {
		return nil, gerr
	}
	kc, gerr := proofCredential(p.header, creds, now)
	if gerr != nil {
		return nil, gerr
	}
	pub, ok := kc.Certificate.PublicKey.(*rsa.PublicKey)
	if !ok {
		return nil, badProof("the signing certificate's key is not RSA.")
	}
	digest := sha256.Sum256([]byte(p.signed))
	if rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], p.sig) != nil {
		return nil, badProof("the signature does not verify with the certificate named by x5t.")
	}
	return kc, nil
}

// parsedProof is a proof split into its parts.
type parsedProof struct {
	header proofHeader
	claims proofClaims
	signed string // header.payload, as sent
	sig    []byte
}

// parseProof decodes the JWS compact serialization of a proof.
func parseProof(raw string) (*parsedProof, *graphError) {
	if raw == "" {
		return nil, badProof("the proof is missing: give a JWT signed with the key of one of the application's current certificates.")
	}
	if strings.Contains(raw, "=") {
		return nil, badProof("the JWT has base64 padding ('='): encode its parts as base64url without padding.")
	}
	parts := strings.Split(raw, ".")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return nil, badProof("not a JWS compact serialization (header.payload.signature).")
	}
	p := &parsedProof{signed: parts[0] + "." + parts[1]}
	hb, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	pb, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	sig, err3 := base64.RawURLEncoding.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil || json.Unmarshal(hb, &p.header) != nil || json.Unmarshal(pb, &p.claims) != nil {
		return nil, badProof("the JWT parts are not base64url-encoded JSON.")
	}
	p.sig = sig
	return p, nil
}

// checkProofClaims checks the audience, the issuer and the validity
// window of a proof.
func checkProofClaims(c proofClaims, app entra.App, now time.Time) *graphError {
	var aud string
	if json.Unmarshal(c.Aud, &aud) != nil || !strings.EqualFold(aud, ProofAudience) {
		return badProof("aud must be %s.", ProofAudience)
	}
	if !strings.EqualFold(c.Iss, app.ObjectID) {
		if strings.EqualFold(c.Iss, app.ClientID) {
			return badProof("iss is the application (client) ID: it must be the application's object ID.")
		}
		return badProof("iss must be the application's object ID.")
	}
	nbf, okN := numericDate(c.Nbf)
	exp, okE := numericDate(c.Exp)
	switch {
	case !okN || !okE:
		return badProof("nbf and exp are required (NumericDate).")
	case !exp.After(nbf) || exp.Sub(nbf) > MaxProofLifetime:
		return badProof("exp - nbf must be positive and at most 10 minutes.")
	case now.Add(clockSkew).Before(nbf):
		return badProof("the proof is not yet valid (nbf is in the future).")
	case now.After(exp.Add(clockSkew)):
		return badProof("the proof has expired.")
	}
	return nil
}

// proofCredential finds the application's credential named by the
// header's x5t and checks that it may prove possession now.
func proofCredential(h proofHeader, creds []entra.KeyCredential, now time.Time) (*entra.KeyCredential, *graphError) {
	thumb, ok := decodeX5t(h.X5t)
	if !ok {
		return nil, badProof("the header has no x5t (SHA-1 thumbprint of the signing certificate).")
	}
	var kc *entra.KeyCredential
	for i := range creds {
		sum := sha1.Sum(creds[i].Certificate.Raw) //nolint:gosec
		if bytes.Equal(sum[:], thumb) {
			kc = &creds[i]
			break
		}
	}
	switch {
	case kc == nil:
		return nil, badProof("the x5t names no certificate of the application.")
	case kc.Revoked:
		return nil, badProof("the signing certificate was revoked.")
	case now.Before(kc.Certificate.NotBefore) || now.After(kc.Certificate.NotAfter):
		return nil, badProof("the signing certificate is not within its validity period: only a currently valid certificate can prove possession.")
	}
	return kc, nil
}

// decodeX5t accepts base64url (as JOSE says) and standard base64, as the
// emulator's token service does.
func decodeX5t(s string) ([]byte, bool) {
	for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.RawStdEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == sha1.Size {
			return b, true
		}
	}
	return nil, false
}

// numericDate decodes a JSON number of seconds since the epoch.
func numericDate(raw json.RawMessage) (time.Time, bool) {
	var f float64
	if len(raw) == 0 || json.Unmarshal(raw, &f) != nil || math.IsNaN(f) || f < 0 || f > 1e11 {
		return time.Time{}, false
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true
}
