package entra

import (
	"container/heap"
	"sync"
	"time"
)

// jtiCache remembers the jti of accepted client assertions until they can no
// longer be accepted anyway (exp plus the clock skew), in bounded memory: past
// max entries the ones that expire first are forgotten first.
type jtiCache struct {
	mu   sync.Mutex
	max  int
	seen map[string]time.Time
	byAt jtiHeap
}

func newJTICache(max int) *jtiCache {
	return &jtiCache{max: max, seen: map[string]time.Time{}}
}

// add records key until the given time and reports whether it was new.
func (c *jtiCache) add(key string, until, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.byAt) > 0 && !c.byAt[0].until.After(now) {
		e := heap.Pop(&c.byAt).(jtiEntry)
		if c.seen[e.key].Equal(e.until) {
			delete(c.seen, e.key)
		}
	}
	if at, ok := c.seen[key]; ok && at.After(now) {
		return false
	}
	for len(c.seen) >= c.max && len(c.byAt) > 0 {
		e := heap.Pop(&c.byAt).(jtiEntry)
		if c.seen[e.key].Equal(e.until) {
			delete(c.seen, e.key)
		}
	}
	c.seen[key] = until
	heap.Push(&c.byAt, jtiEntry{key: key, until: until})
	return true
}

func (c *jtiCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

type jtiEntry struct {
	key   string
	until time.Time
}

type jtiHeap []jtiEntry

func (h jtiHeap) Len() int           { return len(h) }
func (h jtiHeap) Less(i, j int) bool { return h[i].until.Before(h[j].until) }
func (h jtiHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *jtiHeap) Push(x any)        { *h = append(*h, x.(jtiEntry)) }
func (h *jtiHeap) Pop() any {
	old := *h
	n := len(old)
	x := old[n-1]
	*h = old[:n-1]
	return x
}
