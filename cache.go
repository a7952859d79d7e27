package kvassert

import (
	"hash/maphash"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/kvassert/kvassert/internal/flight"
)

// cacheKey identifies a cached token. Tokens are only cached for one
// scope (checkScopes refuses more), and without claims: a token obtained for
// a claims challenge replaces the claims-less token of its key.
type cacheKey struct {
	tenant, scope string
	cae           bool
}

// entry is one cached token. Its fields other than the atomics never change
// after it is stored in the cache.
type entry struct {
	tok       azcore.AccessToken
	refreshAt int64 // unix nanoseconds: start refreshing in the background
	useUntil  int64 // unix nanoseconds: stop handing it out (and evict it)
	// refreshing is set while a background refresh runs; only the refresh
	// that set it touches failures.
	refreshing atomic.Bool
	// nextTry delays the next background refresh after a failed one.
	nextTry atomic.Int64
	// failures remembers the failed background refreshes of this token
	// (nil until the first one).
	failures atomic.Pointer[flight.Backoff]
	// local is set for a token obtained for a claims challenge: its
	// refresh does not consult the shared cache (credential_shared.go).
	local bool

	key  cacheKey
	next *entry // another key with the same 64-bit hash (practically never)
}

// cloneForChain copies an entry that shares a hash with a new one. The copy
// starts with no refresh in progress.
func (e *entry) cloneForChain() *entry {
	cp := &entry{tok: e.tok, refreshAt: e.refreshAt, useUntil: e.useUntil, key: e.key, local: e.local}
	cp.nextTry.Store(e.nextTry.Load())
	cp.failures.Store(e.failures.Load())
	return cp
}

// shardCount spreads writes; a power of two.
const shardCount = 64

// shard holds an immutable map from key hash to entries. Readers load it
// without locking; writers (token acquisitions, rare) copy it under mu.
type shard struct {
	m  atomic.Pointer[map[uint64]*entry]
	mu sync.Mutex
	// expiresAt is the earliest useUntil of the shard's entries (unix
	// nanoseconds; math.MaxInt64 when empty): the shard holds an entry to
	// evict once it has passed.
	expiresAt atomic.Int64
	_         [40]byte // keep neighbouring shards off one cache line
}

// tokenCache is a sharded, copy-on-write map: a cached read is one atomic
// load, one map lookup and a key comparison, with no lock and no allocation,
// so cached reads never wait for a token acquisition or for each other.
//
// Eviction costs no extra pass: a put copies its shard's map anyway and
// leaves out the entries that can no longer be handed out, and then sweeps
// one other shard (round robin) if that shard holds such an entry, so that
// shards that get no puts are emptied too. Every operation works on at most
// two shards; nothing scans the whole cache.
type tokenCache struct {
	seed    maphash.Seed
	collide bool // tests: hash every key alike to exercise collision chains
	sweep   atomic.Uint32
	shards  [shardCount]shard
}

func newTokenCache() *tokenCache {
	c := &tokenCache{seed: maphash.MakeSeed()}
	for i := range c.shards {
		m := map[uint64]*entry{}
		c.shards[i].m.Store(&m)
		c.shards[i].expiresAt.Store(math.MaxInt64)
	}
	return c
}

