package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/internal/redistest"
	"github.com/kvassert/kvassert/internal/testfixture"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// cacheKeyB64 is a random cache key, base64.
func cacheKeyB64(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// noLeak asserts that r printed neither the cache key nor (on stderr) a
// token.
func noLeak(t *testing.T, r result, key string) {
	t.Helper()
	if strings.Contains(r.stdout+r.stderr, key) {
		t.Fatalf("kvassert %s printed the cache key", strings.Join(r.args, " "))
	}
}

// A script calling "kvassert token" twice with --token-cache signs once:
// the second process gets the first one's token from Redis. The key comes
// from an environment variable, a file, or a data key wrapped by a Key
// Vault key (wrapped once, unwrapped by the next process).
func TestTokenCacheSignsOnce(t *testing.T) {
	c := newCLIEnv(t)
	srv := redistest.Start(t)
	key := cacheKeyB64(t)
	keyFile := t.TempDir() + "/cache.key"
	if err := writeFileAtomic(keyFile, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := c.e.Grant(scenario.DemoVault, emuhook.DemoWorkloadClientID, "keys/create", "keys/wrapKey", "keys/unwrapKey"); err != nil {
		t.Fatal(err)
	}
	kc := testfixture.Keys(t, c.e, scenario.DemoVault)
	if _, err := kc.CreateKey(context.Background(), "cache-kek", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeRSA), KeySize: to.Ptr(int32(2048))}, nil); err != nil {
		t.Fatal(err)
	}
	for i, tc := range []struct {
		name  string
		args  []string
		extra []string
	}{
		{"key from env", []string{"--token-cache-key-env", "MY_CACHE_KEY"}, []string{"MY_CACHE_KEY=" + key}},
		{"key file", []string{"--token-cache-key-file", keyFile}, nil},
		{"wrapped by Key Vault", []string{"--token-cache-wrap-key", c.vaultURL() + "keys/cache-kek"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tenant := []string{scenario.DemoContosoTenant, emuhook.DemoFabrikamTenant, emuhook.DemoNorthwindTenant}[i]
			c.e.ResetCounts()
			args := append([]string{"token", "--tenant", tenant}, tc.args...)
			extra := append([]string{envTokenCache + "=" + srv.URL()}, tc.extra...)
			first := c.run(args, extra...)
			noLeak(t, first, key)
			a := parseToken(t, first)
			checkToken(t, a, tenant)
			second := c.run(args, extra...)
			noLeak(t, second, key)
			b := parseToken(t, second)
			if signs, posts := c.e.Count(kvasserttest.OpKeySign), c.e.Count(kvasserttest.OpToken); signs != 1 || b.AccessToken != a.AccessToken {
				t.Fatalf("two runs: %d signs, %d token POSTs, same token %v; want 1 sign and the first run's token", signs, posts, b.AccessToken == a.AccessToken)
			}
			if tc.name == "wrapped by Key Vault" {
				if w, u := c.e.Count(kvasserttest.Op("keys/wrapKey")), c.e.Count(kvasserttest.Op("keys/unwrapKey")); w != 1 || u != 1 {
					t.Fatalf("%d wrapKey and %d unwrapKey calls, want 1 each (the first run wraps, the second unwraps)", w, u)
				}
			}
		})
	}
}

// A cache without a key is refused before any network call (entries are
// never stored in plaintext); so is a key without a cache, two keys, and a
// bad key. A Redis that cannot be reached is not an error: the token is
// acquired without it, with a warning.
func TestTokenCacheFlagErrors(t *testing.T) {
	c := newCLIEnv(t)
	srv := redistest.Start(t)
	key := cacheKeyB64(t)
	tok := []string{"token", "--tenant", scenario.DemoContosoTenant}
	r := c.run(tok, envTokenCache+"="+srv.URL())
	wantError(t, r, exitUsage, "needs an encryption key: cached tokens are never stored in plaintext", "--token-cache-wrap-key")
	r = c.run(append(tok, "--token-cache-key-env", "K"), "K="+key)
	wantError(t, r, exitUsage, "without --token-cache", "--token-cache redis://")
	r = c.run(append(tok, "--token-cache-key-env", "K", "--token-cache-key-file", "/x"), "K="+key, envTokenCache+"="+srv.URL())
	wantError(t, r, exitUsage, "give either --token-cache-key-env or --token-cache-key-file, not both", "same key")
	r = c.run(append(tok, "--token-cache-key-env", "K"), "K=not-a-key", envTokenCache+"="+srv.URL())
	wantError(t, r, exitUsage, "not base64", "openssl rand -base64 32")
	r = c.run(append(tok, "--token-cache", "http://"+srv.Addr(), "--token-cache-key-env", "K"), "K="+key)
	wantError(t, r, exitUsage, "want redis://host:port", "redis://")
	r = c.run(append(tok, "--token-cache-wrap-key", "https://127.0.0.1:1/keys/k"), envTokenCache+"="+srv.URL(), "KVASSERT_EMULATOR=", "KVASSERT_CA_FILE=")
	if r.code != exitUsage {
		t.Fatalf("a loopback wrap key without the emulator: exit %d\n%s", r.code, r.stderr)
	}
	if n := c.e.Count(kvasserttest.OpKeySign); n != 0 {
		t.Fatalf("refused flags still signed %d times", n)
	}
	// Redis down: the token, and a warning.
	srv.Stop()
	r = c.run(append(tok, "--token-cache-key-env", "K"), "K="+key, envTokenCache+"="+srv.URL())
	checkToken(t, parseToken(t, r), scenario.DemoContosoTenant)
	noLeak(t, r, key)
	if !strings.Contains(r.stderr, "token cache is unreachable") {
		t.Fatalf("no warning about the unreachable cache:\n%s", r.stderr)
	}
	// proxy takes the same flags.
	r = c.run([]string{"proxy", "--listen", "127.0.0.1:0"}, envTokenCache+"="+srv.URL())
	wantError(t, r, exitUsage, "needs an encryption key", "--token-cache-wrap-key")
}
