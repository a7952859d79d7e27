package proxy

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/internal/flight"
	"github.com/kvassert/kvassert/internal/kvid"
)

// maxEntries bounds each cache of the registry: a developer tool uses a
// handful of apps and certificates; the bound only stops a runaway client.
const maxEntries = 256

// createTimeout bounds the creation of a source (a keys/get call at most).
const createTimeout = time.Minute

// lazyMap creates values on first use and keeps them (at most maxEntries,
// evicting an arbitrary one beyond). Concurrent creations of the same key
// are merged by flight.Group, detached from the callers and bounded by
// createTimeout, as the library's own single-flights are. Failures are not
// kept: the next request tries again.
type lazyMap[V any] struct {
	flights flight.Group[string, V]
	mu      sync.Mutex
	m       map[string]V
}

func (l *lazyMap[V]) get(ctx context.Context, key string, create func(context.Context) (V, error)) (V, error) {
	if v, ok := l.lookup(key); ok {
		return v, nil
	}
	return l.flights.Do(ctx, key, createTimeout, func(cctx context.Context) (V, error) {
		// A creation that ended between lookup and Do has stored its value.
		if v, ok := l.lookup(key); ok {
			return v, nil
		}
		v, err := safeCreate(cctx, create)
		if err != nil {
			return v, err
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.m == nil {
			l.m = map[string]V{}
		}
		if len(l.m) >= maxEntries {
			for k := range l.m {
				delete(l.m, k)
				break
			}
		}
		l.m[key] = v
		return v, nil
	})
}

// safeCreate runs create, turning a panic (a credential or source with a
// bug) into errPanic: the creation runs on a goroutine of its own, where
// nothing else would recover it and the whole proxy would exit.
func safeCreate[V any](ctx context.Context, create func(context.Context) (V, error)) (v V, err error) {
	defer func() {
		if p := recover(); p != nil {
			var zero V
			v, err = zero, errPanic
		}
	}()
	return create(ctx)
}

func (l *lazyMap[V]) lookup(key string) (V, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	v, ok := l.m[key]
	return v, ok
}

func (l *lazyMap[V]) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}

// registry holds the sources and credentials the proxy has made: one
// kvassert.KeyVaultCertificateSource per vault certificate (shared by
// kv-certificate, kv-key-info and the managed identity routes, so the
// certificate is read once), one key source per (key, thumbprint), and one
// kvassert.Credential per (client ID, source) that serves every tenant, so
// tokens are cached by the library per tenant and scope.
type registry struct {
	s           *Server
	certSources lazyMap[*kvassert.KeyVaultCertificateSource]
	keySources  lazyMap[*kvassert.KeyVaultKeySource]
	fileSources lazyMap[kvassert.Source]
	creds       lazyMap[*kvassert.Credential]
}

func newRegistry(s *Server) *registry { return &registry{s: s} }

var (
	errNoVaultCredential   = errors.New("the proxy has no Key Vault credential")
	errNoForwardCredential = errors.New("the proxy has no credential to forward to")
)

func (g *registry) clientOptions() policy.ClientOptions {
	co := g.s.cfg.ClientOptions
	co.Cloud = g.s.cloud
	return co
}

// certSource returns the shared source of a vault certificate; vaultURL is
// normalised (kvid.ParseVaultURL).
func (g *registry) certSource(ctx context.Context, vaultURL, name string) (*kvassert.KeyVaultCertificateSource, error) {
	if g.s.cfg.KeyVaultCredential == nil {
		return nil, errNoVaultCredential
	}
	return g.certSources.get(ctx, vaultURL+"|"+strings.ToLower(name), func(context.Context) (*kvassert.KeyVaultCertificateSource, error) {
		var o kvassert.KeyVaultCertificateOptions
		o.ClientOptions = g.clientOptions()
		o.Logger = g.s.libLog
		return kvassert.NewKeyVaultCertificateSource(vaultURL, name, g.s.cfg.KeyVaultCredential, &o)
	})
}

