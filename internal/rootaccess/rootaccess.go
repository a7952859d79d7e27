// Package rootaccess gives this module's CLI, proxy, rotation and tests
// what package kvassert keeps out of its API: a Key Vault certificate
// source's certificate cache and a Credential's counters. Package kvassert
// registers the accessors at init.
package rootaccess

import "github.com/kvassert/kvassert/internal/certcache"

// Stats are counters of a kvassert Credential's work.
type Stats struct {
	// CachedTokens is the number of tokens in the cache.
	CachedTokens int
	// TokenRequests is the number of token requests sent through MSAL (each
	// makes one assertion and one token POST).
	TokenRequests int64
	// BackgroundRefreshes started.
	BackgroundRefreshes int64
}

var (
	cacheOf func(src any) *certcache.Cache
	statsOf func(cred any) Stats
)

// Register installs the accessors; package kvassert calls it once, at init.
func Register(cache func(src any) *certcache.Cache, stats func(cred any) Stats) {
	cacheOf, statsOf = cache, stats
}

// Cache returns the certificate cache of src, a
// *kvassert.KeyVaultCertificateSource (nil for any other value): the
// certificate in use (Certificate), Invalidate, the accepted version, and
// Adopt for a roller that registered a new version. Calling it makes the
// source's settings final, as its first use does.
func Cache(src any) *certcache.Cache { return cacheOf(src) }

// CredentialStats returns a snapshot of cred's (a *kvassert.Credential)
// counters.
func CredentialStats(cred any) Stats { return statsOf(cred) }
