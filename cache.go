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
// never change after it is stored in the cache.
type entry struct {
	tok       azcore.AccessToken
	refreshAt int64 // unix nanoseconds: start refreshing in the background
	useUntil  int64 // unix nanoseconds: stop handing it out
	// refreshing is set while a background refresh runs.
	refreshing atomic.Bool
	// nextTry delays the next background refresh after a failed one.
	nextTry atomic.Int64

	key  cacheKey
	next *entry // another key with the same 64-bit hash (practically never)
}

// cloneForChain copies an entry that shares a hash with a new one. The copy
// starts with no refresh in progress.
func (e *entry) cloneForChain() *entry {
	cp := &entry{tok: e.tok, refreshAt: e.refreshAt, useUntil: e.useUntil, key: e.key}
	cp.nextTry.Store(e.nextTry.Load())
	return cp
}

// shardCount spreads writes; a power of two.
const shardCount = 64

// shard holds an immutable map from key hash to entries. Readers load it
// without locking; writers (token acquisitions, rare) copy it under mu.
type shard struct {
	m  atomic.Pointer[map[uint64]*entry]
	mu sync.Mutex
	_  [48]byte // keep neighbouring shards off one cache line
}

// tokenCache is a sharded, copy-on-write map: a cached read is one atomic
// load, one map lookup and a key comparison, with no lock and no allocation,
// so cached reads never wait for a token acquisition or for each other.
type tokenCache struct {
	seed    maphash.Seed
	collide bool // tests: hash every key alike to exercise collision chains
	shards  [shardCount]shard
}

func newTokenCache() *tokenCache {
	c := &tokenCache{seed: maphash.MakeSeed()}
	for i := range c.shards {
		m := map[uint64]*entry{}
		c.shards[i].m.Store(&m)
	}
	return c
}

func (c *tokenCache) hash(k *cacheKey) uint64 {
	if c.collide {
		return 42
	}
	h := maphash.String(c.seed, k.tenant)
	h = h*0x9E3779B97F4A7C15 ^ maphash.String(c.seed, k.scope)
	if k.claims != "" {
		h = h*0x9E3779B97F4A7C15 ^ maphash.String(c.seed, k.claims)
	}
	if k.cae {
		h ^= 0x5bd1e995
	}
	return h
}

func (c *tokenCache) get(k cacheKey) *entry {
	h := c.hash(&k)
	m := *c.shards[h&(shardCount-1)].m.Load()
	for e := m[h]; e != nil; e = e.next {
		if e.key == k {
			return e
		}
	}
	return nil
}

func (c *tokenCache) put(k cacheKey, e *entry) {
	h := c.hash(&k)
	s := &c.shards[h&(shardCount-1)]
	s.mu.Lock()
	defer s.mu.Unlock()
	old := *s.m.Load()
	m := make(map[uint64]*entry, len(old)+1)
	for kh, v := range old {
		m[kh] = v
	}
	// Rebuild the chain for h without any previous entry for k. Entries are
	// immutable apart from their atomics, so chains are copied, not edited.
	e.key = k
	e.next = nil
	for p := old[h]; p != nil; p = p.next {
		if p.key != k {
			cp := p.cloneForChain()
			cp.next = e.next
			e.next = cp
		}
	}
	m[h] = e
	s.m.Store(&m)
}

func (c *tokenCache) len() int {
	n := 0
	for i := range c.shards {
		for _, e := range *c.shards[i].m.Load() {
			for ; e != nil; e = e.next {
				n++
			}
		}
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
