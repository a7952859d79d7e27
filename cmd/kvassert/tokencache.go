package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/fleet"
	"github.com/kvassert/kvassert/internal/kvid"
)

// tokenCacheFlags configure the shared token cache on Redis (package fleet)
// of "kvassert token" and "kvassert proxy": with it, scripts and CI jobs
// that call kvassert repeatedly, and several proxies, reuse one token per
// tenant and scope instead of signing each time. Entries are always
// encrypted: a cache without a key is refused.
type tokenCacheFlags struct {
	url      string
	keyEnv   string
	keyFile  string
	wrapKey  string
	cacheKey string // data key ID
}

// envTokenCache is the variable that gives --token-cache.
const envTokenCache = "KVASSERT_TOKEN_CACHE"

func (f *tokenCacheFlags) register(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&f.url, "token-cache", "", "share tokens through Redis: redis://[user:password@]host:port[/db] or rediss://... (TLS); needs one of the --token-cache-key flags")
	fs.StringVar(&f.keyEnv, "token-cache-key-env", "", "name of the environment variable holding the cache's AES-256 key (base64 of 32 random bytes: openssl rand -base64 32)")
	fs.StringVar(&f.keyFile, "token-cache-key-file", "", "file holding the cache's AES-256 key (base64 of 32 random bytes)")
	fs.StringVar(&f.wrapKey, "token-cache-wrap-key", "", "Key Vault RSA key that wraps the cache's data key, https://VAULT/keys/NAME[/VERSION] (needs keys/wrapKey once, keys/unwrapKey)")
	fs.StringVar(&f.cacheKey, "token-cache-key-id", "k1", "ID of the cache's key, stored with each entry (change it to rotate the key)")
	bindEnv(cmd, fs, "token-cache", envTokenCache)
	bindEnv(cmd, fs, "token-cache-key-env", "KVASSERT_TOKEN_CACHE_KEY_ENV")
	bindEnv(cmd, fs, "token-cache-key-file", "KVASSERT_TOKEN_CACHE_KEY_FILE")
	bindEnv(cmd, fs, "token-cache-wrap-key", "KVASSERT_TOKEN_CACHE_WRAP_KEY")
	exclusive(cmd, tokenCacheConflicts()...)
	_ = cmd.MarkFlagFilename("token-cache-key-file")
}

// checkThenStartOTel is how the commands that take a token cache begin:
// check (no network call), then startOTel, whose flush the caller defers.
func (f *tokenCacheFlags) checkThenStartOTel(ctx context.Context, a *App) (flush func(), err error) {
	if err := f.check(a); err != nil {
		return nil, err
	}
	return startOTel(ctx, a)
}

// check validates the flags without any network call.
func (f *tokenCacheFlags) check(a *App) error {
	keys := 0
	for _, v := range []string{f.keyEnv, f.keyFile, f.wrapKey} {
		if v != "" {
			keys++
		}
	}
	if f.url == "" {
		if keys > 0 {
			return usageError("a --token-cache-key flag was given without --token-cache", "give the Redis URL with --token-cache redis://HOST:PORT (or "+envTokenCache+")")
		}
		return nil
	}
	u, err := url.Parse(f.url)
	if err != nil {
		return usageError(a.flagName("token-cache")+": not a URL", "use redis://HOST:PORT or rediss://HOST:PORT")
	}
	if p, ok := u.User.Password(); ok && p != "" {
		a.redactor.AddSecret(p) // an ACL user's password never reaches stderr
	}
	switch keys {
	case 0:
		return usageError(a.flagName("token-cache")+" needs an encryption key: cached tokens are never stored in plaintext",
			"give --token-cache-wrap-key https://VAULT/keys/NAME (recommended: a data key wrapped in Key Vault), "+
				"--token-cache-key-env NAME or --token-cache-key-file PATH (base64 of 32 random bytes: openssl rand -base64 32)")
	case 1:
	default:
		return usageError("give one of --token-cache-key-env, --token-cache-key-file and --token-cache-wrap-key", "all replicas sharing the cache must use the same key")
	}
	if f.wrapKey != "" {
		id, err := kvid.ParseKeyID(f.wrapKey)
		if err != nil {
			return flagError(a.flagName("token-cache-wrap-key"), err, "use https://NAME.vault.azure.net/keys/KEY[/VERSION]")
		}
		if err := checkLoopbackVault(a, "token-cache-wrap-key", id.Vault); err != nil {
			return err
		}
	}
	return nil
}

