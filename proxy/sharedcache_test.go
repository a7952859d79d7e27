package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// servingCache is a SharedCache that holds one token, as if another replica
// had stored it, and records the keys it is asked for.
type servingCache struct {
	noRefusals
	mu   sync.Mutex
	keys []kvassert.SharedKey
}

const sharedToken = "shared-token-from-another-replica"

func (c *servingCache) Token(_ context.Context, key kvassert.SharedKey, _ azcore.AccessToken, _ func(context.Context) (azcore.AccessToken, error)) (azcore.AccessToken, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.keys = append(c.keys, key)
	return azcore.AccessToken{Token: sharedToken, ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// Options.SharedCache reaches the credential of the proxy's configured
// source: a token another replica shared is served without a sign or a
// token request.
func TestProxyUsesTheSharedCache(t *testing.T) {
	t.Parallel()
	shared := &servingCache{}
	env := newEnv(t, withDefault(scenario.DemoVault), func(c *Options, _ *kvasserttest.Emulator) { c.SharedCache = shared })
	signs, posts := env.e.Count(kvasserttest.OpKeySign), env.e.Count(kvasserttest.OpToken)
	tr := env.token(env.api("kv-certificate", kvCertBody(scenario.DemoContosoTenant)))
	if tr.AccessToken != sharedToken {
		t.Fatal("the proxy did not serve the shared token")
	}
	if env.e.Count(kvasserttest.OpKeySign) != signs || env.e.Count(kvasserttest.OpToken) != posts {
		t.Fatal("the proxy signed or requested a token although the shared cache had one")
	}
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if len(shared.keys) != 1 || shared.keys[0].ClientID != scenario.DemoAppClientID || shared.keys[0].Tenant != scenario.DemoContosoTenant {
		t.Fatalf("shared-cache keys %+v", shared.keys)
	}
}

// memoryCache is a SharedCache that keeps tokens in memory by their full
// SharedKey, as the fleet's Redis cache does (fleet's own tests check that
// its Redis keys hold every SharedKey field, the Source included): the
// proxy's part, which SharedKey and which credentials reach the cache, is
// what these tests check. Several proxies may share one.
type memoryCache struct {
	noRefusals
	mu     sync.Mutex
	tokens map[kvassert.SharedKey]azcore.AccessToken
}

func (c *memoryCache) Token(ctx context.Context, key kvassert.SharedKey, stale azcore.AccessToken, acquire func(context.Context) (azcore.AccessToken, error)) (azcore.AccessToken, error) {
	c.mu.Lock()
	tok, ok := c.tokens[key]
	c.mu.Unlock()
	if ok && tok.Token != stale.Token && time.Until(tok.ExpiresOn) > time.Minute {
		return tok, nil
	}
	tok, err := acquire(ctx)
	if err != nil {
		return tok, err
	}
	c.mu.Lock()
	c.tokens[key] = tok
	c.mu.Unlock()
	return tok, nil
}

// sharedMemoryCache is an empty memoryCache for one test.
func sharedMemoryCache(*testing.T) *memoryCache {
	return &memoryCache{tokens: map[kvassert.SharedKey]azcore.AccessToken{}}
}

// Issue 18, defect 3: through the local-certificate route (the request
// picks the certificate), a certificate that is not registered on the app
// must not get the app's token out of the shared cache: the proxy shares
// tokens only for the source it was configured with.
func TestSharedCacheNotForCallerChosenSources(t *testing.T) {
	t.Parallel()
	shared := sharedMemoryCache(t)
	var good, stranger *localCert
	env := newEnv(t, func(c *Options, e *kvasserttest.Emulator) {
		good = newLocalCert(t, e)
		stranger = newLocalCert(t, e)
		if err := e.RemoveCertificate(scenario.DemoAppClientID, stranger.cert); err != nil {
			t.Fatal(err)
		}
		addFile(c, "good", good)
		c.FileRoot = stranger.dir
		c.SharedCache = shared
	})
	body := func(cert, key string) map[string]any {
		b := map[string]any{"clientId": scenario.DemoAppClientID, "tenantId": scenario.DemoContosoTenant, "scopes": []string{graph}, "certFile": cert}
		if key != "" {
			b["keyFile"] = key
		}
		return b
	}
	// The registered certificate gets a token (and, before the fix, put it
	// into the shared cache for every credential of the app).
	env.token(env.api("local-certificate", body("good", "")))
	// The unregistered one must be refused by Entra, not served from the shared cache.
	resp := env.api("local-certificate", body("app.crt", "app.key"))
	if resp.StatusCode == http.StatusOK {
		tr := decode[tokenResponse](t, resp, 200)
		env.sawToken(tr.AccessToken)
		t.Fatal("an unregistered certificate got the app's token from the shared cache")
	}
	if p := problemOf(t, resp, http.StatusBadRequest); p.Code != 700027 {
		t.Errorf("problem %+v, want AADSTS700027", p)
	}
}

// Issue 18, defect 3: the proxy's configured source (DefaultVault and
// DefaultCertificate) still shares tokens through the shared cache: a second proxy
// serves the first one's token without a sign.
func TestSharedCacheForTheConfiguredSource(t *testing.T) {
	t.Parallel()
	shared := sharedMemoryCache(t)
	first := newEnv(t, withDefault(scenario.DemoVault), func(c *Options, _ *kvasserttest.Emulator) { c.SharedCache = shared })
	tr := first.token(first.api("kv-certificate", kvCertBody(scenario.DemoContosoTenant)))
	second, err := New(&first.s.cfg) // same emulator, same shared cache, fresh credentials
	if err != nil {
		t.Fatal(err)
	}
	signs := first.e.Count(kvasserttest.OpKeySign)
	body, _ := json.Marshal(kvCertBody(scenario.DemoContosoTenant))
	req := httptest.NewRequest("POST", "/api/token/kv-certificate", bytes.NewReader(body))
	req.Host = "127.0.0.1"
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+second.Secret())
	rec := httptest.NewRecorder()
	second.Handler().ServeHTTP(rec, req)
	got := decode[tokenResponse](t, rec.Result(), 200)
	first.sawToken(got.AccessToken)
	if got.AccessToken != tr.AccessToken || first.e.Count(kvasserttest.OpKeySign) != signs {
		t.Error("the configured source did not share its token through the shared cache")
	}
}

// noRefusals gives a test SharedCache the tenant-refusal methods, sharing none.
type noRefusals struct{}

func (noRefusals) Refuse(context.Context, kvassert.SharedKey, kvassert.TenantRefusal) error {
	return nil
}
func (noRefusals) Refusal(context.Context, kvassert.SharedKey) (kvassert.TenantRefusal, bool, error) {
	return kvassert.TenantRefusal{}, false, nil
}
func (noRefusals) Forget(context.Context, kvassert.SharedKey) error { return nil }
