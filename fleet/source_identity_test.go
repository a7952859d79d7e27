package fleet_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/fleet"
	"github.com/kvassert/kvassert/internal/testcert"
	"github.com/kvassert/kvassert/internal/testfixture"
)

// unregisteredLocal makes a local certificate that is not registered on
// the demo app: Entra refuses its assertions (AADSTS700027).
func unregisteredLocal(t *testing.T) *kvassert.LocalSource {
	t.Helper()
	c := testcert.New(t, &testcert.Options{Serial: 99, CommonName: "not registered"})
	cert, key := c.Cert, c.RSA(t)
	src, err := kvassert.NewLocalSource(cert, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// replicaWithToken is an env with one tenant and replica A, which has put
// the tenant's token in the fleet cache.
func replicaWithToken(t *testing.T) (*credEnv, string, replicaCred, azcore.AccessToken) {
	t.Helper()
	c := newCredEnv(t, 1)
	tenant := c.tenants[0]
	a := c.replica(t, c.key, fleet.CacheOptions{})
	tokA, err := a.cred.GetToken(context.Background(), testfixture.Opts(tenant))
	if err != nil {
		t.Fatal(err)
	}
	return c, tenant, a, tokA
}

// localCred is a credential of the demo app over src with the fleet cache.
func (c *credEnv) localCred(t *testing.T, src kvassert.Source, cache *fleet.Cache) *kvassert.Credential {
	t.Helper()
	return testfixture.NewCredential(t, c.e, src, func(o *kvassert.CredentialOptions) {
		o.SharedCache = cache
		o.Logger = slog.New(slog.DiscardHandler)
	})
}

// TestUnprovenSourceGetsNoSharedToken (issue 18, defect 3): replica A, with
// the Key Vault certificate registered on the app, puts a tenant's token in
// the fleet cache; credential B, with a local certificate that is not
// registered and the same cache, must not be served it: Entra refuses B
// (AADSTS700027), as it would without the cache.
func TestUnprovenSourceGetsNoSharedToken(t *testing.T) {
	c, tenant, a, tokA := replicaWithToken(t)
	b := c.localCred(t, unregisteredLocal(t), a.cache)
	tok, err := b.GetToken(context.Background(), testfixture.Opts(tenant))
	if err == nil {
		same := tok.Token == tokA.Token
		t.Fatalf("an unregistered certificate got a token from the shared cache (A's token: %v); want Entra's AADSTS700027", same)
	}
	if !strings.Contains(err.Error(), "AADSTS700027") {
		t.Fatalf("unregistered certificate: %v; want AADSTS700027", err)
	}
}

// TestSwappedSourceEntryMisses (issue 18, defect 3): an entry written under
// one source's identity, copied onto the name of another source's entry in
// Redis, does not decrypt there: the other source misses and gets its own
// token, never the first source's.
func TestSwappedSourceEntryMisses(t *testing.T) {
	c, tenant, a, tokA := replicaWithToken(t)
	keysA := c.tokenKeys(t)
	if len(keysA) != 1 {
		t.Fatalf("%d token entries after A, want 1", len(keysA))
	}
	cert, key := testfixture.LocalKey(t, c.e) // registered
	local, err := kvassert.NewLocalSource(cert, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	tokL, err := c.localCred(t, local, a.cache).GetToken(context.Background(), testfixture.Opts(tenant))
	if err != nil {
		t.Fatal(err)
	}
	if tokL.Token == tokA.Token {
		t.Fatal("a registered local certificate was served the Key Vault source's token from the shared cache; want its own")
	}
	all := c.tokenKeys(t)
	if len(all) != 2 {
		t.Fatalf("%d token entries after two sources, want 2", len(all))
	}
	// Copy A's entry onto the local source's name.
	var nameL string
	for _, k := range all {
		if k != keysA[0] {
			nameL = k
		}
	}
	ctx := context.Background()
	v, err := c.raw.Get(ctx, keysA[0]).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.raw.Set(ctx, nameL, v, time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	before := a.cache.Stats().DecryptFailures
	tok, err := c.localCred(t, local, a.cache).GetToken(ctx, testfixture.Opts(tenant))
	if err != nil {
		t.Fatal(err)
	}
	if tok.Token == tokA.Token {
		t.Fatal("the Key Vault source's entry, copied onto the local source's name, was served to the local source")
	}
	if n := a.cache.Stats().DecryptFailures - before; n != 1 {
		t.Fatalf("%d entries rejected, want the swapped one", n)
	}
}
