package kvassert

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// fakeShared is a SharedCache that records its calls and serves the token
// serve (when set and not the stale one), else acquires.
type fakeShared struct {
	mu    sync.Mutex
	keys  []SharedKey
	stale []string
	serve string
}

func (f *fakeShared) Token(ctx context.Context, key SharedKey, stale azcore.AccessToken, acquire func(context.Context) (azcore.AccessToken, error)) (azcore.AccessToken, error) {
	f.mu.Lock()
	f.keys = append(f.keys, key)
	f.stale = append(f.stale, stale.Token)
	serve := f.serve
	f.mu.Unlock()
	if serve != "" && serve != stale.Token {
		return azcore.AccessToken{Token: serve, ExpiresOn: time.Now().Add(time.Hour)}, nil
	}
	return acquire(ctx)
}

func (f *fakeShared) calls() ([]SharedKey, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]SharedKey(nil), f.keys...), append([]string(nil), f.stale...)
}

// The shared cache is asked once per replica on a miss (concurrent callers
// share the call), never on a hit, and on refresh with the token being
// replaced; its key names the app (client ID, authority host).
func TestSharedCacheOnMissAndRefreshOnly(t *testing.T) {
	v := newLifecycleEnv(t, 3600, 0)
	fake := &fakeShared{}
	v.c.shc = fake
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := v.c.GetToken(context.Background(), policy.TokenRequestOptions{TenantID: testOther, Scopes: []string{testScope}}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	for range 100 {
		v.get(t, testOther)
	}
	keys, stale := fake.calls()
	want := SharedKey{ClientID: testClient, Authority: "login.microsoftonline.com", Tenant: testOther, Scope: testScope}
	if len(keys) != 1 || keys[0] != want || stale[0] != "" {
		t.Fatalf("150 GetTokens made %d shared-cache calls (%+v, stale %q); want 1 with %+v and no stale token", len(keys), keys, stale, want)
	}
	if n := v.entra.requests.Load(); n != 1 {
		t.Fatalf("%d token requests, want 1", n)
	}
	// Refresh time: the refresh asks the shared cache to replace tok-1.
	v.advance(56 * time.Minute)
	v.get(t, testOther)
	keys, stale = fake.calls()
	if len(keys) != 2 || stale[1] != "tok-1" || keys[1] != want {
		t.Fatalf("the refresh made %d shared-cache calls in all (stale %q); want a second one replacing tok-1", len(keys), stale)
	}
	if tok := v.get(t, testOther); tok != "tok-2" {
		t.Fatalf("after the refresh got %q, want tok-2", tok)
	}
	// A token another replica put in the shared cache is served without a
	// token request.
	fake.mu.Lock()
	fake.serve = "shared-token"
	fake.mu.Unlock()
	if tok := v.get(t, testHome); tok != "shared-token" {
		t.Fatalf("got %q, want the shared token", tok)
	}
	if n := v.entra.requests.Load(); n != 2 {
		t.Fatalf("%d token requests, want 2 (the shared token needs none)", n)
	}
}

// Tokens for a claims challenge keep their local semantics: the request
// with claims does not consult the shared cache, and neither does the
// refresh of the token it cached, so the refused token still in the shared
// cache never comes back to this replica.
func TestSharedCacheNotForClaims(t *testing.T) {
	v := newLifecycleEnv(t, 3600, 0)
	fake := &fakeShared{}
	v.c.shc = fake
	if tok := v.get(t, testOther); tok != "tok-1" {
		t.Fatalf("first token %q", tok)
	}
	fake.mu.Lock()
	fake.serve = "tok-1" // the shared cache holds the token a resource then refuses
	fake.mu.Unlock()
	tok, err := v.c.GetToken(context.Background(), policy.TokenRequestOptions{TenantID: testOther, Scopes: []string{testScope}, Claims: `{"access_token":{"nbf":{"essential":true,"value":"1"}}}`})
	if err != nil || tok.Token != "tok-2" {
		t.Fatalf("claims GetToken: %q, %v; want tok-2 from the token endpoint", tok.Token, err)
	}
	if got := v.get(t, testOther); got != "tok-2" {
		t.Fatalf("after the challenge got %q, want tok-2", got)
	}
	v.advance(56 * time.Minute)
	v.get(t, testOther) // refresh
	if got := v.get(t, testOther); got == "tok-1" {
		t.Fatal("the refresh of the challenge's token brought the refused token back from the shared cache")
	}
	if keys, _ := fake.calls(); len(keys) != 1 {
		t.Fatalf("%d shared-cache calls, want only the first miss", len(keys))
	}
}
