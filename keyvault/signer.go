package keyvault

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"

	"github.com/kvassert/kvassert/internal/inputerr"
	"github.com/kvassert/kvassert/internal/kvclient"
	"github.com/kvassert/kvassert/internal/kvid"
	"github.com/kvassert/kvassert/internal/obs"
)

// Signer is a crypto.Signer over a Key Vault or Managed HSM key. Each
// signature is one keys/sign call; the private key never leaves the service.
// Throttling (429) is waited out at the vault's Throttle within the caller's
// context and at most SignerOptions.MaxThrottleWait. A signer always signs with one
// key version, the one its public key belongs to (see NewSigner). Safe for
// concurrent use.
type Signer struct {
	client  *azkeys.Client
	id      kvid.ObjectID
	pub     crypto.PublicKey
	keySize int // RSA modulus bytes or EC field bytes
	// learned is the key version the first signature was made with, when
	// id has none (see pinFrom).
	learned atomic.Pointer[string]
	// throttled is when the current run of 429 answers began (unix ns), 0
	// when the last answer was not a 429.
	throttled atomic.Int64
	gate      Throttle
	maxWait   time.Duration // 0: defaultMaxThrottleWait
	tel       *obs.KeyVault // the vault's instruments (SignerOptions.Telemetry)
}

// signer returns a Signer for the key id over client, paced by the
// options' Throttle and reporting to tel; its public key is set by the
// caller.
func (o *SignerOptions) signer(client *azkeys.Client, id kvid.ObjectID, tel *obs.KeyVault) *Signer {
	return &Signer{client: client, id: id, gate: o.throttle(id.Vault), maxWait: o.maxThrottleWait(), tel: tel}
}

// ThrottledSince reports whether the vault is throttling this key's signs
// (its last answer was 429 after retries) and since when.
func (s *Signer) ThrottledSince() (time.Time, bool) {
	if ns := s.throttled.Load(); ns != 0 {
		return time.Unix(0, ns), true
	}
	return time.Time{}, false
}

// NewSigner returns a signer for the key keyID ("https://{vault}/keys/{name}[/{version}]")
// in a Key Vault or Managed HSM (https on an Azure cloud's vault domains;
// https on this machine only with AllowLoopback). cred needs keys/sign on
// the key (and keys/get without PublicKey). Bad input is refused with a
// *kvassert.InputError naming it.
//
// Without opts.PublicKey, the public key is read from the vault (one
// keys/get call, needing the keys/get permission) and the signer is pinned
// to the version read, so that a later rotation of the key does not make it
// sign with a key other than the one it reports. Give PublicKey (e.g. from
// the certificate) to need only keys/sign and make no call at all here;
// with an unversioned keyID the signer then learns the version from its
// first signature, which it checks against PublicKey (a rotated key whose
// current version does not match is refused with an error), and keeps
// signing with it. Pin the version in keyID in production all the same:
// that is the one form that does not depend on what the vault's current
// version is when the process starts.
func NewSigner(ctx context.Context, keyID string, cred azcore.TokenCredential, opts *SignerOptions) (*Signer, error) {
	id, err := kvid.ParseKeyID(keyID)
	if err != nil {
		return nil, err
	}
	client, err := opts.keysClient(id.Vault, cred)
	if err != nil {
		return nil, err
	}
	s := opts.signer(client, id, obs.NewKeyVault(opts.telemetry(), id.Vault.Host))
	pub := opts.publicKey()
	if pub == nil {
		resp, err := client.GetKey(ctx, id.Name, id.Version, nil)
		if err != nil {
			return nil, fmt.Errorf("keyvault: reading key %s: %w", id, kvclient.Sanitize(err))
		}
		if pub, err = publicKey(resp.Key); err != nil {
			return nil, fmt.Errorf("keyvault: key %s: %w", id, err)
		}
		if s.id.Version == "" {
			if s.id.Version, err = readVersion(id, resp.Key.KID); err != nil {
				return nil, err
			}
		}
	}
	if err := s.setPublic(pub); err != nil {
		return nil, err
	}
	return s, nil
}

