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

	"github.com/kvassert/kvassert/internal/flight"
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
	// Logger receives one debug line per token acquired, a warning when a
	// token's background refresh first fails (later failures of that token
	// at debug level, its recovery at info level) (default slog.Default()).
	// Tokens and assertions are never logged.
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
// Tokens are cached per (tenant, scope, CAE): a cached GetToken is one atomic
// load and one map lookup, with no lock and no allocation. A token obtained
// for a claims challenge (TokenRequestOptions.Claims) replaces the cached
// one, so a revoked token is not handed out again. Concurrent misses for the
// same request share one acquisition (one assertion, one token request);
// misses for other keys run in parallel and cached calls never wait for
// them. Tokens are refreshed in the background at their RefreshOn or 5
// minutes before they expire, whichever is earlier, but not before half of
// their lifetime, so callers do not wait then either; a failed refresh is
// retried after a back-off (30 s, doubling, with jitter) while the cached
// token is served until 30 s before it expires. Expired tokens are evicted
// as new ones are cached.
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
	// clockMoved is set when a test replaced now (internal/credclock).
	clockMoved bool

	cache   *tokenCache
	flights flight.Group[flightKey, azcore.AccessToken]

	clientsMu sync.Mutex
	clients   map[clientKey]*msalSlot

	tokenRequests atomic.Int64
	refreshes     atomic.Int64
}

type clientKey struct {
	slot int
	cae  bool
}

// flightKey identifies one acquisition: concurrent requests with the same
// key share it. Requests with claims have their own acquisitions, whose
// token then replaces the cached one of the cacheKey.
type flightKey struct {
	cacheKey
	claims string
}

