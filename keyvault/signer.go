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
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
)

// Options configure the Azure SDK clients this package creates.
type Options struct {
	// ClientOptions for azkeys and azcertificates: transport, retries,
	// logging, cloud. The zero value uses azcore's defaults (3 retries on
	// 408/429/5xx, honouring Retry-After).
	ClientOptions policy.ClientOptions
	// AllowLoopback accepts https vault URLs on this machine (127.0.0.1, [::1],
	// localhost), for emulators that cannot be reached through a re-routing
	// transport. Off by default: a vault URL from configuration must never
	// make the app send its Key Vault token to a local listener.
	AllowLoopback bool
}

// check refuses a loopback vault unless AllowLoopback is set.
func (o *Options) check(v Vault) error {
	if v.Loopback && (o == nil || !o.AllowLoopback) {
		return fmt.Errorf("keyvault: %s is an address on this machine; only Azure vault hosts are used unless Options.AllowLoopback is set (for emulators)", v.Host)
	}
	return nil
}

func (o *Options) keysClient(v Vault, cred azcore.TokenCredential) (*azkeys.Client, error) {
	if cred == nil {
		return nil, errNoCredential
	}
	if err := o.check(v); err != nil {
		return nil, err
	}
	var co policy.ClientOptions
	if o != nil {
		co = o.ClientOptions
	}
	co.PerRetryPolicies = append(append([]policy.Policy(nil), co.PerRetryPolicies...), statusPolicy{})
	if co.Retry.StatusCodes == nil {
		// 429 is left to Signer.sign and its per-vault gate.
		co.Retry.StatusCodes = []int{http.StatusRequestTimeout, http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout}
	}
	// An emulator on a loopback address cannot pass the challenge's
	// resource-domain check; real vault hosts always keep it on.
	return azkeys.NewClient(v.URL, cred, &azkeys.ClientOptions{ClientOptions: co, DisableChallengeResourceVerification: v.Loopback})
}

// Signer is a crypto.Signer over a Key Vault or Managed HSM key. Each
// signature is one keys/sign call; the private key never leaves the service.
// Throttling (429) is waited out within the caller's context. Safe for
// concurrent use.
type Signer struct {
	client  *azkeys.Client
	id      ObjectID
	pub     crypto.PublicKey
	keySize int // RSA modulus bytes or EC field bytes
	// throttled is when the current run of 429 answers began (unix ns), 0
	// when the last answer was not a 429.
	throttled atomic.Int64
	gate      *holdoff
}

// ThrottledSince reports whether the vault is throttling this key's signs
// (its last answer was 429 after retries) and since when.
func (s *Signer) ThrottledSince() (time.Time, bool) {
	if ns := s.throttled.Load(); ns != 0 {
		return time.Unix(0, ns), true
	}
	return time.Time{}, false
}

// NewSigner returns a signer for the key keyID ("https://{vault}/keys/{name}[/{version}]";
// pin the version in production so a signature always matches its
// certificate). When pub is nil, the public key is read from the vault (one
// keys/get call, needing the keys/get permission); give it (e.g. from the
// certificate) to need only keys/sign and make no call at all here.
func NewSigner(ctx context.Context, keyID string, cred azcore.TokenCredential, pub crypto.PublicKey, opts *Options) (*Signer, error) {
	id, err := ParseKeyID(keyID)
	if err != nil {
		return nil, err
	}
	client, err := opts.keysClient(id.Vault, cred)
	if err != nil {
		return nil, err
	}
	s := &Signer{client: client, id: id, gate: gateFor(id.Vault.Host)}
	if pub == nil {
		resp, err := client.GetKey(ctx, id.Name, id.Version, nil)
		if err != nil {
			return nil, fmt.Errorf("keyvault: reading key %s: %w", id, err)
		}
		if pub, err = publicKey(resp.Key); err != nil {
			return nil, fmt.Errorf("keyvault: key %s: %w", id, err)
		}
	}
	if err := s.setPublic(pub); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Signer) setPublic(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		s.keySize = (k.N.BitLen() + 7) / 8
	case *ecdsa.PublicKey:
		s.keySize = (k.Curve.Params().BitSize + 7) / 8
	default:
		return fmt.Errorf("keyvault: unsupported public key type %T (RSA or EC only)", pub)
	}
	s.pub = pub
	return nil
}

// KeyID is the key identifier the signer uses.
func (s *Signer) KeyID() string { return s.id.String() }

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
		return nil, errors.New("keyvault: sign options are required (crypto.SHA256 or *rsa.PSSOptions)")
	}
	alg, err := s.algorithm(opts)
	if err != nil {
		return nil, err
	}
	if len(digest) != opts.HashFunc().Size() {
		return nil, fmt.Errorf("keyvault: digest is %d bytes, %s needs %d", len(digest), alg, opts.HashFunc().Size())
	}
	resp, err := s.sign(ctx, alg, digest)
	if err != nil {
		return nil, fmt.Errorf("keyvault: signing with %s: %w", s.id, err)
	}
	sig := resp.Result
	if _, isEC := s.pub.(*ecdsa.PublicKey); isEC {
		return ecdsaASN1(sig, s.keySize)
	}
	if len(sig) != s.keySize {
		return nil, fmt.Errorf("keyvault: %s returned a %d-byte signature for a %d-byte key", s.id, len(sig), s.keySize)
	}
	return sig, nil
}

