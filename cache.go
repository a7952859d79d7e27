package kvassert

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
)

// cacheKey identifies a cached token. scope is the single scope, or the
// scopes joined by spaces.
type cacheKey struct {
	tenant, scope, claims string
	cae                   bool
}

// entry is one cached token. Its fields other than refreshing and nextTry
// never change after it is stored.
type entry struct {
	tok       azcore.AccessToken
	refreshAt int64 // unix nanoseconds: start refreshing in the background
	useUntil  int64 // unix nanoseconds: stop handing it out
	// refreshing is set while a background refresh runs.
	refreshing atomic.Bool
	// nextTry delays the next background refresh after a failed one.
	nextTry atomic.Int64
}

// shardCount spreads lock traffic; a power of two.
const shardCount = 64

type shard struct {
	mu sync.RWMutex
	m  map[cacheKey]*entry
	_  [40]byte // keep neighbouring shards' locks off one cache line
}

// tokenCache is a sharded map; reads take one shard's read lock, so cached
// reads never wait for a token acquisition (which happens outside it).
type tokenCache struct {
	seed   maphash.Seed
	shards [shardCount]shard
}

func newTokenCache() *tokenCache {
	c := &tokenCache{seed: maphash.MakeSeed()}
	for i := range c.shards {
		c.shards[i].m = map[cacheKey]*entry{}
	}
	return c
}

func (c *tokenCache) shard(k *cacheKey) *shard {
	h := maphash.String(c.seed, k.tenant) ^ (maphash.String(c.seed, k.scope) * 31)
	return &c.shards[h&(shardCount-1)]
}

func (c *tokenCache) get(k cacheKey) *entry {
	s := c.shard(&k)
	s.mu.RLock()
	e := s.m[k]
	s.mu.RUnlock()
	return e
}

func (c *tokenCache) put(k cacheKey, e *entry) {
	s := c.shard(&k)
	s.mu.Lock()
	s.m[k] = e
	s.mu.Unlock()
}

func (c *tokenCache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}

// refreshMargin is how long before expiry a token is refreshed in the
// background. It matches MSAL's own 5-minute expiry buffer, so MSAL goes to
// the network instead of returning the token being replaced.
const refreshMargin = 5 * time.Minute

// minRemaining is the least validity a handed-out token has.
const minRemaining = 30 * time.Second

func newEntry(tok azcore.AccessToken) *entry {
	refresh := tok.ExpiresOn.Add(-refreshMargin)
	if !tok.RefreshOn.IsZero() && tok.RefreshOn.Before(refresh) {
		refresh = tok.RefreshOn
	}
	return &entry{tok: tok, refreshAt: refresh.UnixNano(), useUntil: tok.ExpiresOn.Add(-minRemaining).UnixNano()}
}
