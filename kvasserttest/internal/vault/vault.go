// Package vault emulates one Azure Key Vault or Managed HSM data plane.
//
// It answers the requests of the real Azure SDK clients (azkeys,
// azcertificates, azsecrets) the way the service does: bearer challenge,
// token and RBAC checks, keys (RSA and EC, sign and verify), self-signed and
// imported certificates with their backing keys and secrets, the pending
// certificate operation, and the service's error shapes. Private keys never
// leave the vault except through the secret of a certificate whose policy
// makes its key exportable.
package vault

import (
	"crypto"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kvassert/kvassert/kvasserttest/internal/emu"
	"github.com/kvassert/kvassert/kvasserttest/internal/names"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// Config configures one emulated vault.
type Config struct {
	// Vault is the scenario entry: name, tenant, initial keys/certificates, access.
	Vault scenario.Vault
	// BaseURL is the vault URL used in IDs, without a trailing slash, e.g.
	// "https://demo.vault.azure.net" or "https://demo.managedhsm.azure.net".
	BaseURL string
	// AuthorityHost is the Entra host named in the challenge, without a
	// trailing slash, e.g. "https://login.microsoftonline.com".
	AuthorityHost string
	// Authority verifies bearer tokens.
	Authority *emu.Authority
	// Faults counts requests and injects faults (shared by the emulator).
	Faults *emu.Faults
}

// Resources named in the bearer challenge (and expected as token audience).
const (
	ResourceVault      = "https://vault.azure.net"
	ResourceManagedHSM = "https://managedhsm.azure.net"
)

// maxBody caps request bodies; the service's own limits are far lower for
// everything but certificate imports.
const maxBody = 1 << 20

// Vault is one emulated vault. Safe for concurrent use.
type Vault struct {
	cfg      Config
	hsm      bool
	resource string

	mu           sync.RWMutex
	keys         map[string]*keyItem // by lower-case name
	certs        map[string]*certItem
	secrets      map[string]*secretItem
	deleted      map[string]*deletedCert
	pendingPolls int           // polls answered inProgress before completion
	pendingDelay time.Duration // minimum time from create to completion
	retryAfter   int           // Retry-After of the pending operation, seconds

	grantsMu sync.RWMutex
	grants   map[string][]string // lower-case principal -> permissions

	limiter emu.Limiter // sign rate limit

	// nextRenewal is the earliest AutoRenew trigger (Unix nanoseconds on the
	// emulator's clock); 0 forces a recomputation (see lifetime.go).
	nextRenewal atomic.Int64
	// pageSize is the default page size of paged lists (0: the service's 25).
	pageSize atomic.Int32
}

// New creates the vault and its initial keys and certificates.
func New(cfg Config) (*Vault, error) {
	if cfg.Authority == nil {
		return nil, errors.New("vault: Config.Authority is required")
	}
	if cfg.Faults == nil {
		cfg.Faults = &emu.Faults{}
	}
	if !names.ValidVaultName(cfg.Vault.Name) {
		return nil, fmt.Errorf("vault: invalid vault name %q", cfg.Vault.Name)
	}
	if cfg.Vault.Tenant == "" {
		return nil, errors.New("vault: the vault has no tenant")
	}
	cfg.BaseURL = strings.TrimSuffix(cfg.BaseURL, "/")
	if cfg.BaseURL == "" {
		suffix := ".vault.azure.net"
		if cfg.Vault.ManagedHSM {
			suffix = ".managedhsm.azure.net"
		}
		cfg.BaseURL = "https://" + strings.ToLower(cfg.Vault.Name) + suffix
	}
	cfg.AuthorityHost = strings.TrimSuffix(cfg.AuthorityHost, "/")
	if cfg.AuthorityHost == "" {
		cfg.AuthorityHost = "https://login.microsoftonline.com"
	}
	v := &Vault{
		cfg:        cfg,
		hsm:        cfg.Vault.ManagedHSM,
		resource:   ResourceVault,
		keys:       map[string]*keyItem{},
		certs:      map[string]*certItem{},
		secrets:    map[string]*secretItem{},
		deleted:    map[string]*deletedCert{},
		retryAfter: 10,
		grants:     map[string][]string{},
	}
	if v.hsm {
		v.resource = ResourceManagedHSM
	}
	for _, a := range cfg.Vault.Access {
		v.Grant(a.Principal, a.Permissions...)
	}
	for _, k := range cfg.Vault.Keys {
		kty := k.Kty
		if kty == "" {
			kty = "RSA"
		}
		params := createKeyParams{Kty: kty, Curve: k.Curve}
		if k.Size != 0 {
			params.KeySize = &k.Size
		}
		if _, e := v.createKey(k.Name, params); e != nil {
			return nil, fmt.Errorf("vault %s: key %q: %s", cfg.Vault.Name, k.Name, e.message)
		}
	}
	if len(cfg.Vault.Certificates) > 0 && v.hsm {
		return nil, fmt.Errorf("vault %s: a Managed HSM has no certificates", cfg.Vault.Name)
	}
	for _, c := range cfg.Vault.Certificates {
		if err := v.createScenarioCertificate(c); err != nil {
			return nil, fmt.Errorf("vault %s: certificate %q: %w", cfg.Vault.Name, c.Name, err)
		}
	}
	return v, nil
}

func (v *Vault) now() time.Time { return v.cfg.Authority.Now() }

// Resource is the resource named in the bearer challenge, the audience the
// vault's tokens must have.
func (v *Vault) Resource() string { return v.resource }

// BaseURL is the vault URL used in object IDs, without a trailing slash.
func (v *Vault) BaseURL() string { return v.cfg.BaseURL }

// SetSignLimit simulates the per-vault sign rate limit (zero disables it).
// Over the limit, sign answers 429 Throttled without Retry-After.
func (v *Vault) SetSignLimit(l emu.RateLimit) { v.limiter.SetLimit(l) }

// SetPendingPolls sets how many polls of a new self-signed certificate's
// pending operation answer "inProgress" before one answers "completed"
// (default 0: the first poll after create completes it).
func (v *Vault) SetPendingPolls(n int) {
	v.mu.Lock()
	v.pendingPolls = max(n, 0)
	v.mu.Unlock()
}

// SetPendingDelay sets the minimum time between a certificate create and its
// completion (default 0). With zero polls and zero delay the certificate is
// usable at once, though the create answer still says "inProgress".
func (v *Vault) SetPendingDelay(d time.Duration) {
	v.mu.Lock()
	v.pendingDelay = max(d, 0)
	v.mu.Unlock()
}

// SetPendingRetryAfter sets the Retry-After (seconds) of the create answer
// and of in-progress polls (default 10, as the real service). Zero omits it.
func (v *Vault) SetPendingRetryAfter(seconds int) {
	v.mu.Lock()
	v.retryAfter = max(seconds, 0)
	v.mu.Unlock()
}

// CertificateDER returns the DER of the current version of a certificate.
func (v *Vault) CertificateDER(name string) ([]byte, error) {
	v.renewDue()
	v.mu.RLock()
	defer v.mu.RUnlock()
	c := v.certs[strings.ToLower(name)]
	if c == nil || len(c.versions) == 0 {
		return nil, fmt.Errorf("vault %s: no certificate %q", v.cfg.Vault.Name, name)
	}
	return append([]byte(nil), c.versions[len(c.versions)-1].der...), nil
}

// PublicKey returns the public key of the current version of a key (a
// certificate's key has the certificate's name) and its versioned ID.
func (v *Vault) PublicKey(name string) (crypto.PublicKey, string, error) {
	v.renewDue()
	v.mu.RLock()
	defer v.mu.RUnlock()
	k := v.keys[strings.ToLower(name)]
	if k == nil || len(k.versions) == 0 {
		return nil, "", fmt.Errorf("vault %s: no key %q", v.cfg.Vault.Name, name)
	}
	kv := k.versions[len(k.versions)-1]
	return kv.priv.Public(), v.kid(kv), nil
}

// ServeHTTP serves the data-plane API (/keys/..., /certificates/..., /secrets/...).
func (v *Vault) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			v.writeError(w, errf(http.StatusInternalServerError, "InternalServerError", "An unexpected error occurred."))
		}
	}()
	if r.URL.Query().Get("api-version") == "" {
		v.writeError(w, badParameter("The 'api-version' query parameter is required."))
		return
	}
	v.renewDue()
	c, ok := v.authenticate(w, r)
	if !ok {
		return
	}
	rt, e := v.route(r)
	if e != nil {
		v.writeError(w, e)
		return
	}
	if v.cfg.Faults.Begin(w, r, rt.op, v.faultError) {
		return
	}
	if !v.allowed(c, rt.perm) {
		v.forbidden(w, c, rt.perm, rt.object)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	rt.handle(w, r)
}

