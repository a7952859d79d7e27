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
)

// DefaultAddr is the address kvassert proxy listens on by default.
const DefaultAddr = "127.0.0.1:5616"

// Config configures a Server.
type Config struct {
	// Addr is the listen address for Listen (default DefaultAddr). It must be
	// a loopback address (127.0.0.1, [::1] or localhost) unless AllowRemote is
	// set.
	Addr string
	// Secret is the per-run API secret: it opens the token API, /api/config
	// and /openapi.json, and nothing else (the managed identity routes each
	// have their own secret, see AppServiceEnv). Empty means a fresh random
	// one; when given it must be 32-128 characters from [A-Za-z0-9._~-] so
	// it fits in a header.
	Secret string
	// AllowRemote lets the server listen on and answer for non-loopback
	// addresses (a warning is logged). The server then speaks TLS only, with
	// a self-signed ECDSA P-256 certificate made by New for the listen
	// address and valid for TLSCertificateLifetime; clients pin it by its
	// Fingerprint. Requests still need their secret, and the Host header
	// must still be a loopback name or an IP address.
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
	// retries, cloud).
	ClientOptions policy.ClientOptions
	// Cloud selects the authority host and the vault DNS suffix of
	// /msi/.../kv/{vault}/... routes. The zero value means
	// ClientOptions.Cloud, or the public cloud when that is zero too.
	Cloud cloud.Configuration
	// Files are certificates configured at start, by name: the targets of
	// /msi/{tenant}/{clientId}/file/{name} and names usable as certFile in
	// the local-certificate token API. They are read by New.
	Files map[string]CertificateFiles
	// FileRoot, when not empty, is a directory under which the
	// local-certificate token API may read certificate and key files named
	// in requests. Nothing outside it (or Files) is ever read; symbolic links
	// may not leave it.
	FileRoot string
	// Default is what the web page's form starts with: the app, tenant,
	// vault and certificate the proxy was started for. Every field is
	// optional. The page reads it from GET /api/config, behind the secret
	// like all data.
	Default PageDefault
	// Logger receives one line per request and the library's notices
	// (default slog.Default()). Tokens and secrets are never logged.
	Logger *slog.Logger
	// SharedCache, when set, is given to the credentials of the proxy's
	// configured source only: the Key Vault certificate of Default (Vault
	// and Certificate, for Default.ClientID when set), so that several
	// proxies, or a proxy and other replicas, share its tokens. Credentials
	// of sources a request picks (another vault certificate, a key, a local
	// certificate file) never share: a certificate that Entra would refuse
	// must not get a token another credential stored.
	SharedCache kvassert.SharedCache
}

// PageDefault prefills the web page's form.
type PageDefault struct {
	// ClientID is the multi-tenant app's application (client) ID.
	ClientID string
	// TenantID is a tenant ID or domain to get tokens in.
	TenantID string
	// Vault is the Key Vault of the app's certificate: its URL, or its name
	// in the configured cloud.
	Vault string
	// Certificate is the name of the certificate in Vault.
	Certificate string
}

// CertificateFiles names a certificate and its private key on disk: PEM (the
// certificate, optionally with the key) or PKCS#12 without a password, and,
// when not empty, a PEM private key file.
type CertificateFiles struct {
	// CertFile is the certificate (PEM, optionally with the key, or PKCS#12).
	CertFile string
	// KeyFile is the PEM private key, when not in CertFile.
	KeyFile string
}

// Server is the developer proxy: a token API for tools such as curl and
// Postman, an emulation of the App Service and Cloud Shell managed identity
// endpoints for apps that use ManagedIdentityCredential, an OpenAPI document
// and a web page. Create it with New.
type Server struct {
	cfg       Config
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
}

// New checks cfg, reads the configured certificate files and returns a
// Server. It makes no network call.
func New(cfg Config) (*Server, error) {
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	if err := checkAddr(cfg.Addr, cfg.AllowRemote); err != nil {
		return nil, err
	}
	if cfg.Secret == "" {
		cfg.Secret = NewSecret()
	} else if err := checkSecret(cfg.Secret); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, secret: cfg.Secret, secretSum: sha256.Sum256([]byte(cfg.Secret)), log: cfg.Logger, idKey: make([]byte, 32)}
	if _, err := rand.Read(s.idKey); err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	if cfg.AllowRemote {
		c, err := selfSignedCertificate(cfg.Addr, time.Now())
		if err != nil {
			return nil, err
		}
		s.tlsCert = c
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.libLog = libraryLogger(s.log)
	s.cloud = cfg.Cloud
	if s.cloud.ActiveDirectoryAuthorityHost == "" {
		s.cloud = cfg.ClientOptions.Cloud
	}
	if s.cloud.ActiveDirectoryAuthorityHost == "" {
		s.cloud = cloud.AzurePublic
	}
	if !strings.HasPrefix(s.cloud.ActiveDirectoryAuthorityHost, "https://") {
		return nil, fmt.Errorf("proxy: authority host %q is not https", s.cloud.ActiveDirectoryAuthorityHost)
	}
	var err error
	if s.files, err = newFileStore(cfg.Files, cfg.FileRoot); err != nil {
		return nil, err
	}
	if s.page, err = s.pageConfig(cfg.Default); err != nil {
		return nil, err
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

// NewSecret returns a fresh random per-run secret (256 bits, base64url).
func NewSecret() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func checkSecret(s string) error {
	if len(s) < 32 || len(s) > 128 {
		return errors.New("proxy: the secret must be 32-128 characters long")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~') {
			return errors.New("proxy: the secret may hold only letters, digits and - _ . ~")
		}
	}
	return nil
}

// checkAddr refuses non-loopback listen addresses unless allowRemote.
func checkAddr(addr string, allowRemote bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("proxy: listen address %q is not host:port: %w", addr, err)
	}
	if allowRemote || isLoopbackName(host) {
		return nil
	}
	return fmt.Errorf("proxy: listen address %q is not a loopback address; use 127.0.0.1 or [::1] (or allow remote access explicitly)", addr)
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

// Scheme is "https" with AllowRemote (TLS only), else "http".
func (s *Server) Scheme() string {
	if s.tlsCert != nil {
		return "https"
	}
	return "http"
}

// Addr is the configured listen address.
func (s *Server) Addr() string { return s.cfg.Addr }

// Handler returns the HTTP handler of the proxy: all routes behind the
// Host, cross-site and secret checks, with one log line per request.
func (s *Server) Handler() http.Handler { return s.handler }

// Listen opens the configured address.
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
		return fmt.Errorf("proxy: refusing to serve on %s: not a loopback address", ln.Addr())
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

// PageURL is the address of the web page with the secret in the fragment,
// which the page's script reads (browsers never send fragments to servers).
// base is the proxy's base URL, e.g. "http://127.0.0.1:5616". The fragment
// holds the API secret.
func (s *Server) PageURL(base string) string {
	return strings.TrimSuffix(base, "/") + "/#secret=" + s.secret
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