// keySource returns the source of a vault key and certificate thumbprint
// (one keys/get call when first made, for the key's public half).
func (g *registry) keySource(ctx context.Context, keyID, thumbprint, thumbKey string) (*kvassert.KeyVaultKeySource, error) {
	if g.s.cfg.KeyVaultCredential == nil {
		return nil, errNoVaultCredential
	}
	return g.keySources.get(ctx, keyID+"|"+thumbKey, func(cctx context.Context) (*kvassert.KeyVaultKeySource, error) {
		var o kvassert.KeyVaultKeyOptions
		o.ClientOptions = g.clientOptions()
		o.Thumbprint = thumbprint
		return kvassert.NewKeyVaultKeySource(keyID, nil, g.s.cfg.KeyVaultCredential, &o)
	})
}

// fileSource returns the source of a local certificate.
func (g *registry) fileSource(ctx context.Context, lf *localFile) (kvassert.Source, error) {
	return g.fileSources.get(ctx, lf.key, func(context.Context) (kvassert.Source, error) {
		return g.s.files.source(lf)
	})
}

// token gets an app-only token for clientID in tenant with the source named
// srcKey, through the credential of (clientID, srcKey). Only the credential
// of the configured source (configuredSource) gets Options.SharedCache: a
// source the request picks must prove its key to Entra itself, never be
// served a token another credential stored.
func (g *registry) token(ctx context.Context, tenant, clientID, scope, srcKey string, src kvassert.Source) (azcore.AccessToken, error) {
	cred, err := g.credential(ctx, tenant, clientID, srcKey, src)
	if err != nil {
		return azcore.AccessToken{}, err
	}
	return safeGetToken(ctx, cred, policy.TokenRequestOptions{Scopes: []string{scope}, TenantID: tenant})
}

// credential returns the credential of (clientID, srcKey), made on first
// use (tenant is then its home tenant, which matters only when no tenant
// is named).
func (g *registry) credential(ctx context.Context, tenant, clientID, srcKey string, src kvassert.Source) (*kvassert.Credential, error) {
	clientID = strings.ToLower(clientID)
	key := clientID + "|" + srcKey
	return g.creds.get(ctx, key, func(context.Context) (*kvassert.Credential, error) {
		o := &kvassert.CredentialOptions{
			ClientOptions:              g.clientOptions(),
			AdditionallyAllowedTenants: []string{"*"},
			Logger:                     g.s.libLog,
		}
		if g.s.configuredSource(clientID, srcKey) {
			o.SharedCache = g.s.cfg.SharedCache
		}
		// The home tenant only matters when no tenant is named; every call
		// here names one, and "*" allows them all.
		return kvassert.NewCredential(tenant, clientID, src, o)
	})
}

// kvCertKey names the source of a vault certificate in the credential
// cache; vaultURL is normalised (kvid.ParseVaultURL).
func kvCertKey(vaultURL, name string) string {
	return "kv-cert|" + vaultURL + "|" + strings.ToLower(name)
}

// configuredSource reports whether (clientID, srcKey) is the proxy's
// configured source: the Key Vault certificate of Options.DefaultVault and
// DefaultCertificate, for DefaultClientID when one is set. Its tokens may be shared.
func (s *Server) configuredSource(clientID, srcKey string) bool {
	d := s.page
	if s.cfg.SharedCache == nil || d.KeyVaultURI == "" || d.CertificateName == "" {
		return false
	}
	if d.ClientID != "" && !strings.EqualFold(d.ClientID, clientID) {
		return false
	}
	return srcKey == kvCertKey(d.KeyVaultURI, d.CertificateName)
}

// safeGetToken is cred.GetToken with a panic (a credential with a bug)
// turned into errPanic on the request's goroutine.
func safeGetToken(ctx context.Context, cred azcore.TokenCredential, opts policy.TokenRequestOptions) (tok azcore.AccessToken, err error) {
	defer func() {
		if p := recover(); p != nil {
			tok, err = azcore.AccessToken{}, errPanic
		}
	}()
	return cred.GetToken(ctx, opts)
}

// vaultURL is the URL of a vault of the configured cloud.
func (s *Server) vaultURL(name string) (string, error) {
	v, err := kvid.ParseVaultURL("https://" + strings.ToLower(name) + s.vaultSuffix() + "/")
	if err != nil {
		return "", err
	}
	return v.URL, nil
}
