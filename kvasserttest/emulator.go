package kvasserttest

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
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

	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/internal/inputerr"
	"github.com/kvassert/kvassert/internal/textutil"
	"github.com/kvassert/kvassert/kvasserttest/internal/emu"
	"github.com/kvassert/kvassert/kvasserttest/internal/entra"
	"github.com/kvassert/kvassert/kvasserttest/internal/graph"
	"github.com/kvassert/kvassert/kvasserttest/internal/vault"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// Emulator serves an emulated Entra ID token service, managed identity
// endpoint, Microsoft Graph and the scenario's Key Vaults / Managed HSMs over
// HTTPS on one loopback address, like net/http/httptest serves a handler.
//
// Requests are routed by Host: "login.microsoftonline.com" (and the sovereign
// login hosts) go to Entra, "graph.microsoft.com" (and the sovereign Graph
// hosts) to Graph, "{name}.vault.azure.net" and "{name}.managedhsm.azure.net"
// to that vault. On the bare loopback address, /keys, /certificates and
// /secrets go to the first (default) vault, /v1.0 and /beta to Graph,
// /msi/token to the managed identity endpoint and everything else to Entra.
// Use Client or ClientOptions to reach it with real Azure URLs.
//
// Managed identity: ManagedIdentityEndpoint serves the App Service
// (IDENTITY_ENDPOINT + IDENTITY_HEADER) and Cloud Shell (MSI_ENDPOINT)
// protocols. Client and ClientOptions also answer, in this process and
// without a connection, the Azure instance metadata service's endpoint
// (IMDS, http://169.254.169.254/metadata/identity/oauth2/token) that
// azidentity's ManagedIdentityCredential and DefaultAzureCredential call when
// no environment variable names another one: with header "Metadata: true",
// as the identity named by client_id, object_id or msi_res_id, or, with none
// named, the scenario's only managed identity (the demo's may sign with the
// demo certificate). A request without the header (azidentity's availability
// probe) is answered 400, as IMDS does. Both count as OpManagedIdentity.
//
// Graph: the application's keyCredentials and the addKey / removeKey actions
// that let an app roll its own certificates with a proof of possession, with
// an app-only token for https://graph.microsoft.com/.default from the
// emulator's token service in the app's home tenant. Reading an application
// (GET /v1.0/applications/{objectId}) needs the app role
// "Application.Read.All" (GrantAppRoles); addKey/removeKey on another app
// need "Application.ReadWrite.All" (an app rolling its own keys needs none).
// A key added through addKey is accepted at the token endpoint 5 s later on
// the emulator's clock (SetClock), as Entra replicates; removeKey takes
// effect at once.
//
// Customer tenants: a multi-tenant app has a service principal in its home
// tenant and in each tenant that consented (scenario.App ConsentedTenants
// and Consents); its access tokens for Microsoft Graph (the app's
// RolesResource) carry the roles that tenant granted, tokens for other
// resources carry none, as in Entra. The v2 admin-consent endpoint,
// https://login.microsoftonline.com/{tenant|organizations}/v2.0/adminconsent?client_id=...&scope=...&redirect_uri=...&state=...,
// serves a page on which "an administrator of the emulated tenant" clicks
// Accept or Cancel (element ids "accept" and "cancel"; "tenant", whose
// value is the tenant ID: a select on /organizations and /common, a
// read-only field otherwise). Accept records the grant
// (all of the app's roles; see SetConsentDelay) and redirects to
// redirect_uri?admin_consent=True&tenant={id}&scope=...&state=...; Cancel
// to redirect_uri?error=access_denied&error_subcode=cancel&error_description=...&state=....
// The redirect URI must be one of the app's RedirectURIs (an http loopback
// one matches any port). A request Entra would not redirect (unknown
// client_id: AADSTS700016, unregistered redirect URI: 50011, bad tenant:
// 90002 / 900023, ...) gets an error page whose element "error-code" holds
// the code. A browser reaches the page through the emulator's listener:
// Chromium with --host-resolver-rules="MAP login.microsoftonline.com
// 127.0.0.1:PORT" (the port of URL) and --ignore-certificate-errors.
// SetConsent, SetGrantedRoles, SetServicePrincipalEnabled and
// SetTenantRefusal change a tenant afterwards; each failure is answered in
// Entra's JSON error shape.
//
// The emulators of one process sign their access tokens with one key, so a
// token an earlier emulator issued is valid at a later one while its claims
// fit the later one's scenario: MSAL Go (behind azidentity's
// ManagedIdentityCredential) keeps one process-wide cache of managed identity
// tokens, which a test binary with several emulators shares.
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

// Options configure an Emulator. The zero value (or nil) is the default.
type Options struct {
	// Addr is the listening address (default "127.0.0.1:0", a free port).
	// Only loopback addresses are accepted.
	Addr string
	// TokenLifetime is the lifetime of issued access tokens (default 1h).
	TokenLifetime time.Duration
	// Logger gets one Debug line per request (method, host, path, status,
	// duration); nil is slog.Default(). Headers, bodies and query strings
	// are never logged.
	Logger *slog.Logger
}

