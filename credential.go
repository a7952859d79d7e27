package kvassert

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"
)

// Version of this module, sent in the User-Agent of token requests.
const Version = "v0.1.0"

// CredentialOptions configure NewCredential.
type CredentialOptions struct {
	// ClientOptions for token requests: Cloud (its ActiveDirectoryAuthorityHost
	// selects the sovereign cloud), Transport, Retry, Logging. Requests go
	// through an azcore pipeline, so 429/5xx answers are retried.
	policy.ClientOptions
	// AdditionallyAllowedTenants lists the tenants other than the home
	// tenant that GetToken may be asked for; "*" allows any tenant. A tenant
	// not allowed is refused before any network call.
	AdditionallyAllowedTenants []string
	// Logger receives one debug line per token acquired and a warning per
	// failed background refresh (default slog.Default()). Tokens and
	// assertions are never logged.
	Logger *slog.Logger
	// AcquireTimeout bounds one token acquisition that callers share
	// (default 2 minutes); each caller still returns when its own context ends.
	AcquireTimeout time.Duration
	// FetchOpenIDConfiguration makes MSAL fetch each tenant's OpenID
	// configuration from the network before its first token request. By
	// default the credential answers that request itself from the documented
	// v2.0 endpoint layout ({authority host}/{tenant}/oauth2/v2.0/token), so a
	// new tenant costs one round trip (the token POST) instead of two; an
	// unknown tenant is then reported by the token endpoint (AADSTS90002).
	FetchOpenIDConfiguration bool
}

// Credential is an azcore.TokenCredential that gets app-only tokens for a
// multi-tenant app in its home tenant and in every allowed tenant, with client
// assertions from a Source. Use it with any Azure SDK for Go client or the
// Microsoft Graph SDK; select the tenant with TokenRequestOptions.TenantID
// (azcore passes it for cross-tenant challenges).
//
// Tokens are cached per (tenant, scopes, claims): a cached GetToken takes one
// read lock on one of 64 shards and allocates nothing for a single scope.
// Concurrent misses for the same key share one acquisition (one assertion,
// one token request); misses for other keys run in parallel and cached
// calls never wait for them. Tokens are refreshed in the background 5
// minutes before they expire, so callers do not wait then either.
type Credential struct {
	home     string
	clientID string
	src      Source
	allowAll bool
	allowed  map[string]bool
	host     string // authority host with trailing slash
	http     *pipelineHTTP
	logger   *slog.Logger
	timeout  time.Duration
	now      func() time.Time

	cache *tokenCache

	flightsMu sync.Mutex
	flights   map[cacheKey]*flight

	clientsMu sync.Mutex
	clients   map[clientKey]*confidential.Client

	tokenRequests atomic.Int64
	refreshes     atomic.Int64
}

type clientKey struct {
	slot int
	cae  bool
}

type flight struct {
	done chan struct{}
	tok  azcore.AccessToken
	err  error
}

