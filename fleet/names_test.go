package fleet_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kvassert/kvassert/fleet"
	"github.com/kvassert/kvassert/internal/testfixture"
)

// unkeyedNames are the hashes anyone could compute for a tenant: of the
// tenant alone, and of the token identity as the key names used to hash it.
func unkeyedNames(tenant string) []string {
	field := func(b []byte, s string) []byte {
		b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
		return append(b, s...)
	}
	var b []byte
	b = field(b, tenant)
	b = field(b, testfixture.Graph)
	b = field(b, "")
	out := []string{}
	for _, cae := range []byte{0, 1} {
		s := sha256.Sum256(append(b, cae))
		out = append(out, hex.EncodeToString(s[:16]))
	}
	s := sha256.Sum256([]byte(tenant))
	return append(out, hex.EncodeToString(s[:]), hex.EncodeToString(s[:16]))
}

// TestRedisRevealsNoTenant (issue 18, defect 7): with read access to Redis
// (every key, value and pub/sub message), nothing names a tenant: no tenant
// ID in clear, and no unkeyed hash of a tenant one could compute.
func TestRedisRevealsNoTenant(t *testing.T) {
	c := newCredEnv(t, 3)
	ctx := context.Background()
	ps := c.raw.PSubscribe(ctx, "*")
	defer ps.Close()
	if _, err := ps.Receive(ctx); err != nil { // the subscription is active
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m := range ps.Channel() {
			mu.Lock()
			seen = append(seen, m.Channel, m.Payload)
			mu.Unlock()
		}
	}()
	a := c.replica(t, c.key, fleet.CacheOptions{})
	b := c.replica(t, c.key, fleet.CacheOptions{})
	if n := a.get(t, c.tenants) + b.get(t, c.tenants); n != 0 {
		t.Fatalf("%d caller errors", n)
	}
	keys, err := c.raw.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	// The messages of the acquisitions (one per tenant) have arrived once
	// a message published now arrives after them.
	c.raw.Publish(ctx, "zz-end", "end")
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		last := len(seen) > 0 && seen[len(seen)-1] == "end"
		mu.Unlock()
		if last {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no pub/sub message in 30 s")
		}
	}
	ps.Close()
	<-done
	texts := append([]string(nil), keys...)
	for _, k := range keys {
		if v, err := c.raw.Get(ctx, k).Result(); err == nil {
			texts = append(texts, v)
		}
	}
	texts = append(texts, seen...)
	if len(seen) < 2*len(c.tenants) {
		t.Fatalf("%d pub/sub texts, want a message per tenant", len(seen)/2)
	}
	for _, tenant := range c.tenants {
		needles := append(unkeyedNames(tenant), tenant, strings.ReplaceAll(tenant, "-", ""))
		for _, text := range texts {
			for _, n := range needles {
				if strings.Contains(strings.ToLower(text), n) {
					t.Fatalf("Redis reveals tenant %s: %q (in %q)", tenant, n, text)
				}
			}
		}
	}
}
