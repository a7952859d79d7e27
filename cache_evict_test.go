package kvassert

import (
	"context"
	"fmt"
	"hash/maphash"
	"testing"
	"time"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"
)

// A churn of tenants with short-lived tokens: once their tokens can no
// longer be handed out, the entries leave the cache as new tokens arrive,
// including from shards that get no new token themselves.
func TestExpiredTokensAreEvicted(t *testing.T) {
	v := newLifecycleEnv(t, 4*60, 0)
	tenant := func(round, i int) string { return fmt.Sprintf("%08x-0000-4000-8000-%012x", round, i) }
	const perRound = 150
	for i := range perRound {
		v.get(t, tenant(1, i))
	}
	if n := v.c.stats().CachedTokens; n != perRound {
		t.Fatalf("%d cached tokens, want %d", n, perRound)
	}
	v.advance(5 * time.Minute) // every token of round 1 has expired
	for i := range perRound {
		v.get(t, tenant(2, i))
	}
	if n := v.c.stats().CachedTokens; n != perRound {
		t.Fatalf("after a second round of %d tenants, %d cached tokens: the expired ones were kept", perRound, n)
	}
	// Fewer new tenants than before: each put also sweeps another shard, so
	// shards that get no new token are emptied too.
	v.advance(5 * time.Minute)
	for i := range shardCount {
		v.get(t, tenant(3, i))
	}
	if n := v.c.stats().CachedTokens; n != shardCount {
		t.Fatalf("%d cached tokens, want the %d live ones", n, shardCount)
	}
}

// A pooled MSAL client keeps each tenant's endpoints for its life: after
// msalTenantsPerClient tenants it is replaced, so MSAL's memory stays
// bounded under a churn of tenants.
func TestMSALClientReplacedAfterTenantLimit(t *testing.T) {
	v := newLifecycleEnv(t, 3600, 0)
	var slot0 []string
	for i := 0; len(slot0) <= msalTenantsPerClient; i++ {
		tn := fmt.Sprintf("tenant%d.example", i)
		if maphash.String(v.c.cache.seed, tn)%msalPoolSize == 0 {
			slot0 = append(slot0, tn)
		}
	}
	first, err := v.c.msalClient(slot0[0], false)
	if err != nil {
		t.Fatal(err)
	}
	for _, tn := range slot0[:msalTenantsPerClient] {
		if cl, _ := v.c.msalClient(tn, false); cl != first {
			t.Fatalf("client replaced before %d tenants", msalTenantsPerClient)
		}
	}
	if cl, _ := v.c.msalClient(slot0[0], true); cl == first {
		t.Fatal("CAE and non-CAE requests share a client")
	}
	next, _ := v.c.msalClient(slot0[msalTenantsPerClient], false)
	if next == first {
		t.Fatalf("tenant %d did not get a new client", msalTenantsPerClient+1)
	}
	if cl, _ := v.c.msalClient(slot0[0], false); cl != next {
		t.Fatal("the replaced client is still handed out")
	}
	// The new client serves tokens (and MSAL keeps none: two requests, two POSTs).
	for range 2 {
		if _, err := next.AcquireTokenByCredential(context.Background(), []string{testScope}, confidential.WithTenantID(slot0[0])); err != nil {
			t.Fatal(err)
		}
	}
	if n := v.entra.requests.Load(); n != 2 {
		t.Fatalf("two AcquireTokenByCredential calls made %d token requests: MSAL answered from its cache", n)
	}
}
