package proxy

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/internal/kvid"
	"github.com/kvassert/kvassert/internal/textutil"
)

// defaultAddr is the address the proxy listens on when Options.Addr is empty.
const defaultAddr = "127.0.0.1:5616"

// Options configures a Server. A nil *Options means the defaults: the
// default loopback address, a random secret, no Key Vault credential (Key
// Vault routes answer 501), no forwarding, no certificate files.
type Options struct {
	// Addr is the listen address for Listen (default "127.0.0.1:5616"). It
	// must be a loopback address (127.0.0.1, [::1] or localhost) unless
	// AllowRemote is set.
	Addr string
	// Secret is the per-run API secret: it opens the token API, /api/config
	// and /openapi.json, and nothing else (the managed identity routes each
	// have their own secret, see AppServiceEnv). Empty means a fresh random
	// one (256 bits, base64url; read it with Server.Secret); when given it
	// must be 32-128 characters from [A-Za-z0-9._~-] so it fits in a header.
	Secret string
	// AllowRemote lets the server listen on and answer for non-loopback
	// addresses (a warning is logged). The server then speaks TLS only, so
	// its base URL is https://, with a self-signed ECDSA P-256 certificate
	// made by New for the listen address and valid for 7 days (restart the
	// proxy at least that often: a new certificate, new secrets); clients
	// pin it by Server.Fingerprint or Server.PublicKeyPin. Requests still
	// need their secret, and the Host header must still be a loopback name
	// or an IP address.
	AllowRemote bool
	// AllowForward enables /msi/forward and /cloudshell/{secret}/forward,
	// which hand out tokens of ForwardCredential (the developer's own
	// identity) for any resource. Off by default; when on, forwarding has a
	// secret of its own (AppServiceEnv with Target.Forward).
	AllowForward bool
	// KeyVaultCredential reaches the vaults (certificates/get, keys/get,
	// keys/sign); typically azidentity.NewDefaultAzureCredential. Without
	// it, Key Vault routes answer 501 (not retried by SDK clients).
	KeyVaultCredential azcore.TokenCredential
	// ForwardCredential serves /msi/forward and /cloudshell/{secret}/forward
	// when AllowForward is set: the developer's own identity, typically
	// azidentity's DefaultAzureCredential. Without it, those routes answer
	// 501.
	ForwardCredential azcore.TokenCredential
	// ClientOptions are used for all Key Vault and login traffic (transport,
	// retries). Its Cloud selects the authority host and the vault DNS
	// suffix of /msi/.../kv/{vault}/... routes (zero: the public cloud).
	ClientOptions policy.ClientOptions
	// Files are certificates configured at start: name -> certificate file
	// (PEM, optionally with the private key, or PKCS#12 without a password).
	// They are the targets of /msi/{tenant}/{clientId}/file/{name} and names
	// usable as certFile in the local-certificate token API, and are read by
	// New. Names have 1-64 letters, digits, '.', '_' and '-'.
	Files map[string]string
	// KeyFiles are the PEM private key files of Files whose key is not in
	// the certificate file: name (as in Files) -> key file.
	KeyFiles map[string]string
	// FileRoot, when not empty, is a directory under which the
	// local-certificate token API may read certificate and key files named
	// in requests. Nothing outside it (or Files) is ever read; symbolic links
	// may not leave it.
	FileRoot string
	// DefaultClientID, DefaultTenantID, DefaultVault (a vault URL, or a
	// vault name in the configured cloud) and DefaultCertificate (a
	// certificate in DefaultVault) say what the proxy was started for: the
	// web page's form starts with them (it reads them from GET /api/config,
	// behind the secret like all data), and DefaultVault with
	// DefaultCertificate (for DefaultClientID when set) is the configured
	// source that SharedCache serves. Every one is optional.
	DefaultClientID, DefaultTenantID, DefaultVault, DefaultCertificate string
	// Logger receives the library's notices and, at Debug (at Info with
	// LogRequests), one line per request (default slog.Default()). Tokens
	// and secrets are never logged.
	Logger *slog.Logger
	// LogRequests logs the line of each request at Info rather than Debug
	// (kvassert proxy sets it).
	LogRequests bool
	// SharedCache, when set, is given to the credentials of the proxy's
	// configured source only: the Key Vault certificate of DefaultVault and
	// DefaultCertificate (for DefaultClientID when set), so that several
	// proxies, or a proxy and other replicas, share its tokens. Credentials
	// of sources a request picks (another vault certificate, a key, a local
	// certificate file) never share: a certificate that Entra would refuse
	// must not get a token another credential stored.
	SharedCache kvassert.SharedCache
	// Tenants are customer tenants (IDs or domains, at most 256) of the
	// configured app whose health the page's Tenants view shows (GET
	// /api/tenants, as kvassert tenants check reports it): each tenant's
	// state, the app roles it granted against TenantRoles, and the
	// admin-consent link when a consent would fix it. They need
	// DefaultClientID, DefaultTenantID (the app's home tenant), DefaultVault
	// and DefaultCertificate: the tokens come from the credential the token
	// API uses for that certificate (a cached token costs nothing).
	Tenants []string
	// TenantRoles are the app roles each tenant must have granted, per
	// resource (tenants.Want.Roles), e.g. {"https://graph.microsoft.com":
	// {"User.Read.All"}}; empty: a Microsoft Graph token is enough.
	TenantRoles map[string][]string
	// TenantRedirectURI is a redirect URI registered on the app (web
	// platform) that the Tenants view's admin-consent links name
	// (tenants.Want.RedirectURI; kvassert proxy --redirect-uri). Entra
	// documents redirect_uri as required: without it the links name none
	// and Entra may refuse them.
	TenantRedirectURI string
}