// readVersion is the version of the key the vault answered for id.
func readVersion(id kvid.ObjectID, kid *azkeys.ID) (string, error) {
	if kid == nil || kid.Version() == "" || !strings.EqualFold(kid.Name(), id.Name) || !kvid.ValidVersion(kid.Version()) {
		return "", fmt.Errorf("keyvault: the vault did not name the version of key %s it returned; give the versioned key ID (https://{vault}/keys/%s/{version})", id, id.Name)
	}
	return kid.Version(), nil
}

func (s *Signer) setPublic(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		s.keySize = (k.N.BitLen() + 7) / 8
	case *ecdsa.PublicKey:
		s.keySize = (k.Curve.Params().BitSize + 7) / 8
	default:
		return inputerr.New("keyvault", "PublicKey", "unsupported public key type %T (RSA or EC only)", pub)
	}
	s.pub = pub
	return nil
}

// KeyID is the key identifier the signer uses: versioned once the version
// is known (given, read by NewSigner or learned from the first signature).
func (s *Signer) KeyID() string { return s.current().String() }

// current is the signer's key ID with the version it signs with, when known.
func (s *Signer) current() kvid.ObjectID {
	id := s.id
	if id.Version == "" {
		if v := s.learned.Load(); v != nil {
			id.Version = *v
		}
	}
	return id
}

// Public returns the public key.
func (s *Signer) Public() crypto.PublicKey { return s.pub }

// Sign signs digest with context.Background(); prefer SignContext.
func (s *Signer) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return s.SignContext(context.Background(), digest, opts)
}

// SignContext signs a digest in the vault. opts selects the algorithm:
// *rsa.PSSOptions gives PS256/384/512 (the salt length must be the hash
// length or PSSSaltLengthAuto; Key Vault always uses the hash length), a
// plain crypto.Hash gives RS256/384/512 for RSA keys and ES256/384/512 for EC
// keys. EC signatures are returned ASN.1 encoded, as crypto.Signer requires.
func (s *Signer) SignContext(ctx context.Context, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts == nil {
		return nil, inputErr("sign options", "sign options are required (crypto.SHA256 or *rsa.PSSOptions)")
	}
	alg, err := s.algorithm(opts)
	if err != nil {
		return nil, err
	}
	if len(digest) != opts.HashFunc().Size() {
		return nil, inputErr("digest", "digest is %d bytes, %s needs %d", len(digest), alg, opts.HashFunc().Size())
	}
	id := s.current()
	ctx, end := s.tel.StartSign(ctx)
	resp, err := s.sign(ctx, id.Version, alg, digest)
	end(err)
	if err != nil {
		return nil, fmt.Errorf("keyvault: signing with %s: %w", id, err)
	}
	sig := resp.Result
	if _, isEC := s.pub.(*ecdsa.PublicKey); isEC {
		if sig, err = ecdsaASN1(sig, s.keySize); err != nil {
			return nil, err
		}
	} else if len(sig) != s.keySize {
		return nil, fmt.Errorf("keyvault: %s returned a %d-byte signature for a %d-byte key", id, len(sig), s.keySize)
	}
	if id.Version == "" {
		if err := s.pinFrom(resp.KID, digest, sig, opts); err != nil {
			return nil, err
		}
	}
	return sig, nil
}

// pinFrom pins an unversioned signer to the key version that made its first
// signature (the kid of the sign answer), once that signature verifies with
// the signer's public key: the vault signs with the key's current version,
// which after a rotation is not the key of the certificate the signer was
// given.
func (s *Signer) pinFrom(kid *azkeys.ID, digest, sig []byte, opts crypto.SignerOpts) error {
	if !s.verifies(digest, sig, opts) {
		v := "?"
		if kid != nil {
			v = kid.Version()
		}
		return fmt.Errorf("keyvault: key %s signed with its current version %s, whose public key is not the one this signer was given (the certificate's): the key was rotated after the certificate was made; give the certificate's versioned key ID (its kid, https://{vault}/keys/%s/{version})", s.id, v, s.id.Name)
	}
	if kid == nil || !strings.EqualFold(kid.Name(), s.id.Name) || !kvid.ValidVersion(kid.Version()) {
		return nil // nothing to pin to; the signature itself is good
	}
	v := kid.Version()
	s.learned.CompareAndSwap(nil, &v)
	return nil
}

