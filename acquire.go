package kvassert

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"

	"github.com/kvassert/kvassert/internal/flight"
)

// This file holds the shared acquisition of one token (single flight over
// the network, through MSAL) and the background refresh of a cached one.

// shared joins the acquisition in flight for key or starts one. The
// acquisition runs detached from ctx (bounded by AcquireTimeout) so that one
// caller's cancellation does not fail the others; each caller returns as
// soon as its own ctx ends.
func (c *Credential) shared(ctx context.Context, key flightKey) (azcore.AccessToken, error) {
	tok, err := c.flights.Do(ctx, key, c.timeout, func(ctx context.Context) (azcore.AccessToken, error) {
		// A caller that missed the cache just before the previous flight
		// for this key stored its token starts a new flight only after that
		// one ended: it takes the stored token instead of acquiring again.
		if key.claims == "" {
			if e := c.cache.get(key.cacheKey); e != nil && c.now().UnixNano() < e.useUntil {
				return e.tok, nil
			}
		}
		return c.run(ctx, key, nil)
	})
	if _, panicked := err.(*PanicError); panicked {
		// The flight's own (run's errors name the tenant already).
		return azcore.AccessToken{}, fmt.Errorf("kvassert: token for tenant %s: %w", key.tenant, err)
	}
	// run never returns a bare context error, so this is the caller's ctx
	// (which may have ended before the call: then no acquisition started).
	if err != nil && err == ctx.Err() {
		if why, ok := throttled(c.src); ok {
			return azcore.AccessToken{}, fmt.Errorf("kvassert: token for tenant %s: %s: %w", key.tenant, why, ctx.Err())
		}
		return azcore.AccessToken{}, fmt.Errorf("kvassert: token for tenant %s: %w", key.tenant, ctx.Err())
	}
	return tok, err
}

// run is one shared acquisition: it gets a token from the shared cache or
// the network and caches it (a token for claims replaces the claims-less one
// of its key). replacing is the entry a refresh replaces (nil on a miss).
func (c *Credential) run(ctx context.Context, key flightKey, replacing *entry) (_ azcore.AccessToken, err error) {
	ctx, end := c.tel.StartAcquire(ctx, key.tenant, key.scope)
	defer func() { end(err) }()
	start := c.neg.seq.Load()
	tok, err := c.fromSharedOrNetwork(ctx, key, replacing, start)
	if err != nil {
		c.noteRefusal(ctx, key, start, err)
		if pe := (*PanicError)(nil); errors.As(err, &pe) {
			// Recovered below (the vault's credential): log it as the
			// flight logs its own.
			c.logPanic(pe)
		}
		if err == context.Canceled || err == context.DeadlineExceeded {
			err = fmt.Errorf("kvassert: token for tenant %s: %w", key.tenant, err)
		}
		return azcore.AccessToken{}, err
	}
	now := c.now()
	// Not cached when issued before the tenant refused the app or was
	// forgotten (noteSuccess). A token for a domain names the tenant's
	// GUID: the credential learns the alias.
	c.noteSuccess(key.cacheKey, start, tokenTenant(key.tenant, tok.Token), func() {
		if old := c.cache.get(key.cacheKey); old != nil && old.tok.Token == tok.Token {
			// The token being replaced came back: keep its entry, which
			// holds its refresh failures (refresh counts this as one).
			return
		}
		e := newEntry(tok, now)
		e.local = key.claims != ""
		c.cache.put(key.cacheKey, e, now.UnixNano())
	})
	return tok, nil
}

// refresh renews a token in the background while callers keep the old one.
// A refresh that fails, or that brings back the same token, is tried again
// after e's back-off; the first failure is logged as a warning, later ones
// at debug level, and the recovery at info level.
func (c *Credential) refresh(key cacheKey, e *entry) {
	// The acquisition itself recovers its panics (flight.Group); this
	// goroutine also calls the Logger and the telemetry, user code too.
	defer func() {
		if r := recover(); r != nil {
			c.logPanic(&PanicError{What: "background token refresh", Value: r, Stack: debug.Stack()})
		}
	}()
	defer e.refreshing.Store(false)
	// A caller that read e before a refresh replaced it can win e's flag
	// once that refresh has reset it: e is superseded, and refreshing it
	// again would cost a second sign and token request.
	if c.cache.get(key) != e {
		return
	}
	c.refreshes.Add(1)
	fk := flightKey{cacheKey: key}
	var tok azcore.AccessToken
	var err error
	if rerr, trial := c.checkRefusal(context.Background(), key.tenant, key.scope); rerr != nil {
		err = rerr // remembered: no request
	} else {
		tok, err = c.flights.Do(context.Background(), fk, c.timeout, func(ctx context.Context) (azcore.AccessToken, error) {
			return c.run(ctx, fk, e)
		})
		endTrial(trial)
	}
	if err == nil && tok.Token == e.tok.Token {
		err = errors.New("kvassert: the token endpoint returned the token being refreshed")
	}
	c.tel.Refreshed(context.Background(), key.tenant, err)
	b := e.failures.Load()
	if err == nil {
		if b != nil {
			c.logger.Debug("kvassert: background token refresh recovered", "tenant", key.tenant, "scope", key.scope, "failed_refreshes", b.Failures())
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
	if b.Failures() == 1 && c.cache.get(key) == e {
		// (An entry evicted meanwhile, its tenant offboarded, was
		// reported as such.)
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
// answer to the source (feedback). When the answer is explained by a rotated
// certificate and the source then signs with another version, the request
// is retried (at most twice: maxFeedbackRetries).
func (c *Credential) acquire(ctx context.Context, key flightKey, scopes []string) (azcore.AccessToken, error) {
	client, err := c.msalClient(key.tenant, key.cae)
	if err != nil {
		return azcore.AccessToken{}, err
	}
	opts := []confidential.AcquireByCredentialOption{confidential.WithTenantID(key.tenant)}
	if key.claims != "" {
		opts = append(opts, confidential.WithClaims(key.claims))
	}
	ctx, answer := withAnswerRecord(ctx)
	res, err := acquireWithFeedback(ctx, c.src, func(ctx context.Context) (confidential.AuthResult, error) {
		c.tokenRequests.Add(1)
		answer.reset() // this attempt's answer only
		return client.AcquireTokenByCredential(ctx, scopes, opts...)
	}, func(code int) {
		c.logger.Debug("kvassert: Entra refused the certificate; the source signs with another version now, retrying", "tenant", key.tenant, "aadsts", code)
	})
	if err == nil {
		tok := azcore.AccessToken{Token: res.AccessToken, ExpiresOn: res.ExpiresOn, RefreshOn: res.Metadata.RefreshOn}
		if tok.Token == "" || !tok.ExpiresOn.After(time.Now()) {
			// MSAL takes "expires_in": 0 or -5, and an empty token.
			a, _ := answer.get()
			return azcore.AccessToken{}, &answerError{tenant: key.tenant, a: a, what: "holds an empty or already expired token"}
		}
		c.logger.Debug("kvassert: token acquired", "tenant", key.tenant, "scope", key.scope, "expires_on", res.ExpiresOn.UTC().Format(time.RFC3339))
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
		ae.Hint = hintText(ae.Code, key.tenant, c.clientID, c.host)
		return azcore.AccessToken{}, ae
	}
	return azcore.AccessToken{}, tokenEndpointFailure(key.tenant, err, answer)
}