// Server is the developer proxy: a token API for tools such as curl and
// Postman, an emulation of the App Service and Cloud Shell managed identity
// endpoints for apps that use ManagedIdentityCredential, an OpenAPI document
// and a web page. Create it with New.
type Server struct {
	cfg       Options
	cloud     cloud.Configuration
	secret    string
	secretSum [sha256.Size]byte
	idKey     []byte           // derives the identity secrets (identitySecret)
	tlsCert   *tls.Certificate // with AllowRemote
	log       *slog.Logger
	libLog    *slog.Logger // log for the library: error text reworded (safeErrors)
	handler   http.Handler
	mux       *http.ServeMux
	creds     *registry
	files     *fileStore
	page      pageConfig
	// requestLevel is the level of the per-request log line.
	requestLevel slog.Level
}

// New checks opts (nil means the defaults), reads the configured
// certificate files and returns a Server. It makes no network call. Bad
// options are refused with a *kvassert.InputError naming the option.
func New(opts *Options) (*Server, error) {
	var cfg Options
	if opts != nil {
		cfg = *opts
	}
	if cfg.Addr == "" {
		cfg.Addr = defaultAddr
	}
	if err := checkAddr(cfg.Addr, cfg.AllowRemote); err != nil {
		return nil, err
	}
	if cfg.Secret == "" {
		cfg.Secret = newSecret()
	} else if err := checkSecret(cfg.Secret); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, secret: cfg.Secret, secretSum: sha256.Sum256([]byte(cfg.Secret)), log: cfg.Logger, idKey: make([]byte, 32)}
	_, _ = rand.Read(s.idKey) // never fails (crypto/rand, Go 1.24+)
	if s.log == nil {
		s.log = slog.Default()
	}
	s.libLog = libraryLogger(s.log)
	s.requestLevel = slog.LevelDebug
	if cfg.LogRequests {
		s.requestLevel = slog.LevelInfo
	}
	if err := s.setCloud(); err != nil {
		return nil, err
	}
	var err error
	if s.files, err = newFileStore(cfg.Files, cfg.KeyFiles, cfg.FileRoot); err != nil {
		return nil, err
	}
	if s.page, err = s.pageConfig(); err != nil {
		return nil, err
	}
	if err := s.checkTenantOptions(); err != nil {
		return nil, err
	}
	if cfg.AllowRemote {
		if s.tlsCert, err = selfSignedCertificate(cfg.Addr, time.Now()); err != nil {
			return nil, err
		}
	}
	s.creds = newRegistry(s)
	s.mux = http.NewServeMux()
	for _, rt := range s.routes() {
		s.mux.Handle(rt.pattern(), s.authenticate(rt))
	}
	s.mux.HandleFunc("/", s.notFound)
	s.handler = s.guard(s.mux)
	if cfg.AllowRemote {
		s.log.Warn("kvassert proxy: --allow-remote: other machines may reach the proxy over TLS; anyone who learns a secret gets tokens", "addr", cfg.Addr, "tls_sha256", s.Fingerprint())
	}
	return s, nil
}

