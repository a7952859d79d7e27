package fleet

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
	"github.com/redis/go-redis/v9"

	"github.com/kvassert/kvassert/internal/inputerr"
)

// TestInputErrorTable: every exported constructor refuses bad input with a
// *kvassert.InputError (internal/inputerr) whose message names the
// parameter and never shows a secret. No Redis or vault is contacted.
func TestInputErrorTable(t *testing.T) {
	ctx := context.Background()
	client, err := NewClient("redis://127.0.0.1:1") // never dialled: every row fails before
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	unbounded := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer unbounded.Close()
	key := mustKey(t, "k1", 1)
	vault := &azkeys.Client{} // never called: every row fails before
	const secret = "s3cr3t-Pa55"
	cache := func(o CacheOptions) func() error {
		return func() error { _, err := NewCache(client, key, &o); return err }
	}
	throttle := func(o ThrottleOptions) func() error {
		return func() error { _, err := NewThrottle(client, "v.vault.azure.net", &o); return err }
	}
	for _, row := range []struct {
		name, param string
		call        func() error
	}{
		{"NewClient empty", "rawURL", func() error { _, err := NewClient(""); return err }},
		{"NewClient http", "rawURL", func() error { _, err := NewClient("http://u:" + secret + "@h:6379"); return err }},
		{"NewClient no host", "rawURL", func() error { _, err := NewClient("redis://"); return err }},
		{"NewClient bad db", "rawURL", func() error { _, err := NewClient("redis://u:" + secret + "@h:6379/x"); return err }},
		{"NewClient cluster db", "rawURL", func() error { _, err := NewClient("redis://u:" + secret + "@a:1,b:2/3?cluster=true"); return err }},
		{"NewKey bad id", "id", func() error { _, err := NewKey("k 1", make([]byte, 32)); return err }},
		{"NewKey long id", "id", func() error { _, err := NewKey(strings.Repeat("a", 33), make([]byte, 32)); return err }},
		{"NewKey short secret", "secret", func() error { _, err := NewKey("k1", []byte(secret)); return err }},
		{"KeyFromBase64 not base64", "b64", func() error { _, err := KeyFromBase64("k1", secret+"!"); return err }},
		{"KeyFromBase64 16 bytes", "b64", func() error { _, err := KeyFromBase64("k1", "AQEBAQEBAQEBAQEBAQEBAQ=="); return err }},
		{"KeyFromBase64 bad id", "id", func() error {
			_, err := KeyFromBase64("k 1", "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=")
			return err
		}},
		{"NewCache nil client", "client", func() error { _, err := NewCache(nil, key, nil); return err }},
		{"NewCache unbounded client", "client", func() error { _, err := NewCache(unbounded, key, nil); return err }},
		{"NewCache nil key", "key", func() error { _, err := NewCache(client, nil, nil); return err }},
		{"NewCache nil older key", "opts.OlderKeys", cache(CacheOptions{OlderKeys: []*Key{nil}})},
		{"NewCache duplicate key ID", "opts.OlderKeys", cache(CacheOptions{OlderKeys: []*Key{mustKey(t, "k1", 2)}})},
		{"NewCache prefix braces", "opts.Prefix", cache(CacheOptions{Prefix: "a{b}"})},
		{"NewCache prefix space", "opts.Prefix", cache(CacheOptions{Prefix: "a b"})},
		{"NewCache negative LockTTL", "opts.LockTTL", cache(CacheOptions{LockTTL: -time.Second})},
		{"NewCache short LockTTL", "opts.LockTTL", cache(CacheOptions{LockTTL: time.Millisecond})},
		{"NewCache negative WaitTimeout", "opts.WaitTimeout", cache(CacheOptions{WaitTimeout: -1})},
		{"NewCache negative OpTimeout", "opts.OpTimeout", cache(CacheOptions{OpTimeout: -1})},
		{"NewCache negative MinRemaining", "opts.MinRemaining", cache(CacheOptions{MinRemaining: -1})},
		{"NewCache negative BreakerThreshold", "opts.BreakerThreshold", cache(CacheOptions{BreakerThreshold: -1})},
		{"NewCache negative BreakerCoolDown", "opts.BreakerCoolDown", cache(CacheOptions{BreakerCoolDown: -1})},
		{"NewCache negative WarnEvery", "opts.WarnEvery", cache(CacheOptions{WarnEvery: -1})},
		{"StateStore Use bad nonce", "nonce", func() error {
			c, err := NewCache(client, key, nil)
			if err != nil {
				return err
			}
			defer c.Close()
			_, err = c.StateStore().Use(ctx, secret, time.Now().Add(time.Minute))
			return err
		}},
		{"NewThrottle nil client", "client", func() error { _, err := NewThrottle(nil, "v.vault.azure.net", nil); return err }},
		{"NewThrottle unbounded client", "client", func() error { _, err := NewThrottle(unbounded, "v.vault.azure.net", nil); return err }},
		{"NewThrottle no vault", "vault", func() error { _, err := NewThrottle(client, "", nil); return err }},
		{"NewThrottle vault braces", "vault", func() error { _, err := NewThrottle(client, "a{b}", nil); return err }},
		{"NewThrottle prefix", "opts.Prefix", throttle(ThrottleOptions{Prefix: "a\nb"})},
		{"NewThrottle negative Budget", "opts.Budget", throttle(ThrottleOptions{Budget: -1})},
		{"NewThrottle negative Window", "opts.Window", throttle(ThrottleOptions{Window: -1})},
		{"NewThrottle negative OpTimeout", "opts.OpTimeout", throttle(ThrottleOptions{OpTimeout: -1})},
		{"NewThrottle negative MaxHoldOff", "opts.MaxHoldOff", throttle(ThrottleOptions{MaxHoldOff: -1})},
		{"NewThrottle negative BreakerThreshold", "opts.BreakerThreshold", throttle(ThrottleOptions{BreakerThreshold: -1})},
		{"NewThrottle negative BreakerCoolDown", "opts.BreakerCoolDown", throttle(ThrottleOptions{BreakerCoolDown: -1})},
		{"LoadDataKey nil vault", "vault", func() error { _, err := LoadDataKey(ctx, client, nil, "kek", nil); return err }},
		{"LoadDataKey no key name", "keyName", func() error { _, err := LoadDataKey(ctx, client, vault, "", nil); return err }},
		{"LoadDataKey key name path", "keyName", func() error { _, err := LoadDataKey(ctx, client, vault, "kek/v1", nil); return err }},
		{"LoadDataKey bad ID", "opts.ID", func() error {
			_, err := LoadDataKey(ctx, client, vault, "kek", &DataKeyOptions{ID: "no spaces"})
			return err
		}},
		{"LoadDataKey bad prefix", "opts.Prefix", func() error {
			_, err := LoadDataKey(ctx, client, vault, "kek", &DataKeyOptions{Prefix: "{x}"})
			return err
		}},
		{"LoadDataKey nil client", "client", func() error { _, err := LoadDataKey(ctx, nil, vault, "kek", nil); return err }},
		{"SealDataKey nil vault", "vault", func() error { _, _, err := SealDataKey(ctx, nil, "kek", nil); return err }},
		{"SealDataKey no key name", "keyName", func() error { _, _, err := SealDataKey(ctx, vault, "", nil); return err }},
		{"SealDataKey bad ID", "opts.ID", func() error {
			_, _, err := SealDataKey(ctx, vault, "kek", &DataKeyOptions{ID: strings.Repeat("x", 40)})
			return err
		}},
	} {
		err := row.call()
		var ie *inputerr.Error
		switch {
		case err == nil:
			t.Errorf("%s: accepted", row.name)
		case !errors.As(err, &ie):
			t.Errorf("%s: %T %v, want an InputError", row.name, err, err)
		case ie.Input != row.param || !strings.Contains(err.Error(), row.param):
			t.Errorf("%s: %q (input %q) does not name %s", row.name, err, ie.Input, row.param)
		case strings.Contains(err.Error(), secret):
			t.Errorf("%s: %q shows the secret", row.name, err)
		case !strings.HasPrefix(err.Error(), "fleet: "):
			t.Errorf("%s: %q does not start with the package", row.name, err)
		}
	}
}