// verifies checks a signature with the signer's public key.
func (s *Signer) verifies(digest, sig []byte, opts crypto.SignerOpts) bool {
	switch k := s.pub.(type) {
	case *rsa.PublicKey:
		if _, ok := opts.(*rsa.PSSOptions); ok {
			return rsa.VerifyPSS(k, opts.HashFunc(), digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil
		}
		return rsa.VerifyPKCS1v15(k, opts.HashFunc(), digest, sig) == nil
	case *ecdsa.PublicKey:
		return ecdsa.VerifyASN1(k, digest, sig)
	}
	return false
}

func (s *Signer) algorithm(opts crypto.SignerOpts) (azkeys.SignatureAlgorithm, error) {
	h := opts.HashFunc()
	bits := map[crypto.Hash]string{crypto.SHA256: "256", crypto.SHA384: "384", crypto.SHA512: "512"}[h]
	if bits == "" {
		return "", inputErr("sign options", "hash %v is not supported (SHA-256, SHA-384 or SHA-512)", h)
	}
	switch s.pub.(type) {
	case *rsa.PublicKey:
		if pss, ok := opts.(*rsa.PSSOptions); ok {
			if pss.SaltLength != rsa.PSSSaltLengthEqualsHash && pss.SaltLength != rsa.PSSSaltLengthAuto && pss.SaltLength != h.Size() {
				return "", inputErr("sign options", "PSS salt length %d is not supported; Key Vault uses the hash length", pss.SaltLength)
			}
			return azkeys.SignatureAlgorithm("PS" + bits), nil
		}
		return azkeys.SignatureAlgorithm("RS" + bits), nil
	case *ecdsa.PublicKey:
		if _, ok := opts.(*rsa.PSSOptions); ok {
			return "", inputErr("sign options", "PSS options given for an EC key")
		}
		return azkeys.SignatureAlgorithm("ES" + bits), nil
	}
	return "", fmt.Errorf("keyvault: unsupported key type %T", s.pub)
}

// ecdsaASN1 turns Key Vault's raw r||s into the ASN.1 form crypto.Signer uses.
func ecdsaASN1(raw []byte, size int) ([]byte, error) {
	if len(raw) != 2*size {
		return nil, fmt.Errorf("keyvault: EC signature is %d bytes, want %d", len(raw), 2*size)
	}
	var b cryptobyte.Builder
	b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1BigInt(new(big.Int).SetBytes(raw[:size]))
		b.AddASN1BigInt(new(big.Int).SetBytes(raw[size:]))
	})
	return b.Bytes()
}

// publicKey converts a JSON Web Key from the vault to a Go public key.
func publicKey(k *azkeys.JSONWebKey) (crypto.PublicKey, error) {
	if k == nil || k.Kty == nil {
		return nil, errors.New("the vault returned no key material")
	}
	switch *k.Kty {
	case azkeys.KeyTypeRSA, azkeys.KeyTypeRSAHSM:
		if len(k.N) == 0 || len(k.E) == 0 || len(k.E) > 4 {
			return nil, errors.New("the vault returned an RSA key without a usable n/e")
		}
		e := new(big.Int).SetBytes(k.E)
		return &rsa.PublicKey{N: new(big.Int).SetBytes(k.N), E: int(e.Int64())}, nil
	case azkeys.KeyTypeEC, azkeys.KeyTypeECHSM:
		var curve elliptic.Curve
		switch {
		case k.Crv == nil:
			return nil, errors.New("the vault returned an EC key without a curve")
		case *k.Crv == azkeys.CurveNameP256:
			curve = elliptic.P256()
		case *k.Crv == azkeys.CurveNameP384:
			curve = elliptic.P384()
		case *k.Crv == azkeys.CurveNameP521:
			curve = elliptic.P521()
		default:
			return nil, fmt.Errorf("EC curve %s is not supported", *k.Crv)
		}
		pub := &ecdsa.PublicKey{Curve: curve, X: new(big.Int).SetBytes(k.X), Y: new(big.Int).SetBytes(k.Y)}
		if !curve.IsOnCurve(pub.X, pub.Y) { //nolint:staticcheck // validation of untrusted input
			return nil, errors.New("the vault returned an EC point that is not on its curve")
		}
		return pub, nil
	}
	return nil, fmt.Errorf("key type %s cannot sign", *k.Kty)
}
