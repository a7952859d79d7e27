package kvassert

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"

	"github.com/kvassert/kvassert/internal/entraid"
	"github.com/kvassert/kvassert/internal/flight"
	"github.com/kvassert/kvassert/internal/obs"
	"github.com/kvassert/kvassert/internal/rootaccess"
)

// Version of this module, sent in the User-Agent of token requests.
const Version = "v0.1.0"

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
	shc     SharedCache // nil: no shared cache
	srcID   string      // the Source's identity in SharedKey (with shc)
	flights flight.Group[flightKey, azcore.AccessToken]

	clientsMu sync.Mutex
	clients   map[clientKey]*msalSlot

	tokenRequests atomic.Int64
	refreshes     atomic.Int64

	tel *obs.Credential // OpenTelemetry instruments (CredentialOptions.Telemetry)

	neg          negativeCache // remembered refusals (refusal.go)
	refusalMax   time.Duration // longest back-off; <= 0: refusals are not remembered
	onOffboarded func(tenant string, err *AuthError)
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
//
// The options' ClientOptions, Telemetry and Logger are given to a built-in
// Source (or one wrapped by WrapSource) whose own were left zero, so that
// the transport and telemetry are given once. A Source takes them from the
// first credential it is given to, before its first use; a Source shared
// by several credentials keeps the first one's, and one used before any
// credential was made keeps its own options.
func NewCredential(tenantID, clientID string, src Source, opts *CredentialOptions) (*Credential, error) {
	if src == nil {
		return nil, inputErr("src", "src is a nil Source")
	}
	if err := checkTenant("tenant", "tenant ID", tenantID); err != nil {
		return nil, err
	}
	if !entraid.ValidClientID(clientID) {
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
		cache: newTokenCache(), clients: map[clientKey]*msalSlot{}, tel: obs.NewCredential(o.Telemetry), shc: o.SharedCache,
	}
	if cs, ok := src.(configurable); ok {
		// Settings given once: see inherit.go.
		if err := cs.configure(inherited{clientOptions: o.ClientOptions, telemetry: o.Telemetry, logger: o.Logger}); err != nil {
			return nil, err
		}
	}
	if c.shc != nil {
		if c.srcID, err = sharedSourceIdentity(src); err != nil {
			return nil, err
		}
	}
	for _, t := range o.AdditionallyAllowedTenants {
		if t == "*" {
			c.allowAll = true
			continue
		}
		if err := checkTenant("AdditionallyAllowedTenants", "AdditionallyAllowedTenants: an entry", t); err != nil {
			return nil, err
		}
		c.allowed[strings.ToLower(t)] = true
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	c.logger = flight.SafeLogger(c.logger)
	if c.timeout <= 0 {
		c.timeout = 2 * time.Minute
	}
	c.neg.m, c.neg.worked, c.neg.forgot = map[refusalKey]*refusal{}, map[string]struct{}{}, map[string]uint64{}
	switch c.refusalMax, c.onOffboarded = o.RefusedTenantRetry, o.TenantOffboarded; {
	case c.refusalMax == 0:
		c.refusalMax = defaultRefusedTenantRetry
	case c.refusalMax < 0:
		c.refusalMax = 0
	}
	c.flights.Name = "token acquisition"
	c.flights.OnPanic = c.logPanic
	// The token request body holds the client assertion: never log bodies.
	o.ClientOptions.Logging.IncludeBody = false
	obs.ApplyTracing(o.Telemetry, &o.ClientOptions)
	azc, err := azcore.NewClient("kvassert", Version, runtime.PipelineOptions{}, &o.ClientOptions)
	if err != nil {
		return nil, err
	}
	c.http = &pipelineHTTP{client: azc, deriveDiscovery: !o.FetchOpenIDConfiguration, host: strings.TrimSuffix(strings.TrimPrefix(host, "https://"), "/"), tel: c.tel}
	obs.ObserveCachedTokens(c.tel, c, func(c *Credential) int { return c.cache.len() })
	return c, nil
}

// GetToken implements azcore.TokenCredential.
func (c *Credential) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	tenant, err := c.resolveTenant(opts.TenantID)
	if err != nil {
		c.tel.Served("", err) // never the caller's text as an attribute
		return azcore.AccessToken{}, err
	}
	switch len(opts.Scopes) {
	case 0:
		err := inputErr("scope", "no scope; app-only tokens need one scope such as https://graph.microsoft.com/.default")
		c.tel.Served(tenant, err)
		return azcore.AccessToken{}, err
	case 1:
	default:
		err := checkScopes(opts.Scopes)
		c.tel.Served(tenant, err)
		return azcore.AccessToken{}, err
	}
	key := cacheKey{tenant: tenant, scope: opts.Scopes[0], cae: opts.EnableCAE}
	if opts.Claims == "" {
		if e := c.cache.get(key); e != nil {
			now := c.now().UnixNano()
			if now < e.useUntil {
				if now >= e.refreshAt && now >= e.nextTry.Load() && e.refreshing.CompareAndSwap(false, true) {
					go c.refresh(key, e)
				}
				c.tel.Hit(tenant)
				return e.tok, nil
			}
		}
	}
	if err := checkScopes(opts.Scopes); err != nil {
		c.tel.Served(tenant, err)
		return azcore.AccessToken{}, err
	}
	if opts.Claims != "" {
		if err := checkClaims(opts.Claims, opts.EnableCAE); err != nil {
			c.tel.Served(tenant, err)
			return azcore.AccessToken{}, err
		}
	}
	rerr, trial := c.checkRefusal(ctx, tenant, key.scope)
	if rerr != nil {
		c.tel.Served(tenant, rerr)
		return azcore.AccessToken{}, rerr
	}
	tok, err := c.shared(ctx, flightKey{cacheKey: key, claims: opts.Claims})
	endTrial(trial)
	c.tel.Served(tenant, err)
	return tok, err
}

// logPanic logs a panic recovered in the credential's work (a Source, a
// SharedCache, a feedback hook, MSAL) at debug level: its value and stack
// may hold anything, so they go nowhere else; callers get a PanicError.
func (c *Credential) logPanic(pe *PanicError) {
	defer func() { _ = recover() }() // the logger's own panic
	c.logger.Debug("kvassert: recovered a panic in a "+pe.What+"; its callers got an error", "panic", fmt.Sprint(pe.Value), "stack", string(pe.Stack))
}

func (c *Credential) resolveTenant(specified string) (string, error) {
	if specified == "" {
		return c.home, nil
	}
	if !entraid.ValidTenant(specified) || entraid.TenantAlias(specified) {
		// Not repeated: only tenant-shaped text is ever echoed.
		return "", checkTenant("tenant", "the requested tenant", specified)
	}
	t := lowerASCII(specified)
	if t == c.home || c.allowAll || c.allowed[t] {
		return t, nil
	}
	return "", errTenantNotAllowed(specified)
}

// stats are counters of a Credential's work (internal/rootaccess).
func (c *Credential) stats() rootaccess.Stats {
	return rootaccess.Stats{CachedTokens: c.cache.len(), TokenRequests: c.tokenRequests.Load(), BackgroundRefreshes: c.refreshes.Load()}
}
