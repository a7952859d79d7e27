package kvasserttest

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kvassert/kvassert/kvasserttest/internal/emu"
	"github.com/kvassert/kvassert/kvasserttest/internal/entra"
	"github.com/kvassert/kvassert/kvasserttest/internal/graph"
	"github.com/kvassert/kvassert/kvasserttest/internal/vault"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// Scenario is the world an emulator serves; see package scenario.
type Scenario = scenario.Scenario

// Emulator serves an emulated Entra ID token service, managed identity
// endpoint and the scenario's Key Vaults / Managed HSMs over HTTPS on one
// loopback address, like net/http/httptest serves a handler.
//
// Requests are routed by Host: "login.microsoftonline.com" (and the sovereign
// login hosts) go to Entra, "graph.microsoft.com" (and the sovereign Graph
// hosts) to the Microsoft Graph emulation (see graph.go),
// "{name}.vault.azure.net" and "{name}.managedhsm.azure.net" to that vault.
// On the bare loopback address, /keys, /certificates and /secrets go to the
// first (default) vault, /v1.0 and /beta to Graph, /msi/token to the managed
// identity endpoint and everything else to Entra.
// Use Client (or NewTransport from another process) to reach it with real
// Azure URLs.
//
// Managed identity tokens: MSAL Go (behind azidentity's
// ManagedIdentityCredential) keeps one process-wide cache of them. A test
// binary that starts several emulators may get a managed identity token that
// an earlier emulator signed, which the current one rejects; create the
// credential per emulator and pass TokenRequestOptions.Claims (any value) to
// skip that cache, or use one emulator per test binary for those tests.
type Emulator struct {
	scenario *scenario.Scenario
	ca       *tlsAuthority
	auth     *emu.Authority
	faults   *emu.Faults
	entra    *entra.Entra
	graph    *graph.Graph
	vaults   map[string]*vault.Vault // by lower-case name
	hsm      map[string]bool
	first    *vault.Vault
	header   string
	logger   *slog.Logger

	listener net.Listener
	server   *http.Server
	url      string
	client   *http.Client

	closeOnce sync.Once
}

// Option configures an Emulator.
type Option func(*options)

type options struct {
	addr          string
	tokenLifetime time.Duration
	logger        *slog.Logger
}

// WithAddr makes the emulator listen on addr (default "127.0.0.1:0", a free
// port). Only loopback addresses are accepted.
func WithAddr(addr string) Option { return func(o *options) { o.addr = addr } }

// WithTokenLifetime sets the lifetime of issued access tokens (default 1h).
func WithTokenLifetime(d time.Duration) Option { return func(o *options) { o.tokenLifetime = d } }

