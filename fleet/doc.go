// Package fleet lets the replicas of a service share what one replica paid
// for, through Redis (github.com/redis/go-redis/v9, any UniversalClient:
// standalone, Sentinel or Cluster):
//
//   - Cache, a kvassert.SharedCache: tokens encrypted with AES-256-GCM and
//     shared by every replica, with fleet-wide single flight (one replica
//     acquires each token, the others wait for it) and fleet-wide refresh.
//     It shares tenant refusals too (issue 21): a tenant Entra refused in
//     one replica fails fast in every replica (Refusal), and no replica is
//     served a token the fleet stored for it before (Refuse, Forget: a
//     per-tenant epoch that the token read checks in the same round trip).
//   - Throttle: the Key Vault 429 hold-off shared by every replica, and an
//     optional fleet sign budget so that a cold start of the whole fleet
//     stays under the vault's limit.
//
// Both degrade instead of failing: when Redis is down, slow, full or returns
// garbage, each replica does what it would do alone, behind short
// per-operation timeouts and a circuit breaker, and resumes sharing when
// Redis recovers.
//
// Entries are encrypted with a Key: the fleet's data key wrapped by a Key
// Vault key (LoadDataKey; SealDataKey to give it by configuration
// instead) or a static key (NewKey, KeyFromBase64). Nothing here ever logs
// or returns in an error a token or a key.
//
// Wiring, every option struct one level deep (nil options mean defaults):
//
//	rdb, _ := fleet.NewClient("rediss://app:secret@cache.example.com:6380")
//	dk, _ := fleet.LoadDataKey(ctx, rdb, keysClient, "fleet-kek", nil)
//	cache, _ := fleet.NewCache(rdb, dk, nil)
//	throttle, _ := fleet.NewThrottle(rdb, "myvault.vault.azure.net", &fleet.ThrottleOptions{Budget: 3600})
//
// then give the cache to the credential (CredentialOptions.SharedCache) and
// the throttle to the Key Vault source that signs in that vault (its
// options' Throttle). Bad input to every constructor is a
// *kvassert.InputError naming the parameter; the package logs only
// warnings an operator acts on (Redis failing, rejected entries), at most
// once per CacheOptions.WarnEvery, to CacheOptions.Logger (slog.Default()
// when nil).
package fleet