// NewCredential returns a credential for the app clientID registered in
// tenantID (its home tenant), authenticating with src.
func NewCredential(tenantID, clientID string, src Source, opts *CredentialOptions) (*Credential, error) {
	if src == nil {
		return nil, errors.New("kvassert: nil Source")
	}
	if !validTenant(tenantID) {
		return nil, inputErr("tenant", "tenant ID (%d bytes) is not a tenant ID or domain (letters, digits, '.', '-')", len(tenantID))
	}
	if !validClientID(clientID) {
		return nil, inputErr("client ID", "client ID (%d bytes) is not a GUID", len(clientID))
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
		cache: newTokenCache(), clients: map[clientKey]*msalSlot{},
	}
	for _, t := range o.AdditionallyAllowedTenants {
		if t == "*" {
			c.allowAll = true
			continue
		}
		if !validTenant(t) {
			return nil, inputErr("AdditionallyAllowedTenants", "AdditionallyAllowedTenants: an entry (%d bytes) is not a tenant ID or domain", len(t))
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
	switch len(opts.Scopes) {
	case 0:
		return azcore.AccessToken{}, errors.New("kvassert: no scope; app-only tokens need one scope such as https://graph.microsoft.com/.default")
	case 1:
	default:
		return azcore.AccessToken{}, checkScopes(opts.Scopes)
	}
	key := cacheKey{tenant: tenant, scope: opts.Scopes[0], cae: opts.EnableCAE}
	if opts.Claims == "" {
		if e := c.cache.get(key); e != nil {
			now := c.now().UnixNano()
			if now < e.useUntil {
				if now >= e.refreshAt && now >= e.nextTry.Load() && e.refreshing.CompareAndSwap(false, true) {
					go c.refresh(key, e)
				}
				return e.tok, nil
			}
		}
	}
	if err := checkScopes(opts.Scopes); err != nil {
		return azcore.AccessToken{}, err
	}
	return c.shared(ctx, flightKey{cacheKey: key, claims: opts.Claims})
}

// shared joins the acquisition in flight for key or starts one. The
// acquisition runs detached from ctx (bounded by AcquireTimeout) so that one
// caller's cancellation does not fail the others; each caller returns as
// soon as its own ctx ends.
func (c *Credential) shared(ctx context.Context, key flightKey) (azcore.AccessToken, error) {
	tok, err := c.flights.Do(ctx, key, c.timeout, func(ctx context.Context) (azcore.AccessToken, error) {
		return c.run(ctx, key)
	})
	// run never returns a bare context error, so this is the caller's ctx.
	if err != nil && err == ctx.Err() {
		if why, ok := throttled(c.src); ok {
			return azcore.AccessToken{}, fmt.Errorf("kvassert: token for tenant %s: %s: %w", key.tenant, why, ctx.Err())
		}
		return azcore.AccessToken{}, fmt.Errorf("kvassert: token for tenant %s: %w", key.tenant, ctx.Err())
	}
	return tok, err
}

// run is one shared acquisition: it gets a token from the network and
// caches it (a token for claims replaces the claims-less one of its key).
func (c *Credential) run(ctx context.Context, key flightKey) (azcore.AccessToken, error) {
	tok, err := c.acquire(ctx, key, []string{key.scope})
	if err != nil {
		if err == context.Canceled || err == context.DeadlineExceeded {
			err = fmt.Errorf("kvassert: token for tenant %s: %w", key.tenant, err)
		}
		return azcore.AccessToken{}, err
	}
	now := c.now()
	if old := c.cache.get(key.cacheKey); old != nil && old.tok.Token == tok.Token {
		// The token being replaced came back: keep its entry, which holds
		// its refresh failures (refresh counts this as one).
		return tok, nil
	}
	c.cache.put(key.cacheKey, newEntry(tok, now), now.UnixNano())
	return tok, nil
}

// refresh renews a token in the background while callers keep the old one.
// A refresh that fails, or that brings back the same token, is tried again
// after e's back-off; the first failure is logged as a warning, later ones
// at debug level, and the recovery at info level.
func (c *Credential) refresh(key cacheKey, e *entry) {
	c.refreshes.Add(1)
	defer e.refreshing.Store(false)
	fk := flightKey{cacheKey: key}
	tok, err := c.flights.Do(context.Background(), fk, c.timeout, func(ctx context.Context) (azcore.AccessToken, error) {
		return c.run(ctx, fk)
	})
	if err == nil && tok.Token == e.tok.Token {
		err = errors.New("kvassert: the token endpoint returned the token being refreshed")
	}
	b := e.failures.Load()
	if err == nil {
		if b != nil {
			c.logger.Info("kvassert: background token refresh recovered", "tenant", key.tenant, "scope", key.scope, "failed_refreshes", b.Failures())
		}
		return
	}
	if b == nil {
		b = &flight.Backoff{Base: refreshBackoff, Max: refreshBackoffMax}
		e.failures.Store(b)
	}
	next := b.Failed(c.now())
	e.nextTry.Store(next.UnixNano())
	level := slog.LevelDebug
	if b.Failures() == 1 {
		level = slog.LevelWarn
	}
	c.logger.Log(context.Background(), level, "kvassert: background token refresh failed; the cached token is still used until 30 s before it expires",
		"tenant", key.tenant, "scope", key.scope, "expires_on", e.tok.ExpiresOn.UTC().Format(time.RFC3339),
		"failed_refreshes", b.Failures(), "next_try", next.UTC().Format(time.RFC3339), "error", err)
}

// Background refreshes that fail are retried after refreshBackoff, doubling
// up to refreshBackoffMax, with jitter (flight.Backoff).
const (
	refreshBackoff    = 30 * time.Second
	refreshBackoffMax = 10 * time.Minute
)

// acquire gets a token from the network through MSAL and reports Entra's
// answer to the source (Feedback). When the answer is explained by a rotated
// certificate and the source then signs with another version, the request
// is retried once.
func (c *Credential) acquire(ctx context.Context, key flightKey, scopes []string) (azcore.AccessToken, error) {
	client, err := c.msalClient(key.tenant, key.cae)
	if err != nil {
		return azcore.AccessToken{}, err
	}
	opts := []confidential.AcquireByCredentialOption{confidential.WithTenantID(key.tenant)}
	if key.claims != "" {
		opts = append(opts, confidential.WithClaims(key.claims))
	}
	res, err := acquireWithFeedback(ctx, c.src, func(ctx context.Context) (confidential.AuthResult, error) {
		c.tokenRequests.Add(1)
		return client.AcquireTokenByCredential(ctx, scopes, opts...)
	}, func(code int) {
		c.logger.Info("kvassert: Entra refused the certificate; the source signs with another version now, retrying once", "tenant", key.tenant, "aadsts", code)
	})
	if err == nil {
		c.logger.Debug("kvassert: token acquired", "tenant", key.tenant, "scope", key.scope, "expires_on", res.ExpiresOn.UTC().Format(time.RFC3339))
		tok := azcore.AccessToken{Token: res.AccessToken, ExpiresOn: res.ExpiresOn, RefreshOn: res.Metadata.RefreshOn}
		if c.clockMoved {
			// MSAL dates the token on the real clock; tests that move the
			// credential's clock (internal/credclock) see it on theirs.
			skew := c.now().Sub(time.Now())
			tok.ExpiresOn = tok.ExpiresOn.Add(skew)
			if !tok.RefreshOn.IsZero() {
				tok.RefreshOn = tok.RefreshOn.Add(skew)
			}
		}
		return tok, nil
	}
	if ae, isAuth := newAuthError(key.tenant, c.clientID, err); isAuth {
		return azcore.AccessToken{}, ae
	}
	return azcore.AccessToken{}, fmt.Errorf("kvassert: token for tenant %s: %w", key.tenant, err)
}

// msalPoolSize is the number of MSAL clients a credential spreads tenants
// over (for each of CAE and non-CAE), so that no one client's lock or
// per-tenant state serves every tenant.
const msalPoolSize = 64

// msalTenantsPerClient bounds the tenants one pooled MSAL client has served:
// MSAL keeps each tenant's endpoints (about 0.5 KB) for the life of the
// client, so a client that reaches it is replaced by a new one, and the pool
// holds at most 64 x 64 tenants' endpoints per CAE setting. With derived
// discovery (the default) a new client costs no network call; with
// FetchOpenIDConfiguration it fetches each tenant's configuration again.
const msalTenantsPerClient = 64

// msalClient returns the pooled MSAL client for tenant. The clients keep no
// tokens (noTokenCache): the credential's cache is in front of them.
func (c *Credential) msalClient(tenant string, cae bool) (*confidential.Client, error) {
	k := clientKey{slot: int(maphash.String(c.cache.seed, tenant) % msalPoolSize), cae: cae}
	c.clientsMu.Lock()
	defer c.clientsMu.Unlock()
	s := c.clients[k]
	if s != nil && s.serve(tenant) {
		return s.client, nil
	}
	cred, err := NewMSALCredential(c.src)
	if err != nil {
		return nil, err
	}
	opts := []confidential.Option{confidential.WithHTTPClient(c.http), confidential.WithInstanceDiscovery(false), confidential.WithCache(noTokenCache{})}
	if cae {
		opts = append(opts, confidential.WithClientCapabilities([]string{"cp1"}))
	}
	cl, err := confidential.New(c.host+c.home, c.clientID, cred, opts...)
	if err != nil {
		return nil, fmt.Errorf("kvassert: %w", err)
	}
	s = &msalSlot{client: &cl, tenants: map[string]struct{}{}}
	s.serve(tenant)
	c.clients[k] = s
	return s.client, nil
}

func (c *Credential) resolveTenant(specified string) (string, error) {
	if specified == "" {
		return c.home, nil
	}
	if !validTenant(specified) {
		// Not repeated: only tenant-shaped text is ever echoed.
		return "", inputErr("tenant", "the requested tenant (%d bytes) is not a tenant ID or domain (letters, digits, '.', '-')", len(specified))
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
	// TokenRequests is the number of token requests sent through MSAL (each
	// makes one assertion and one token POST: MSAL's own token cache is
	// not used).
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
	start := 0 // first byte of the current label
	for i := 0; i < len(t); i++ {
		switch tenantByte[t[i]] {
		case tenantAlnum:
		case tenantHyphen: // not first in a label
			if i == start {
				return false
			}
		case tenantDot: // ends a label: not empty, not ending with '-', at most 63
			if i == start || t[i-1] == '-' || i-start > 63 {
				return false
			}
			start = i + 1
		default:
			return false
		}
	}
	return start < len(t) && t[len(t)-1] != '-' && len(t)-start <= 63
}

// tenantByte classifies the bytes of a tenant name for validTenant (a table
// keeps the per-call check, which every GetToken makes, as cheap as a
// character-class loop).
var tenantByte = func() (c [256]uint8) {
	for ch := '0'; ch <= '9'; ch++ {
		c[ch] = tenantAlnum
	}
	for ch := 'a'; ch <= 'z'; ch++ {
		c[ch], c[ch-'a'+'A'] = tenantAlnum, tenantAlnum
	}
	c['-'], c['.'] = tenantHyphen, tenantDot
	return c
}()

const (
	tenantAlnum = 1 + iota
	tenantHyphen
	tenantDot
)

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