// New validates the scenario (nil: scenario.Demo()), creates its keys and
// certificates and starts serving. Call Close when done. A scenario or
// option it refuses is an *inputerr.Error (kvassert.InputError) naming the
// field.
func New(s *scenario.Scenario, opts *Options) (*Emulator, error) {
	if s == nil {
		s = scenario.Demo()
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	if err := checkOptions(o); err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	e := &Emulator{scenario: s, faults: &emu.Faults{}, vaults: map[string]*vault.Vault{}, hsm: map[string]bool{}, logger: o.Logger}
	if err := e.build(o); err != nil {
		return nil, err
	}
	if err := e.listen(o.Addr); err != nil {
		return nil, err
	}
	return e, nil
}

// build makes the emulated services.
func (e *Emulator) build(o Options) error {
	var err error
	if e.ca, err = newTLSAuthority(); err != nil {
		return fmt.Errorf("kvasserttest: CA: %w", err)
	}
	key, err := tokenKey()
	if err != nil {
		return fmt.Errorf("kvasserttest: token authority: %w", err)
	}
	e.auth = emu.NewAuthorityWithKey(key)
	e.header = randomHex(16)
	for _, v := range e.scenario.Vaults {
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
			return fmt.Errorf("kvasserttest: vault %q: %w", v.Name, err)
		}
		e.vaults[name] = vv
		e.hsm[name] = v.ManagedHSM
		if e.first == nil {
			e.first = vv
		}
	}
	e.entra, err = entra.New(entra.Config{
		Scenario:       e.scenario,
		Authority:      e.auth,
		Faults:         e.faults,
		CertificateDER: e.certificateDER,
		IdentityHeader: e.header,
		TokenLifetime:  o.TokenLifetime,
	})
	if err != nil {
		return fmt.Errorf("kvasserttest: entra: %w", err)
	}
	e.graph = graph.New(graph.Config{Authority: e.auth, Faults: e.faults, Directory: e.entra})
	return nil
}

// listen starts serving on addr.
func (e *Emulator) listen(addr string) error {
	var err error
	e.listener, err = net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("kvasserttest: listen: %w", err)
	}
	e.url = "https://" + e.listener.Addr().String()
	transport, err := emuhook.NewTransport(e.listener.Addr().String(), e.ca.caPEM, e.knownVault)
	if err != nil {
		e.listener.Close()
		return err
	}
	e.client = &http.Client{Transport: &imdsRoundTripper{base: transport, imds: http.HandlerFunc(e.serveIMDS)}, Timeout: 2 * time.Minute}
	e.server = &http.Server{
		Handler:           http.HandlerFunc(e.serve),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{e.ca.server}, MinVersion: tls.VersionTLS12},
		TLSNextProto:      map[string]func(*http.Server, *tls.Conn, http.Handler){}, // HTTP/1.1: faults can drop connections
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          discardLogger(),
	}
	go e.server.ServeTLS(e.listener, "", "") //nolint:errcheck // returns ErrServerClosed on Close
	return nil
}

// NewTB starts an emulator for a test or benchmark (New) and closes it in
// tb.Cleanup. It fails the test if the emulator cannot start.
func NewTB(tb testing.TB, s *scenario.Scenario, opts *Options) *Emulator {
	tb.Helper()
	e, err := New(s, opts)
	if err != nil {
		tb.Fatalf("kvasserttest: %v", err)
	}
	tb.Cleanup(func() { e.Close() })
	return e
}

func checkOptions(o Options) error {
	if o.TokenLifetime < 0 {
		return inputerr.New("kvasserttest", "Options.TokenLifetime", "Options.TokenLifetime %v is negative", o.TokenLifetime)
	}
	host, _, err := net.SplitHostPort(o.Addr)
	if err != nil {
		return &inputerr.Error{Package: "kvasserttest", Input: "Options.Addr", Reason: fmt.Sprintf("Options.Addr %q is not host:port", textutil.Truncate(o.Addr, 64)), Err: err}
	}
	if !emuhook.IsLoopbackHost(host) {
		return inputerr.New("kvasserttest", "Options.Addr", "Options.Addr %q is not a loopback address; the emulator only serves this machine (use 127.0.0.1 or [::1])", textutil.Truncate(o.Addr, 64))
	}
	return nil
}

// tokenKey is the process's token signing key (see Emulator).
var tokenKey = sync.OnceValues(func() (*rsa.PrivateKey, error) { return rsa.GenerateKey(rand.Reader, 2048) })

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

// Scenario returns the scenario the emulator was started with. Treat it as
// read-only.
func (e *Emulator) Scenario() *scenario.Scenario { return e.scenario }

// CAPEM is the PEM certificate of the emulator's CA.
func (e *Emulator) CAPEM() []byte { return append([]byte(nil), e.ca.caPEM...) }

// Client returns an HTTP client that trusts the emulator and sends every
// emulated Azure host (vaults, Managed HSMs, login, Microsoft Graph, the
// IMDS managed identity endpoint) to it, and refuses any other host. Pass it
// as the transport of Azure SDK (ClientOptions does) and MSAL clients.
func (e *Emulator) Client() *http.Client { return e.client }

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
		return nil, inputerr.New("kvasserttest", "vaultName", "no vault %q (vaultName) in the scenario", textutil.Truncate(name, 64))
	}
	return v, nil
}

// serve routes a request to Entra, the managed identity endpoint or a vault
// (see Emulator).
func (e *Emulator) serve(w http.ResponseWriter, r *http.Request) {
	if e.logger.Enabled(r.Context(), slog.LevelDebug) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		start := time.Now()
		defer func() {
			e.logger.Debug("request", "method", r.Method, "host", r.Host, "path", r.URL.Path, "status", rec.status, "duration", time.Since(start).Round(time.Microsecond))
		}()
		w = rec
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	switch name, hsm, isVault := emuhook.VaultLabel(host); {
	case isVault:
		if v := e.vaults[name]; v != nil && e.hsm[name] == hsm {
			v.ServeHTTP(w, r)
			return
		}
		http.Error(w, "no such vault in the emulator's scenario", http.StatusNotFound)
	case emuhook.IsLoginHost(host):
		e.entra.ServeHTTP(w, r)
	case emuhook.IsGraphHost(host):
		e.graph.ServeHTTP(w, r)
	case emuhook.IsLoopbackHost(host):
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