// WithLogger logs one line per request (method, host, path, status,
// duration) at Info level. Headers, bodies and query strings are never logged.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// New validates the scenario, creates its keys and certificates and starts
// serving. Call Close when done.
func New(s *Scenario, opts ...Option) (*Emulator, error) {
	if s == nil {
		return nil, errors.New("kvasserttest: nil scenario (use scenario.Demo() for the built-in one)")
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	o := options{addr: "127.0.0.1:0"}
	for _, opt := range opts {
		opt(&o)
	}
	if err := checkLoopback(o.addr); err != nil {
		return nil, err
	}
	e := &Emulator{scenario: s, faults: &emu.Faults{}, vaults: map[string]*vault.Vault{}, hsm: map[string]bool{}, logger: o.logger}
	var err error
	if e.ca, err = newTLSAuthority(); err != nil {
		return nil, fmt.Errorf("kvasserttest: CA: %w", err)
	}
	if e.auth, err = emu.NewAuthority(); err != nil {
		return nil, fmt.Errorf("kvasserttest: token authority: %w", err)
	}
	e.header = randomHex(16)
	for _, v := range s.Vaults {
		suffix := ".vault.azure.net"
		if v.ManagedHSM {
			suffix = ".managedhsm.azure.net"
		}
		name := strings.ToLower(v.Name)
		vv, err := vault.New(vault.Config{
			Vault:         v,
			BaseURL:       "https://" + name + suffix,
			AuthorityHost: "https://login.microsoftonline.com",
			Authority:     e.auth,
			Faults:        e.faults,
		})
		if err != nil {
			return nil, fmt.Errorf("kvasserttest: vault %q: %w", v.Name, err)
		}
		e.vaults[name] = vv
		e.hsm[name] = v.ManagedHSM
		if e.first == nil {
			e.first = vv
		}
	}
	e.entra, err = entra.New(entra.Config{
		Scenario:       s,
		Authority:      e.auth,
		Faults:         e.faults,
		CertificateDER: e.CertificateDER,
		IdentityHeader: e.header,
		TokenLifetime:  o.tokenLifetime,
	})
	if err != nil {
		return nil, fmt.Errorf("kvasserttest: entra: %w", err)
	}
	e.graph = graph.New(graph.Config{Authority: e.auth, Faults: e.faults, Directory: e.entra})

	e.listener, err = net.Listen("tcp", o.addr)
	if err != nil {
		return nil, fmt.Errorf("kvasserttest: listen: %w", err)
	}
	e.url = "https://" + e.listener.Addr().String()
	transport, err := NewTransport(e.listener.Addr().String(), e.ca.caPEM, e.knownVault)
	if err != nil {
		e.listener.Close()
		return nil, err
	}
	e.client = &http.Client{Transport: transport, Timeout: 2 * time.Minute}
	e.server = &http.Server{
		Handler:           e,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{e.ca.server}, MinVersion: tls.VersionTLS12},
		TLSNextProto:      map[string]func(*http.Server, *tls.Conn, http.Handler){}, // HTTP/1.1: faults can drop connections
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          discardLogger(),
	}
	go e.server.ServeTLS(e.listener, "", "") //nolint:errcheck // returns ErrServerClosed on Close
	return e, nil
}

// NewTB starts an emulator for a test or benchmark and closes it in
// tb.Cleanup. It fails the test if the emulator cannot start.
func NewTB(tb testing.TB, s *Scenario, opts ...Option) *Emulator {
	tb.Helper()
	e, err := New(s, opts...)
	if err != nil {
		tb.Fatalf("kvasserttest: %v", err)
	}
	tb.Cleanup(func() { e.Close() })
	return e
}

func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("kvasserttest: listen address %q is not host:port: %w", addr, err)
	}
	if !isLoopbackHost(host) {
		return fmt.Errorf("kvasserttest: listen address %q is not a loopback address; the emulator only serves this machine (use 127.0.0.1 or [::1])", addr)
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return hex.EncodeToString(b)
}

// Close stops the server and closes open connections.
func (e *Emulator) Close() error {
	var err error
	e.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		err = e.server.Shutdown(ctx)
		if err != nil {
			err = e.server.Close()
		}
		e.client.CloseIdleConnections()
	})
	return err
}

// URL is the base URL of the server, "https://127.0.0.1:PORT".
func (e *Emulator) URL() string { return e.url }

// Addr is the listening address, "127.0.0.1:PORT".
func (e *Emulator) Addr() string { return e.listener.Addr().String() }

// Scenario returns the scenario the emulator was started with. Treat it as
// read-only.
func (e *Emulator) Scenario() *Scenario { return e.scenario }

// CAPEM is the PEM certificate of the emulator's CA.
func (e *Emulator) CAPEM() []byte { return append([]byte(nil), e.ca.caPEM...) }

// CertPool is a pool holding the emulator's CA.
func (e *Emulator) CertPool() *x509.CertPool { return e.ca.pool.Clone() }

// Client returns an HTTP client that trusts the emulator and sends every
// emulated Azure host (vaults, Managed HSMs, login, Microsoft Graph) to it. Pass it (or its
// Transport) as the transport of Azure SDK and MSAL clients.
func (e *Emulator) Client() *http.Client { return e.client }