// route is one resolved data-plane operation.
type route struct {
	op     emu.Op
	perm   string // permission the caller needs
	object string // "keys/name", for the RBAC message
	handle http.HandlerFunc
}

// route resolves method and path. Empty segments: "/keys/n/" and
// "/keys/n//sign" address the latest version, as the SDKs send them.
func (v *Vault) route(r *http.Request) (route, *apiError) {
	segs := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if strings.HasSuffix(r.URL.Path, "/") && len(segs) == 2 {
		segs = append(segs, "") // "/keys/n/": latest version
	}
	switch segs[0] {
	case "keys":
		return v.keyRoute(r.Method, segs[1:])
	case "certificates", "deletedcertificates", "secrets":
		if v.hsm {
			return route{}, unsupported(r)
		}
		if segs[0] == "secrets" {
			return v.secretRoute(r.Method, segs[1:])
		}
		return v.certificateRoute(r.Method, segs)
	}
	return route{}, unsupported(r)
}

// unsupported answers paths and methods the emulator does not serve.
func unsupported(r *http.Request) *apiError {
	return errf(http.StatusNotFound, "NotFound", "The operation %s %s is not supported.", r.Method, r.URL.Path)
}

// checkName validates an object name as the service does.
func checkName(name string) *apiError {
	if !names.ValidObjectName(name) {
		return badParameter("The request URI contains an invalid name: %s", name)
	}
	return nil
}