// setCloud picks the cloud of ClientOptions.Cloud or the public cloud.
func (s *Server) setCloud() error {
	s.cloud = s.cfg.ClientOptions.Cloud
	if s.cloud.ActiveDirectoryAuthorityHost == "" {
		s.cloud = cloud.AzurePublic
	}
	if !strings.HasPrefix(s.cloud.ActiveDirectoryAuthorityHost, "https://") {
		return optionError("ClientOptions.Cloud", "Options.ClientOptions.Cloud: the authority host %q is not https", textutil.Truncate(s.cloud.ActiveDirectoryAuthorityHost, 100))
	}
	return nil
}

// optionError is the *kvassert.InputError of a refused option or field;
// the reason (format, args) names it.
func optionError(input, format string, args ...any) error {
	return &kvassert.InputError{Package: "proxy", Input: input, Reason: fmt.Sprintf(format, args...)}
}

// wrapOptionError is optionError wrapping err.
func wrapOptionError(input string, err error, format string, args ...any) error {
	return &kvassert.InputError{Package: "proxy", Input: input, Reason: fmt.Sprintf(format, args...), Err: err}
}

// newSecret returns a fresh random per-run secret (256 bits, base64url).
func newSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand, Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

// checkSecret checks Options.Secret; it never quotes the secret.
func checkSecret(s string) error {
	if len(s) < 32 || len(s) > 128 {
		return optionError("Secret", "Options.Secret must be 32-128 characters long")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~') {
			return optionError("Secret", "Options.Secret may hold only letters, digits and - _ . ~")
		}
	}
	return nil
}

// checkAddr refuses non-loopback listen addresses unless allowRemote.
func checkAddr(addr string, allowRemote bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return wrapOptionError("Addr", err, "Options.Addr %q is not host:port", textutil.Truncate(addr, 100))
	}
	if allowRemote || isLoopbackName(host) {
		return nil
	}
	return optionError("Addr", "Options.Addr %q is not a loopback address; use 127.0.0.1 or [::1] (or set AllowRemote to allow remote access explicitly)", textutil.Truncate(addr, 100))
}

func isLoopbackName(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Secret is the per-run API secret (the token API, /api/config,
// /openapi.json). It opens no managed identity route.
func (s *Server) Secret() string { return s.secret }

// Handler returns the HTTP handler of the proxy: all routes behind the
// Host, cross-site and secret checks, with one log line per request. Serve
// uses it; a program serving it itself keeps the proxy on loopback (or
// behind TLS).
func (s *Server) Handler() http.Handler { return s.handler }

// Listen opens Options.Addr. Port 0 picks a free port: the proxy's base URL
// is then "http://" (https:// with AllowRemote) and the listener's address.
func (s *Server) Listen() (net.Listener, error) {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	return ln, nil
}

// Serve answers requests on ln until ctx ends, then shuts down gracefully
// (in-flight requests get 5 seconds) and returns nil. It refuses a listener
// that is not on a loopback address unless AllowRemote is set; with
// AllowRemote it speaks TLS only (plain HTTP requests get a 400 from the
// TLS layer and reach no route).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok && !s.cfg.AllowRemote && !tcp.IP.IsLoopback() {
		return optionError("ln", "refusing to serve on ln (%s): not a loopback address (set Options.AllowRemote to serve other machines)", ln.Addr())
	}
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      3 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          log.New(io.Discard, "", 0),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	if s.tlsCert != nil {
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{*s.tlsCert}, MinVersion: tls.VersionTLS12}
	}
	errc := make(chan error, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				errc <- errors.New("proxy: internal error while serving")
			}
		}()
		if s.tlsCert != nil {
			errc <- srv.ServeTLS(ln, "", "")
			return
		}
		errc <- srv.Serve(ln)
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// vaultSuffix is the vault DNS suffix of the configured cloud.
func (s *Server) vaultSuffix() string { return "." + kvid.VaultDomain(s.cloud) }

func cleanPath(p string) string {
	if p == "" {
		return ""
	}
	if abs, err := filepath.Abs(p); err == nil {
		return abs
	}
	return filepath.Clean(p)
}
