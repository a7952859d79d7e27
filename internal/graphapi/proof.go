package graphapi

import (
	"context"
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

	"github.com/kvassert/kvassert/assertion"
	"github.com/kvassert/kvassert/internal/entraid"
	"github.com/kvassert/kvassert/internal/jwtassert"
)

// ProofAudience is the audience of every proof of possession: the ID of the
// Azure AD Graph resource, as Microsoft Graph's documentation requires.
const ProofAudience = "00000002-0000-0000-c000-000000000000"

// ProofLifetime is exp - nbf of a proof: Graph accepts at most 10 minutes.
const ProofLifetime = 10 * time.Minute

// Proof returns a proof-of-possession JWT for Microsoft Graph's addKey and
// removeKey on the application whose object ID (not client ID) is
// appObjectID, signed by signer, the key of cert, which must be one of the
// app's currently registered and valid certificates.
//
// The token is what .NET's X509SigningCredentials produces and Graph's
// documentation shows: header {"alg":"RS256","typ":"JWT","x5t":<base64url
// SHA-1 of cert>}, claims {"aud":ProofAudience,"iss":appObjectID,"nbf":now,
// "exp":now+10 min}, base64url without padding (padding is refused with
// Authentication_MissingOrMalformed). When signer implements
// assertion.ContextSigner (a Key Vault key does), ctx reaches the sign call.
func Proof(ctx context.Context, cert *x509.Certificate, signer crypto.Signer, appObjectID string, now time.Time) (string, error) {
	if cert == nil || signer == nil {
		return "", errors.New("rotation: a proof needs the certificate and its signer")
	}
	if !entraid.ValidClientID(appObjectID) {
		return "", fmt.Errorf("rotation: the application object ID (%d bytes) is not a GUID; it is the app registration's Object ID, not its client ID", len(appObjectID))
	}
	if _, ok := cert.PublicKey.(*rsa.PublicKey); !ok {
		return "", fmt.Errorf("rotation: the certificate has a %T key; proofs are RS256", cert.PublicKey)
	}
	if now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		return "", fmt.Errorf("rotation: the signing certificate is not valid now (valid %s to %s); Graph accepts proofs only from a currently valid certificate",
			cert.NotBefore.UTC().Format(time.RFC3339), cert.NotAfter.UTC().Format(time.RFC3339))
	}
	x5t, _ := jwtassert.Thumbprints(cert)
	header, err := json.Marshal(struct {
		Alg string `json:"alg"`
		Typ string `json:"typ"`
		X5T string `json:"x5t"`
	}{"RS256", "JWT", x5t})
	if err != nil {
		return "", err
	}
	nbf := now.Unix()
	claims, err := json.Marshal(struct {
		Aud string `json:"aud"`
		Iss string `json:"iss"`
		Nbf int64  `json:"nbf"`
		Exp int64  `json:"exp"`
	}{ProofAudience, strings.ToLower(appObjectID), nbf, nbf + int64(ProofLifetime/time.Second)})
	if err != nil {
		return "", err
	}
	input := base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(claims)
	digest := sha256.Sum256([]byte(input))
	var sig []byte
	if cs, ok := signer.(assertion.ContextSigner); ok {
		sig, err = cs.SignContext(ctx, digest[:], crypto.SHA256)
	} else {
		if err = ctx.Err(); err == nil {
			sig, err = signer.Sign(nil, digest[:], crypto.SHA256)
		}
	}
	if err != nil {
		return "", fmt.Errorf("rotation: signing the proof of possession: %w", err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}
