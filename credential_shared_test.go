package kvassert

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/kvassert/kvassert/internal/testcert"
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
	v.want(t, testOther, "tok-1", "first token")
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

// anonymousSource is a Source that does not name the credential it proves.
type anonymousSource struct{}

func (anonymousSource) Assertion(context.Context, string, string) (string, error) { return "", nil }

// namedSource is a user Source that names its credential.
type namedSource struct {
	anonymousSource
	id string
}

func (s namedSource) SourceIdentity() string { return s.id }

// A SharedCache with a Source that cannot name the credential it proves is
// refused (issue 18, defect 3: fail closed, never share), with an
// InputError saying how to fix it; the identity of a Source that has one
// is part of every SharedKey.
func TestSharedCacheNeedsSourceIdentity(t *testing.T) {
	o := &CredentialOptions{SharedCache: &fakeShared{}}
	for _, src := range []Source{anonymousSource{}, namedSource{}, namedSource{id: strings.Repeat("x", 2000)}} {
		_, err := NewCredential(testHome, testClient, src, o)
		var ie *InputError
		if !errors.As(err, &ie) || !strings.Contains(err.Error(), "SourceIdentity") && !strings.Contains(err.Error(), "identity") {
			t.Fatalf("%T: %v; want an InputError naming SourceIdentity", src, err)
		}
	}
	if _, err := NewCredential(testHome, testClient, anonymousSource{}, nil); err != nil {
		t.Fatalf("without a SharedCache any Source will do: %v", err)
	}
	fake := &fakeShared{}
	c, err := NewCredential(testHome, testClient, namedSource{id: "mine"}, &CredentialOptions{SharedCache: fake})
	if err != nil {
		t.Fatal(err)
	}
	if k := c.sharedKey(flightKey{cacheKey: cacheKey{tenant: testOther, scope: testScope}}); k.Source != "mine" {
		t.Fatalf("shared key %+v; want Source %q", k, "mine")
	}
}

// Every kvassert Source names its credential: two local certificates, or
// a local and a Key Vault certificate, never share an identity.
func TestSourcesHaveIdentities(t *testing.T) {
	ids := map[string]bool{}
	for range 2 {
		cert, key := newTestCertificate(t)
		s, err := NewLocalSource(cert, key, nil)
		if err != nil {
			t.Fatal(err)
		}
		ids[s.sourceIdentity()] = true
	}
	kv, err := NewKeyVaultCertificateSource("https://Demo.vault.azure.net", "App-Cert", fakeTokenCredential{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ids[kv.sourceIdentity()] = true
	mi, err := NewManagedIdentitySource(&ManagedIdentityOptions{ClientID: "6D2F4A8B-1C3E-4F5A-9B7D-2E4F6A8C0B16"})
	if err != nil {
		t.Fatal(err)
	}
	ids[mi.sourceIdentity()] = true
	if len(ids) != 4 || ids[""] {
		t.Fatalf("identities %v; want 4 distinct, none empty", ids)
	}
	if want := "keyvault-certificate:https://demo.vault.azure.net/certificates/app-cert"; !ids[want] {
		t.Fatalf("identities %v; want %q", ids, want)
	}
}

func newTestCertificate(t *testing.T) (*x509.Certificate, *rsa.PrivateKey) {
	t.Helper()
	c := testcert.New(t, &testcert.Options{CommonName: "identity test", NotAfter: time.Now().Add(time.Hour)})
	return c.Cert, c.RSA(t)
}

type fakeTokenCredential struct{}

func (fakeTokenCredential) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{}, errors.New("not used")
}

func (f *fakeShared) Refuse(context.Context, SharedKey, TenantRefusal) error { return nil }
func (f *fakeShared) Refusal(context.Context, SharedKey) (TenantRefusal, bool, error) {
	return TenantRefusal{}, false, nil
}
func (f *fakeShared) Forget(context.Context, SharedKey) error { return nil }