// NewCredential returns a credential for the app clientID registered in
// tenantID (its home tenant), authenticating with src.
func NewCredential(tenantID, clientID string, src Source, opts *CredentialOptions) (*Credential, error) {
	if src == nil {
		return nil, errors.New("kvassert: nil Source")
	}
	if !validTenant(tenantID) {
		return nil, fmt.Errorf("kvassert: tenant ID (%d bytes) is not a tenant ID or domain (letters, digits, '.', '-')", len(tenantID))
	}
	if !validClientID(clientID) {
		return nil, fmt.Errorf("kvassert: client ID (%d bytes) is not a GUID", len(clientID))
	}
	var o CredentialOptions
	if opts != nil {
		o = *opts
	}
	host, err := authorityHost(o.Cloud)
	if err != nil {
		return nil, err
	}
	c := &Credential{
		home: strings.ToLower(tenantID), clientID: strings.ToLower(clientID), src: src,
		allowed: map[string]bool{}, host: host, logger: o.Logger, timeout: o.AcquireTimeout, now: time.Now,
		cache: newTokenCache(), flights: map[cacheKey]*flight{}, clients: map[clientKey]*confidential.Client{},
	}
	for _, t := range o.AdditionallyAllowedTenants {
		if t == "*" {
			c.allowAll = true
			continue
		}
		if !validTenant(t) {
			return nil, fmt.Errorf("kvassert: AdditionallyAllowedTenants: an entry (%d bytes) is not a tenant ID or domain", len(t))
		}
		c.allowed[strings.ToLower(t)] = true
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	if c.timeout <= 0 {
		c.timeout = 2 * time.Minute
	}
	// The token request body holds the client assertion: never log bodies.
	o.ClientOptions.Logging.IncludeBody = false
	azc, err := azcore.NewClient("kvassert", Version, runtime.PipelineOptions{}, &o.ClientOptions)
	if err != nil {
		return nil, err
	}
	c.http = &pipelineHTTP{client: azc, deriveDiscovery: !o.FetchOpenIDConfiguration, host: strings.TrimSuffix(strings.TrimPrefix(host, "https://"), "/")}
	return c, nil
}

// authorityHost validates the cloud's authority host: https only.
func authorityHost(c cloud.Configuration) (string, error) {
	h := c.ActiveDirectoryAuthorityHost
	if h == "" {
		h = cloud.AzurePublic.ActiveDirectoryAuthorityHost
	}
	if !strings.HasPrefix(h, "https://") {
		return "", errors.New("kvassert: the cloud's authority host is not https; tokens are only requested over https")
	}
	if strings.ContainsAny(h[len("https://"):], "@?#") {
		// Not repeated: it may hold user info or a query.
		return "", errors.New("kvassert: the cloud's authority host must be a plain https://host/ URL (no user info, query or fragment)")
	}
	if !strings.HasSuffix(h, "/") {
		h += "/"
	}
	return h, nil
}

// GetToken implements azcore.TokenCredential.
func (c *Credential) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	tenant, err := c.resolveTenant(opts.TenantID)
	if err != nil {
		return azcore.AccessToken{}, err
	}
	var scope string
	switch len(opts.Scopes) {
	case 0:
		return azcore.AccessToken{}, errors.New("kvassert: no scope; app-only tokens need one scope such as https://graph.microsoft.com/.default")
	case 1:
		scope = opts.Scopes[0]
	default:
		scope = strings.Join(opts.Scopes, " ")
	}
	key := cacheKey{tenant: tenant, scope: scope, claims: opts.Claims, cae: opts.EnableCAE}
	if key.claims == "" {
		if e := c.cache.get(key); e != nil {
			now := c.now().UnixNano()
			if now < e.useUntil {
				if now >= e.refreshAt && now >= e.nextTry.Load() && e.refreshing.CompareAndSwap(false, true) {
					go c.refresh(key, append([]string(nil), opts.Scopes...), e) // the caller may reuse its slice
				}
				return e.tok, nil
			}
		}
	}
	if err := checkScopes(opts.Scopes); err != nil {
		return azcore.AccessToken{}, err
	}
	return c.shared(ctx, key, opts.Scopes)
}

// shared joins the acquisition in flight for key or starts one. The
// acquisition runs detached from ctx (bounded by AcquireTimeout) so that one
// caller's cancellation does not fail the others; each caller returns as
// soon as its own ctx ends.
func (c *Credential) shared(ctx context.Context, key cacheKey, scopes []string) (azcore.AccessToken, error) {
	c.flightsMu.Lock()
	f := c.flights[key]
	if f == nil {
		f = &flight{done: make(chan struct{})}
		c.flights[key] = f
		go c.run(context.WithoutCancel(ctx), key, append([]string(nil), scopes...), f)
	}
	c.flightsMu.Unlock()
	select {
	case <-f.done:
		return f.tok, f.err
	case <-ctx.Done():
		if tr, ok := c.src.(throttleReporter); ok {
			if since, ok := tr.ThrottledSince(); ok {
				return azcore.AccessToken{}, fmt.Errorf("kvassert: token for tenant %s: Key Vault has been throttling signs for %s (429: the vault's request limit; the acquisition goes on in the background): %w",
					key.tenant, time.Since(since).Round(time.Second), ctx.Err())
			}
		}
		return azcore.AccessToken{}, fmt.Errorf("kvassert: token for tenant %s: %w", key.tenant, ctx.Err())
	}
}

// throttleReporter is implemented by the Key Vault sources, so that a caller
// who gives up learns that the vault was throttling.
type throttleReporter interface {
	ThrottledSince() (time.Time, bool)
}

func (c *Credential) run(ctx context.Context, key cacheKey, scopes []string, f *flight) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	tok, err := c.acquire(ctx, key, scopes)
	if err == nil && key.claims == "" {
		c.cache.put(key, newEntry(tok))
	}
	c.flightsMu.Lock()
	delete(c.flights, key)
	c.flightsMu.Unlock()
	f.tok, f.err = tok, err
	close(f.done)
}

// refresh renews a token in the background while callers keep the old one.
func (c *Credential) refresh(key cacheKey, scopes []string, e *entry) {
	c.refreshes.Add(1)
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	_, err := c.shared(ctx, key, scopes)
	if err != nil {
		e.nextTry.Store(c.now().Add(30 * time.Second).UnixNano())
		c.logger.Warn("kvassert: background token refresh failed; the cached token is still used", "tenant", key.tenant, "scope", key.scope, "error", err)
	}
	e.refreshing.Store(false)
}