// Transport is Client's transport.
func (e *Emulator) Transport() *http.Transport { return e.client.Transport.(*http.Transport) }

// AuthorityHost is the Entra host to configure in clients, with a trailing
// slash: "https://login.microsoftonline.com/".
func (e *Emulator) AuthorityHost() string { return "https://login.microsoftonline.com/" }

// TokenEndpoint is the v2.0 token endpoint of a tenant.
func (e *Emulator) TokenEndpoint(tenant string) string {
	return e.AuthorityHost() + tenant + "/oauth2/v2.0/token"
}

// VaultURL is the URL of a vault of the scenario, with a trailing slash:
// "https://{name}.vault.azure.net/" (Managed HSM: ".managedhsm.azure.net").
// It returns "" for an unknown vault.
func (e *Emulator) VaultURL(name string) string {
	name = strings.ToLower(name)
	if _, ok := e.vaults[name]; !ok {
		return ""
	}
	if e.hsm[name] {
		return "https://" + name + ".managedhsm.azure.net/"
	}
	return "https://" + name + ".vault.azure.net/"
}

// ManagedIdentityEndpoint is the URL of the managed identity endpoint, for
// IDENTITY_ENDPOINT (App Service protocol) or MSI_ENDPOINT (Cloud Shell).
func (e *Emulator) ManagedIdentityEndpoint() string { return e.url + "/msi/token" }

// IdentityHeader is the per-emulator secret the managed identity endpoint
// requires in X-IDENTITY-HEADER (IDENTITY_HEADER).
func (e *Emulator) IdentityHeader() string { return e.header }

func (e *Emulator) knownVault(name string, hsm bool) bool {
	name = strings.ToLower(name)
	_, ok := e.vaults[name]
	return ok && e.hsm[name] == hsm
}

func (e *Emulator) vault(name string) (*vault.Vault, error) {
	v := e.vaults[strings.ToLower(name)]
	if v == nil {
		return nil, fmt.Errorf("kvasserttest: no vault %q in the scenario", name)
	}
	return v, nil
}

// ServeHTTP routes a request to Entra, the managed identity endpoint or a
// vault (see Emulator).
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if e.logger != nil {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		start := time.Now()
		defer func() {
			e.logger.Info("request", "method", r.Method, "host", r.Host, "path", r.URL.Path, "status", rec.status, "duration", time.Since(start).Round(time.Microsecond))
		}()
		w = rec
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	switch name, hsm, isVault := vaultLabel(host); {
	case isVault:
		if v := e.vaults[name]; v != nil && e.hsm[name] == hsm {
			v.ServeHTTP(w, r)
			return
		}
		http.Error(w, "no such vault in the emulator's scenario", http.StatusNotFound)
	case isLoginHost(host):
		e.entra.ServeHTTP(w, r)
	case graph.IsGraphHost(host):
		e.graph.ServeHTTP(w, r)
	case isLoopbackHost(host):
		first, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		switch {
		case r.URL.Path == "/msi/token":
			e.entra.ServeManagedIdentity(w, r)
		case first == "v1.0" || first == "beta":
			e.graph.ServeHTTP(w, r)
		case first == "keys" || first == "certificates" || first == "secrets":
			if e.first == nil {
				http.Error(w, "the scenario has no vault", http.StatusNotFound)
				return
			}
			e.first.ServeHTTP(w, r)
		default:
			e.entra.ServeHTTP(w, r)
		}
	default:
		http.Error(w, "host not served by the kvassert emulator", http.StatusMisdirectedRequest)
	}
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) { s.status = code; s.ResponseWriter.WriteHeader(code) }

// Hijack lets fault injection drop connections through the recorder.
func (s *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if hj, ok := s.ResponseWriter.(http.Hijacker); ok {
		return hj.Hijack()
	}
	return nil, nil, errors.New("hijack not supported")
}