// sign calls keys/sign, waiting out throttling for as long as ctx allows.
// The vault's sign limit is shared by every client of the vault, so all the
// signers of this process for one vault share a hold-off gate: a 429 closes
// it for Retry-After (else 1 s) and every signer waits for it to reopen
// (with up to 250 ms of jitter) instead of each backing off on its own. The
// keys client leaves 429 to this loop (see keysClient); other transient
// answers are retried by azcore.
func (s *Signer) sign(ctx context.Context, alg azkeys.SignatureAlgorithm, digest []byte) (azkeys.SignResponse, error) {
	call := &signCall{signer: s}
	last := &call.last
	ctx = context.WithValue(ctx, lastStatusKey{}, call)
	for {
		if until, shut := s.gate.shutUntil(); shut {
			if d, ok := ctx.Deadline(); ok && d.Before(until) {
				// Waiting cannot help: say so at once.
				return azkeys.SignResponse{}, fmt.Errorf("Key Vault is throttling this vault (429: the vault's request limit) for %s more, past the caller's deadline", time.Until(until).Round(time.Second))
			}
			if err := s.gate.wait(ctx); err != nil {
				return azkeys.SignResponse{}, fmt.Errorf("Key Vault kept throttling (429: the vault's request limit) until the caller's deadline: %w", err)
			}
		} else if err := ctx.Err(); err != nil {
			return azkeys.SignResponse{}, err
		}
		resp, err := s.client.Sign(ctx, s.id.Name, s.id.Version, azkeys.SignParameters{Algorithm: &alg, Value: digest}, nil)
		if err != nil && ctx.Err() != nil && last.Load() == http.StatusTooManyRequests {
			return resp, fmt.Errorf("Key Vault kept throttling (429: the vault's request limit) until the caller's deadline: %w", err)
		}
		var re *azcore.ResponseError
		if err == nil || !errors.As(err, &re) || re.StatusCode != http.StatusTooManyRequests {
			return resp, err
		}
		hold := retryAfter(re.RawResponse)
		if hold <= 0 {
			hold = time.Second
		}
		s.gate.close(hold)
		if d, ok := ctx.Deadline(); ok && time.Until(d) < hold {
			return resp, fmt.Errorf("Key Vault is throttling (429: the vault's request limit) for longer than the caller's deadline: %w", err)
		}
	}
}

// holdoff is a per-vault gate shared by the process's signers.
type holdoff struct {
	notBefore atomic.Int64 // unix ns
}

// gates holds one *holdoff per vault host.
var gates sync.Map

func gateFor(host string) *holdoff {
	g, _ := gates.LoadOrStore(strings.ToLower(host), new(holdoff))
	return g.(*holdoff)
}

// shutUntil reports whether the gate is shut, and until when.
func (g *holdoff) shutUntil() (time.Time, bool) {
	until := time.Unix(0, g.notBefore.Load())
	return until, time.Now().Before(until)
}

// close keeps the gate shut for at least d from now.
func (g *holdoff) close(d time.Duration) {
	until := time.Now().Add(d).UnixNano()
	for {
		cur := g.notBefore.Load()
		if cur >= until || g.notBefore.CompareAndSwap(cur, until) {
			return
		}
	}
}

// wait returns once the gate is open (plus jitter when it was shut), or
// with ctx's error.
func (g *holdoff) wait(ctx context.Context) error {
	for {
		d := time.Until(time.Unix(0, g.notBefore.Load()))
		if d <= 0 {
			return ctx.Err()
		}
		t := time.NewTimer(d + rand.N(250*time.Millisecond))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// lastStatusKey carries a *signCall in a request context; statusPolicy
// records there the status of every attempt (azcore's retries included), so
// that a context error can be told apart from throttling that lasted until
// the deadline (azcore reports only the context error then), and so that
// the signer knows at once when the vault starts and stops throttling.
type lastStatusKey struct{}

type signCall struct {
	last   atomic.Int32
	signer *Signer
}

type statusPolicy struct{}

func (statusPolicy) Do(req *policy.Request) (*http.Response, error) {
	resp, err := req.Next()
	if call, ok := req.Raw().Context().Value(lastStatusKey{}).(*signCall); ok && resp != nil {
		call.last.Store(int32(resp.StatusCode))
		if resp.StatusCode == http.StatusTooManyRequests {
			call.signer.throttled.CompareAndSwap(0, time.Now().UnixNano())
		} else {
			call.signer.throttled.Store(0)
		}
	}
	return resp, err
}

// retryAfter reads a Retry-After header in seconds (capped at 60 s, as azcore does).
func retryAfter(resp *http.Response) time.Duration {
	if resp == nil {
		return 0
	}
	secs, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if err != nil || secs <= 0 {
		return 0
	}
	return min(time.Duration(secs)*time.Second, time.Minute)
}

func (s *Signer) algorithm(opts crypto.SignerOpts) (azkeys.SignatureAlgorithm, error) {
	h := opts.HashFunc()
	bits := map[crypto.Hash]string{crypto.SHA256: "256", crypto.SHA384: "384", crypto.SHA512: "512"}[h]
	if bits == "" {
		return "", fmt.Errorf("keyvault: hash %v is not supported (SHA-256, SHA-384 or SHA-512)", h)
	}
	switch s.pub.(type) {
	case *rsa.PublicKey:
		if pss, ok := opts.(*rsa.PSSOptions); ok {
			if pss.SaltLength != rsa.PSSSaltLengthEqualsHash && pss.SaltLength != rsa.PSSSaltLengthAuto && pss.SaltLength != h.Size() {
				return "", fmt.Errorf("keyvault: PSS salt length %d is not supported; Key Vault uses the hash length", pss.SaltLength)
			}
			return azkeys.SignatureAlgorithm("PS" + bits), nil
		}
		return azkeys.SignatureAlgorithm("RS" + bits), nil
	case *ecdsa.PublicKey:
		if _, ok := opts.(*rsa.PSSOptions); ok {
			return "", errors.New("keyvault: PSS options given for an EC key")
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