// open connects the shared cache the flags describe; nil (and a no-op
// close) without --token-cache. A Redis that cannot be reached is not an
// error: tokens are then acquired without the cache, with a warning, as a
// service replica would.
func (f *tokenCacheFlags) open(ctx context.Context, a *App) (kvassert.SharedCache, func(), error) {
	nop := func() {}
	if err := f.check(a); err != nil || f.url == "" {
		return nil, nop, err
	}
	client, err := fleet.NewClient(f.url)
	if err != nil {
		return nil, nop, usageError(a.flagName("token-cache")+": "+err.Error(), "use redis://HOST:PORT or rediss://HOST:PORT")
	}
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	err = client.Ping(pctx).Err()
	cancel()
	if err != nil {
		client.Close()
		a.Logger.Warn("kvassert: the token cache is unreachable; acquiring without it", "error", err)
		return nil, nop, nil
	}
	key, err := f.key(ctx, a, client)
	if err != nil {
		client.Close()
		return nil, nop, err
	}
	// A script's token should outlive the script's next steps, as az's
	// does: shared tokens with less than 5 minutes left are not used.
	cache, err := fleet.NewCache(client, key, &fleet.CacheOptions{Logger: a.Logger, MinRemaining: 5 * time.Minute})
	if err != nil {
		client.Close()
		return nil, nop, failure("token cache", err)
	}
	return cache, func() { cache.Close(); client.Close() }, nil
}

// key loads the cache's encryption key.
func (f *tokenCacheFlags) key(ctx context.Context, a *App, client redis.UniversalClient) (*fleet.Key, error) {
	switch {
	case f.keyEnv != "":
		k, err := keyFromEnv(f.cacheKey, f.keyEnv)
		if err != nil {
			return nil, usageError(a.flagName("token-cache-key-env")+": "+err.Error(), "export base64 of 32 random bytes in it: openssl rand -base64 32")
		}
		return k, nil
	case f.keyFile != "":
		k, err := keyFromFile(f.cacheKey, f.keyFile)
		if err != nil {
			return nil, &exitError{code: exitFailure, msg: "reading the token cache key", err: err, hint: "the file holds base64 of 32 random bytes: openssl rand -base64 32 > FILE"}
		}
		return k, nil
	}
	if err := a.requireAzure(); err != nil {
		return nil, err
	}
	cred, err := a.KeyVaultCredential()
	if err != nil {
		return nil, err
	}
	id, _ := kvid.ParseKeyID(f.wrapKey) // checked
	kc, err := azkeys.NewClient(id.Vault.URL, cred, &azkeys.ClientOptions{ClientOptions: a.ClientOptions(), DisableChallengeResourceVerification: id.Vault.Loopback})
	if err != nil {
		return nil, failure("token cache wrap key", err)
	}
	k, err := fleet.LoadDataKey(ctx, client, kc, id.Name, &fleet.DataKeyOptions{ID: f.cacheKey, KeyVersion: id.Version})
	if err != nil {
		return nil, &exitError{code: exitFailure, msg: "loading the token cache's data key", err: err,
			hint: fmt.Sprintf("the identity needs keys/wrapKey (first use) and keys/unwrapKey on %s, an RSA key", id.Name)}
	}
	return k, nil
}

// keyFromEnv reads a base64 cache key from the environment variable name.
func keyFromEnv(id, name string) (*fleet.Key, error) {
	v, ok := os.LookupEnv(name)
	if !ok || strings.TrimSpace(v) == "" {
		return nil, fmt.Errorf("environment variable %s (key %q) is not set", name, id)
	}
	k, err := fleet.KeyFromBase64(id, v)
	if err != nil {
		return nil, fmt.Errorf("%w (from environment variable %s)", err, name)
	}
	return k, nil
}

// keyFromFile reads a base64 cache key from a file (surrounding whitespace
// is ignored), e.g. a mounted Kubernetes secret.
func keyFromFile(id, path string) (*fleet.Key, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("key %q: %w", id, err)
	}
	defer clear(data)
	k, err := fleet.KeyFromBase64(id, string(data))
	if err != nil {
		return nil, fmt.Errorf("%w (from file %s)", err, path)
	}
	return k, nil
}
