package fleet

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// notifier wakes the replica's waiters when another replica publishes a new
// value (or releases a lock). It holds one subscription per Cache, started
// on the first wait; go-redis reconnects and resubscribes it after a
// failure. Waiters also poll, so a lost message only delays them.
type notifier struct {
	client  redis.UniversalClient
	channel string

	mu      sync.Mutex
	ps      *redis.PubSub
	closed  bool
	waiters map[string]map[*waiter]struct{}

	woken  atomic.Int64 // waiters woken by a message (tests)
	panics atomic.Int64 // panics recovered in run (tests)
}

// waiter is one waiting call; ch has room for one wake-up.
type waiter struct {
	msg string
	ch  chan struct{}
}

func newNotifier(client redis.UniversalClient, channel string) *notifier {
	return &notifier{client: client, channel: channel, waiters: map[string]map[*waiter]struct{}{}}
}

// register adds a waiter for msg, subscribing on first use.
func (n *notifier) register(msg string) *waiter {
	w := &waiter{msg: msg, ch: make(chan struct{}, 1)}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ps == nil && !n.closed {
		// Subscribe without blocking the caller: go-redis connects lazily
		// and keeps retrying in the Channel goroutine.
		n.ps = n.client.Subscribe(context.Background())
		go n.run(n.ps)
	}
	set := n.waiters[msg]
	if set == nil {
		set = map[*waiter]struct{}{}
		n.waiters[msg] = set
	}
	set[w] = struct{}{}
	return w
}

func (n *notifier) unregister(w *waiter) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if set := n.waiters[w.msg]; set != nil {
		delete(set, w)
		if len(set) == 0 {
			delete(n.waiters, w.msg)
		}
	}
}

// run delivers the messages of ps. A panic in it (a bug of ours or of
// go-redis) must not take the process down: it is recovered, the
// subscription dropped (waiters keep polling), and the next wait
// subscribes again.
func (n *notifier) run(ps *redis.PubSub) {
	defer func() {
		if r := recover(); r != nil {
			n.panics.Add(1)
			n.mu.Lock()
			if n.ps == ps {
				n.ps = nil
			}
			n.mu.Unlock()
			ps.Close() //nolint:errcheck // dropping it
		}
	}()
	ps.Subscribe(context.Background(), n.channel) //nolint:errcheck // retried by the Channel goroutine
	for m := range ps.Channel() {
		if len(m.Payload) > maxMessage {
			continue // not a name of ours
		}
		n.wake(m.Payload)
	}
}

// maxMessage bounds the messages read: each is the base name of a token's
// keys (prefix, app, hash: well under 1 KiB).
const maxMessage = 1024

// onWake, when set, is called with every message delivered (tests). It is
// atomic: the listeners of other caches may be delivering while a test
// sets or clears it.
var onWake atomic.Pointer[func(string)]

func (n *notifier) wake(msg string) {
	if f := onWake.Load(); f != nil {
		(*f)(msg)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for w := range n.waiters[msg] {
		select {
		case w.ch <- struct{}{}:
			n.woken.Add(1)
		default:
		}
	}
}

func (n *notifier) close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.closed = true
	if n.ps == nil {
		return nil
	}
	return n.ps.Close()
}
