// Package fleet lets the replicas of a service share what one replica paid
// for, through Redis (github.com/redis/go-redis/v9, any UniversalClient:
// standalone, Sentinel or Cluster):
//
//   - Cache, a kvassert.SharedCache: tokens encrypted with AES-256-GCM and
//     shared by every replica, with fleet-wide single flight (one replica
//     acquires each token, the others wait for it) and fleet-wide refresh.
//   - Throttle: the Key Vault 429 hold-off shared by every replica, and an
//     optional fleet sign budget so that a cold start of the whole fleet
//     stays under the vault's limit.
//
// Both degrade instead of failing: when Redis is down, slow, full or returns
// garbage, each replica does what it would do alone, behind short
// per-operation timeouts and a circuit breaker, and resumes sharing when
// Redis recovers.
//
// Encryption keys come from a Keyring: a data key wrapped by a Key Vault key
// (LoadDataKey, OpenDataKey) or a static key (KeyFromBase64, KeyFromEnv,
// KeyFromFile). Nothing here ever logs or returns in an error a token or a
// key.
package fleet