// acquire gets a token from the network through MSAL. When Entra's answer is
// explained by a rotated certificate, the source re-reads its certificate
// and the request is retried once.
func (c *Credential) acquire(ctx context.Context, key cacheKey, scopes []string) (azcore.AccessToken, error) {
	client, err := c.msalClient(key.tenant, key.cae)
	if err != nil {
		return azcore.AccessToken{}, err
	}
	opts := []confidential.AcquireByCredentialOption{confidential.WithTenantID(key.tenant)}
	if key.claims != "" {
		opts = append(opts, confidential.WithClaims(key.claims))
	}
	for attempt := 0; ; attempt++ {
		c.tokenRequests.Add(1)
		res, err := client.AcquireTokenByCredential(ctx, scopes, opts...)
		if err == nil {
			c.logger.Debug("kvassert: token acquired", "tenant", key.tenant, "scope", key.scope, "expires_on", res.ExpiresOn.UTC().Format(time.RFC3339))
			return azcore.AccessToken{Token: res.AccessToken, ExpiresOn: res.ExpiresOn, RefreshOn: res.Metadata.RefreshOn}, nil
		}
		ae, isAuth := newAuthError(key.tenant, c.clientID, err)
		if !isAuth {
			return azcore.AccessToken{}, fmt.Errorf("kvassert: token for tenant %s: %w", key.tenant, err)
		}
		inv, canInvalidate := c.src.(Invalidator)
		if attempt == 0 && canInvalidate && rotationCodes[ae.Code] {
			c.logger.Info("kvassert: Entra refused the certificate; re-reading it and retrying once", "tenant", key.tenant, "aadsts", ae.Code)
			inv.Invalidate()
			continue
		}
		return azcore.AccessToken{}, ae
	}
}

// msalPoolSize is the number of MSAL clients a credential spreads tenants
// over. MSAL scans a client's whole token cache on every lookup, so a pool
// keeps that scan to about 1/64 of the tenants, while the clients' own
// memory stays fixed instead of growing with each tenant.
const msalPoolSize = 64

func (c *Credential) msalClient(tenant string, cae bool) (*confidential.Client, error) {
	k := clientKey{slot: int(maphash.String(c.cache.seed, tenant) % msalPoolSize), cae: cae}
	c.clientsMu.Lock()
	defer c.clientsMu.Unlock()
	if cl := c.clients[k]; cl != nil {
		return cl, nil
	}
	cred, err := NewMSALCredential(c.src)
	if err != nil {
		return nil, err
	}
	opts := []confidential.Option{confidential.WithHTTPClient(c.http), confidential.WithInstanceDiscovery(false)}
	if cae {
		opts = append(opts, confidential.WithClientCapabilities([]string{"cp1"}))
	}
	cl, err := confidential.New(c.host+c.home, c.clientID, cred, opts...)
	if err != nil {
		return nil, fmt.Errorf("kvassert: %w", err)
	}
	c.clients[k] = &cl
	return &cl, nil
}

func (c *Credential) resolveTenant(specified string) (string, error) {
	if specified == "" {
		return c.home, nil
	}
	if !validTenant(specified) {
		// Not repeated: only tenant-shaped text is ever echoed.
		return "", fmt.Errorf("kvassert: the requested tenant (%d bytes) is not a tenant ID or domain (letters, digits, '.', '-')", len(specified))
	}
	t := lowerASCII(specified)
	if t == c.home || c.allowAll || c.allowed[t] {
		return t, nil
	}
	return "", errTenantNotAllowed(specified)
}

// Stats are counters of a Credential's work.
type Stats struct {
	// CachedTokens is the number of tokens in the cache.
	CachedTokens int
	// TokenRequests is the number of acquisitions sent through MSAL (each
	// makes one assertion and one token POST unless MSAL had the token).
	TokenRequests int64
	// BackgroundRefreshes started.
	BackgroundRefreshes int64
}

// Stats returns a snapshot of the credential's counters.
func (c *Credential) Stats() Stats {
	return Stats{CachedTokens: c.cache.len(), TokenRequests: c.tokenRequests.Load(), BackgroundRefreshes: c.refreshes.Load()}
}

