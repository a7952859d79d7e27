// Package dotnetref is a small Go rendition of the two Key Vault strategies
// of the .NET library Smartersoft.Identity.Client.Assertion, the library
// kvassert is the Go counterpart of. It exists only so that benchmarks can
// compare kvassert with what a port of the original would cost, call for
// call; it is not an API for users.
//
// What the .NET library does (read from its public source, latest version):
//
//   - WithKeyVaultCertificate(vaultUri, certificateName, credential) registers
//     an MSAL client-assertion callback that, for every assertion, calls
//     GetCertificateInfoFromKeyVault (a new CertificateClient, GET
//     certificates/{name}: the latest version's kid and the base64url SHA-1
//     thumbprint of its DER) and then GetSignedTokenWithKeyVaultKey. Nothing
//     is cached between assertions (the source says "should be cached!").
//   - WithKeyVaultKey(keyId, kid, credential) skips the certificate read:
//     the caller gives the key ID and the thumbprint.
//   - GetSignedTokenWithKeyVaultKey builds header {"alg":"RS256","typ":"JWT",
//     "x5t":thumbprint} and claims aud = MSAL's AssertionRequestOptions
//     .TokenEndpoint, iss = sub = client ID, a fresh jti, nbf = now,
//     exp = now + 300 s; it then creates a new CryptographyClient(keyId,
//     credential) and calls SignDataAsync(RS256, unsigned token).
//   - A new CryptographyClient initialises itself on its first operation by
//     reading the key (GET keys/{name}/{version}) so it could work locally;
//     a 403 makes it fall back to remote operations. A signing key is never
//     local, so every assertion pays that GET (or its 403) before the sign.
//
// So per assertion the certificate strategy costs three Key Vault round
// trips (certificate GET, key GET, sign) and the key strategy two (key GET,
// sign). Options.SkipKeyProbe drops the key GET, giving the idealised two
// and one round trips (a port that kept one CryptographyClient per key).
//
// Differences that do not change the cost: the assertion is built with
// kvassert's assertion package (which also writes an iat claim), and one
// azkeys / azcertificates client per vault is reused; the .NET SDK caches the
// Key Vault challenge process-wide and the credential caches its token, so a
// new .NET client per call makes no extra request either.
package dotnetref

import (
	"context"
	"crypto"
	"crypto/sha1" //nolint:gosec // x5t is a SHA-1 thumbprint by definition
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azcertificates"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"

	"github.com/kvassert/kvassert/assertion"
	"github.com/kvassert/kvassert/internal/jwtassert"
	"github.com/kvassert/kvassert/internal/kvid"
)

// Lifetime is the .NET library's assertion lifetime (300 seconds).
const Lifetime = 5 * time.Minute

// Options configure both strategies.
type Options struct {
	// ClientOptions for the azkeys and azcertificates clients.
	ClientOptions policy.ClientOptions
	// SkipKeyProbe drops the keys/get call that .NET's CryptographyClient
	// makes before its first operation (see the package documentation).
	SkipKeyProbe bool
}

// Source makes one client assertion; both strategies implement it.
type Source interface {
	Assertion(ctx context.Context, clientID, tokenEndpoint string) (string, error)
}

// Credential plugs a strategy into MSAL Go, as the .NET extension methods
// plug theirs into ConfidentialClientApplicationBuilder.WithClientAssertion:
// the callback runs on every token request MSAL sends.
func Credential(s Source) confidential.Credential {
	return confidential.NewCredFromAssertionCallback(func(ctx context.Context, o confidential.AssertionRequestOptions) (string, error) {
		return s.Assertion(ctx, o.ClientID, o.TokenEndpoint)
	})
}

// KeyStrategy is WithKeyVaultKey: a key ID and the certificate's SHA-1
// thumbprint given by the caller.
type KeyStrategy struct {
	builder *assertion.Builder
}

// NewKeyStrategy returns the key strategy for keyID (versioned, as a
// certificate's kid) and x5t (the certificate's base64url SHA-1 thumbprint,
// what the .NET library calls kid).
func NewKeyStrategy(keyID, x5t string, cred azcore.TokenCredential, o *Options) (*KeyStrategy, error) {
	if o == nil {
		o = &Options{}
	}
	thumb, err := jwtassert.ParseThumbprint(x5t)
	if err != nil {
		return nil, err
	}
	if len(thumb) != sha1.Size {
		return nil, errors.New("dotnetref: the .NET library sends a SHA-1 x5t")
	}
	s, err := newRemoteSigner(keyID, cred, o)
	if err != nil {
		return nil, err
	}
	b, err := assertion.New(nil, s, &assertion.Options{Thumbprint: thumb, Algorithm: assertion.RS256, Lifetime: Lifetime})
	if err != nil {
		return nil, err
	}
	return &KeyStrategy{builder: b}, nil
}

// Assertion implements Source: GET key (unless skipped), then one sign.
func (k *KeyStrategy) Assertion(ctx context.Context, clientID, tokenEndpoint string) (string, error) {
	return k.builder.Build(ctx, clientID, tokenEndpoint)
}