func (c *tokenCache) hash(k *cacheKey) uint64 {
	if c.collide {
		return 42
	}
	h := maphash.String(c.seed, k.tenant)
	h = h*0x9E3779B97F4A7C15 ^ maphash.String(c.seed, k.scope)
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

// put stores e for k, replacing any entry for k, and evicts the entries of
// its shard (and of one other shard) whose useUntil is before now (unix
// nanoseconds).
func (c *tokenCache) put(k cacheKey, e *entry, now int64) {
	h := c.hash(&k)
	i := h & (shardCount - 1)
	s := &c.shards[i]
	s.mu.Lock()
	e.key = k
	e.next = nil
	s.rebuild(now, h, e)
	s.mu.Unlock()
	if j := uint64(c.sweep.Add(1)) % shardCount; j != i {
		c.shards[j].evict(now)
	}
}

// evict drops the shard's entries whose useUntil is before now, if it has
// any.
func (s *shard) evict(now int64) {
	if s.expiresAt.Load() > now {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.expiresAt.Load() <= now {
		s.rebuild(now, 0, nil)
	}
}

// rebuild stores a copy of the shard's map without the entries whose
// useUntil is before now and, when e is not nil, with e (whose key and
// hash h are set) in place of any entry for its key. Entries are immutable
// apart from their atomics, so chains are copied, not edited. s.mu is held.
func (s *shard) rebuild(now int64, h uint64, e *entry) {
	old := *s.m.Load()
	m := make(map[uint64]*entry, len(old)+1)
	earliest := int64(math.MaxInt64)
	keep := func(kh uint64, head *entry) {
		for p := head; p != nil; p = p.next {
			earliest = min(earliest, p.useUntil)
		}
		m[kh] = head
	}
	for kh, head := range old {
		if e != nil && kh == h {
			continue
		}
		if head.next == nil { // the usual case: no other key with this hash
			if head.useUntil > now {
				keep(kh, head)
			}
			continue
		}
		if chain := liveChain(head, now, nil); chain != nil {
			keep(kh, chain)
		}
	}
	if e != nil {
		e.next = liveChain(old[h], now, &e.key)
		keep(h, e)
	}
	s.m.Store(&m)
	s.expiresAt.Store(earliest)
}

// liveChain returns the entries of chain head whose useUntil is not before
// now, other than skip's: head itself when that is all of them, else copies.
func liveChain(head *entry, now int64, skip *cacheKey) *entry {
	all := true
	for p := head; p != nil; p = p.next {
		if p.useUntil <= now || skip != nil && p.key == *skip {
			all = false
			break
		}
	}
	if all {
		return head
	}
	var out *entry
	for p := head; p != nil; p = p.next {
		if p.useUntil > now && (skip == nil || p.key != *skip) {
			cp := p.cloneForChain()
			cp.next = out
			out = cp
		}
	}
	return out
}

// removeTenant drops every entry of the tenant names (each scope, CAE or
// not, and tokens obtained for claims) and returns how many it dropped. It
// scans each shard's map once without locking and rebuilds only the shards
// that hold such an entry (offboarding and ForgetTenant: rare). names are
// the names of one tenant: a few (refusal_alias.go).
func (c *tokenCache) removeTenant(names ...string) int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		if countTenant(*s.m.Load(), names) == 0 {
			continue
		}
		s.mu.Lock()
		n += s.removeTenant(names)
		s.mu.Unlock()
	}
	return n
}

func countTenant(m map[uint64]*entry, names []string) int {
	n := 0
	for _, head := range m {
		n += chainCount(head, names)
	}
	return n
}

// chainCount counts the entries of the tenant names in the chain head.
func chainCount(head *entry, names []string) int {
	n := 0
	for p := head; p != nil; p = p.next {
		if slices.Contains(names, p.key.tenant) {
			n++
		}
	}
	return n
}

// removeTenant stores a copy of the shard's map without the entries of the
// tenant names and returns how many it dropped. s.mu is held.
func (s *shard) removeTenant(names []string) int {
	old := *s.m.Load()
	n := countTenant(old, names)
	if n == 0 {
		return 0
	}
	m := make(map[uint64]*entry, len(old))
	earliest := int64(math.MaxInt64)
	for h, head := range old {
		chain := head
		if chainCount(head, names) != 0 {
			chain = nil
			for p := head; p != nil; p = p.next {
				if !slices.Contains(names, p.key.tenant) {
					cp := p.cloneForChain()
					cp.next = chain
					chain = cp
				}
			}
		}
		if chain == nil {
			continue
		}
		for p := chain; p != nil; p = p.next {
			earliest = min(earliest, p.useUntil)
		}
		m[h] = chain
	}
	s.m.Store(&m)
	s.expiresAt.Store(earliest)
	return n
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
// background, unless the token's RefreshOn (Entra's refresh_in) is earlier.
const refreshMargin = 5 * time.Minute

// minRemaining is the least validity a handed-out token has.
const minRemaining = 30 * time.Second

// newEntry caches tok, obtained at now. It is refreshed at its RefreshOn or
// refreshMargin before it expires, whichever is earlier, but never before
// half of its remaining lifetime has passed (so a token shorter than the
// margin, or a RefreshOn already passed, is not refreshed on every call),
// and handed out until minRemaining before it expires.
func newEntry(tok azcore.AccessToken, now time.Time) *entry {
	refresh := tok.ExpiresOn.Add(-refreshMargin)
	if !tok.RefreshOn.IsZero() && tok.RefreshOn.Before(refresh) {
		refresh = tok.RefreshOn
	}
	if half := now.Add(tok.ExpiresOn.Sub(now) / 2); refresh.Before(half) {
		refresh = half
	}
	return &entry{tok: tok, refreshAt: refresh.UnixNano(), useUntil: tok.ExpiresOn.Add(-minRemaining).UnixNano()}
}
