package proxy

import (
	"context"
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

// Config.SharedCache reaches the proxy's credentials: a token another
// replica shared is served without a sign or a token request.
func TestProxyUsesTheSharedCache(t *testing.T) {
	t.Parallel()
	shared := &servingCache{}
	env := newEnv(t, func(c *Config, _ *kvasserttest.Emulator) { c.SharedCache = shared })
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