func checkScopes(scopes []string) error {
	for _, s := range scopes {
		if s == "" || len(s) > 1024 || strings.ContainsAny(s, " \t\r\n") {
			return fmt.Errorf("kvassert: scope %q is empty, too long or contains white space", truncate(s, 80))
		}
	}
	if len(scopes) != 1 || !strings.HasSuffix(scopes[0], "/.default") {
		return fmt.Errorf("kvassert: app-only tokens need exactly one scope ending in /.default (e.g. https://graph.microsoft.com/.default), got %q", truncate(strings.Join(scopes, " "), 200))
	}
	return nil
}

// ValidTenantID reports whether t can name a tenant: a GUID or a domain such
// as contoso.onmicrosoft.com: at most 256 bytes of dot-separated labels, each
// 1 to 63 letters, digits and '-', not starting or ending with '-'. Names
// such as ".", ".." or "contoso..com" are refused.
func ValidTenantID(t string) bool { return validTenant(t) }

// ValidClientID reports whether id is a client (application) ID: a GUID.
func ValidClientID(id string) bool { return validClientID(id) }

func validTenant(t string) bool {
	if t == "" || len(t) > 256 {
		return false
	}
	start := 0 // of the current label
	for i := 0; i <= len(t); i++ {
		if i == len(t) || t[i] == '.' {
			// An empty label (leading, trailing or doubled '.'), an
			// over-long one, or a '-' at either end cannot be in a domain.
			if n := i - start; n == 0 || n > 63 || t[start] == '-' || t[i-1] == '-' {
				return false
			}
			start = i + 1
			continue
		}
		ch := t[i]
		if !('0' <= ch && ch <= '9' || 'a' <= ch && ch <= 'z' || 'A' <= ch && ch <= 'Z' || ch == '-') {
			return false
		}
	}
	return true
}

func validClientID(id string) bool {
	if len(id) != 36 {
		return false
	}
	for i := 0; i < 36; i++ {
		ch := id[i]
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if ch != '-' {
				return false
			}
		case !('0' <= ch && ch <= '9' || 'a' <= ch && ch <= 'f' || 'A' <= ch && ch <= 'F'):
			return false
		}
	}
	return true
}

// lowerASCII lowercases s, allocating only when s has an upper-case letter.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// pipelineHTTP sends MSAL's requests through an azcore pipeline (retries,
// telemetry, the configured transport). It implements MSAL's HTTPClient.
type pipelineHTTP struct {
	client          *azcore.Client
	deriveDiscovery bool
	host            string // authority host, e.g. login.microsoftonline.com
	derived         atomic.Int64
}

func (p *pipelineHTTP) Do(r *http.Request) (*http.Response, error) {
	if p.deriveDiscovery {
		if resp, ok := p.openIDConfiguration(r); ok {
			return resp, nil
		}
	}
	req, err := runtime.NewRequest(r.Context(), r.Method, r.URL.String())
	if err != nil {
		return nil, err
	}
	if r.Body != nil && r.Body != http.NoBody {
		b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		r.Body.Close()
		if err != nil {
			return nil, err
		}
		if err := req.SetBody(streaming.NopCloser(bytes.NewReader(b)), r.Header.Get("Content-Type")); err != nil {
			return nil, err
		}
	}
	h := req.Raw().Header
	for k, vs := range r.Header {
		if _, set := h[k]; !set {
			h[k] = append([]string(nil), vs...)
		}
	}
	return p.client.Pipeline().Do(req)
}

func (p *pipelineHTTP) CloseIdleConnections() {}

// openIDConfiguration answers MSAL's GET of
// https://{host}/{tenant}/v2.0/.well-known/openid-configuration with the
// three fields MSAL reads, laid out as Entra documents them for every
// tenant. The issuer host is the authority host, which is what MSAL checks.
func (p *pipelineHTTP) openIDConfiguration(r *http.Request) (*http.Response, bool) {
	if r.Method != http.MethodGet || r.URL == nil || !strings.EqualFold(r.URL.Host, p.host) || r.URL.RawQuery != "" {
		return nil, false
	}
	tenant, ok := strings.CutSuffix(strings.TrimPrefix(r.URL.Path, "/"), "/v2.0/.well-known/openid-configuration")
	if !ok || !validTenant(tenant) {
		return nil, false
	}
	base := "https://" + p.host + "/" + tenant
	body, _ := json.Marshal(map[string]string{
		"token_endpoint":         base + "/oauth2/v2.0/token",
		"authorization_endpoint": base + "/oauth2/v2.0/authorize",
		"issuer":                 base + "/v2.0",
	})
	p.derived.Add(1)
	return &http.Response{
		StatusCode:    http.StatusOK,
		Status:        "200 OK",
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{"Content-Type": {"application/json; charset=utf-8"}},
		Body:          io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       r,
	}, true
}