// CertificateStrategy is WithKeyVaultCertificate: every assertion reads the
// certificate (latest version) and then signs with its kid.
type CertificateStrategy struct {
	certs *azcertificates.Client
	name  string
	cred  azcore.TokenCredential
	opts  Options
	keys  *azkeys.Client // the vault's keys client, shared by every assertion
}

// NewCertificateStrategy returns the certificate strategy for certificate
// name in the vault at vaultURL.
func NewCertificateStrategy(vaultURL, name string, cred azcore.TokenCredential, o *Options) (*CertificateStrategy, error) {
	if o == nil {
		o = &Options{}
	}
	v, err := kvid.ParseVaultURL(vaultURL)
	if err != nil {
		return nil, err
	}
	if err := kvid.CheckName(name); err != nil {
		return nil, err
	}
	if cred == nil {
		return nil, errors.New("dotnetref: no credential")
	}
	certs, err := azcertificates.NewClient(v.URL, cred, &azcertificates.ClientOptions{ClientOptions: o.ClientOptions, DisableChallengeResourceVerification: v.Loopback})
	if err != nil {
		return nil, err
	}
	keys, err := azkeys.NewClient(v.URL, cred, &azkeys.ClientOptions{ClientOptions: o.ClientOptions, DisableChallengeResourceVerification: v.Loopback})
	if err != nil {
		return nil, err
	}
	return &CertificateStrategy{certs: certs, name: name, cred: cred, opts: *o, keys: keys}, nil
}

// Assertion implements Source: GET certificate, then the key strategy's work.
func (c *CertificateStrategy) Assertion(ctx context.Context, clientID, tokenEndpoint string) (string, error) {
	resp, err := c.certs.GetCertificate(ctx, c.name, "", nil)
	if err != nil {
		return "", fmt.Errorf("dotnetref: reading certificate %s: %w", c.name, err)
	}
	if resp.KID == nil || len(resp.CER) == 0 {
		return "", fmt.Errorf("dotnetref: certificate %s has no kid or no DER", c.name)
	}
	if _, err := x509.ParseCertificate(resp.CER); err != nil { // new X509Certificate2(Cer)
		return "", fmt.Errorf("dotnetref: certificate %s: %w", c.name, err)
	}
	thumb := sha1.Sum(resp.CER) //nolint:gosec // x5t
	id, err := kvid.ParseKeyID(string(*resp.KID))
	if err != nil {
		return "", err
	}
	s := &remoteSigner{client: c.keys, name: id.Name, version: id.Version, probe: !c.opts.SkipKeyProbe}
	b, err := assertion.New(nil, s, &assertion.Options{Thumbprint: thumb[:], Algorithm: assertion.RS256, Lifetime: Lifetime})
	if err != nil {
		return "", err
	}
	return b.Build(ctx, clientID, tokenEndpoint)
}

// remoteSigner is CryptographyClient.SignDataAsync(RS256, data) on a client
// used once: an initialising keys/get (unless probe is false), then keys/sign.
type remoteSigner struct {
	client        *azkeys.Client
	name, version string
	probe         bool
}

func newRemoteSigner(keyID string, cred azcore.TokenCredential, o *Options) (*remoteSigner, error) {
	id, err := kvid.ParseKeyID(keyID)
	if err != nil {
		return nil, err
	}
	if cred == nil {
		return nil, errors.New("dotnetref: no credential")
	}
	client, err := azkeys.NewClient(id.Vault.URL, cred, &azkeys.ClientOptions{ClientOptions: o.ClientOptions, DisableChallengeResourceVerification: id.Vault.Loopback})
	if err != nil {
		return nil, err
	}
	return &remoteSigner{client: client, name: id.Name, version: id.Version, probe: !o.SkipKeyProbe}, nil
}

// Public is unknown to a CryptographyClient that has not read its key.
func (r *remoteSigner) Public() crypto.PublicKey { return nil }

func (r *remoteSigner) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return r.SignContext(context.Background(), digest, opts)
}

func (r *remoteSigner) SignContext(ctx context.Context, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts == nil || opts.HashFunc() != crypto.SHA256 {
		return nil, errors.New("dotnetref: RS256 only")
	}
	if r.probe {
		// CryptographyClient.InitializeAsync: read the key; 403 means
		// "remote only" and is not an error.
		if _, err := r.client.GetKey(ctx, r.name, r.version, nil); err != nil {
			var re *azcore.ResponseError
			if !errors.As(err, &re) || re.StatusCode != http.StatusForbidden {
				return nil, fmt.Errorf("dotnetref: initialising the cryptography client: %w", err)
			}
		}
	}
	alg := azkeys.SignatureAlgorithmRS256
	resp, err := r.client.Sign(ctx, r.name, r.version, azkeys.SignParameters{Algorithm: &alg, Value: digest}, nil)
	if err != nil {
		return nil, fmt.Errorf("dotnetref: signing: %w", err)
	}
	return resp.Result, nil
}
