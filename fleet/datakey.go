package fleet

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
	"github.com/redis/go-redis/v9"

	"github.com/kvassert/kvassert/internal/kvclient"

	"github.com/kvassert/kvassert/internal/inputerr"
)

// wrapAlgorithm is the key-wrapping algorithm used with Key Vault.
const wrapAlgorithm = azkeys.EncryptionAlgorithmRSAOAEP256

// DataKeyOptions configure LoadDataKey and SealDataKey; nil means defaults.
type DataKeyOptions struct {
	// ID names the data key; "k1" when empty (1 to 32 characters of A-Z a-z
	// 0-9 . _ -). To rotate, load a new ID, give it to NewCache and keep the
	// old key in CacheOptions.OlderKeys.
	ID string
	// KeyVersion is the version of the Key Vault key that wraps a new data
	// key; empty for the latest. Unwrapping uses the version recorded in
	// the wrapped blob.
	KeyVersion string
	// Prefix namespaces the Redis key of LoadDataKey; "kvassert" when
	// empty. Use the Cache's prefix.
	Prefix string
	// Wrapped is a wrapped data key given by configuration (made once by
	// SealDataKey): LoadDataKey unwraps it (one unwrapKey call) and neither
	// reads nor writes Redis; its client may then be nil.
	Wrapped []byte
}

// wrapper wraps and unwraps data keys with an RSA key in Key Vault or
// Managed HSM (keys/wrapKey and keys/unwrapKey, RSA-OAEP-256). The key
// never leaves the vault.
type wrapper struct {
	client  *azkeys.Client
	name    string
	version string
}

// wrappedKey is a wrapped data key as stored (in Redis or in configuration).
type wrappedKey struct {
	V       int    `json:"v"`
	KID     string `json:"kid"`
	Alg     string `json:"alg"`
	Wrapped []byte `json:"wrapped"`
}

// dataKeyInput checks the arguments shared by SealDataKey and LoadDataKey.
func dataKeyInput(vault *azkeys.Client, keyName string, opts *DataKeyOptions) (*wrapper, DataKeyOptions, error) {
	var o DataKeyOptions
	if opts != nil {
		o = *opts
	}
	if vault == nil {
		return nil, o, inputerr.New("fleet", "vault", "vault is nil: the data key needs a keys client (azkeys.NewClient) for the vault holding the key-encryption key")
	}
	if keyName == "" || len(keyName) > 127 || !printable(keyName) || strings.ContainsAny(keyName, "/?#") {
		return nil, o, inputerr.New("fleet", "keyName", "invalid keyName %q: want the name of an RSA key in the vault", truncate(keyName))
	}
	if o.ID == "" {
		o.ID = "k1"
	}
	if !validKeyID(o.ID) {
		return nil, o, badKeyID("opts.ID", o.ID)
	}
	return &wrapper{client: vault, name: keyName, version: o.KeyVersion}, o, nil
}

// SealDataKey makes a new random data key, wraps it with the Key Vault key
// keyName (vault: a keys client for its vault) and returns the key and the
// wrapped blob: JSON, safe to store anywhere, only the vault key can open
// it. Give the blob to the replicas by configuration, as
// DataKeyOptions.Wrapped of LoadDataKey. The caller's identity needs the
// wrapKey permission on the key. Bad input is a *kvassert.InputError.
func SealDataKey(ctx context.Context, vault *azkeys.Client, keyName string, opts *DataKeyOptions) (*Key, []byte, error) {
	w, o, err := dataKeyInput(vault, keyName, opts)
	if err != nil {
		return nil, nil, err
	}
	return w.seal(ctx, o.ID)
}

func (w *wrapper) seal(ctx context.Context, id string) (*Key, []byte, error) {
	secret := make([]byte, keySize)
	defer clear(secret)
	rand.Read(secret) //nolint:errcheck // crypto/rand never fails
	k, err := NewKey(id, secret)
	if err != nil {
		return nil, nil, err
	}
	alg := wrapAlgorithm
	resp, err := w.client.WrapKey(ctx, w.name, w.version, azkeys.KeyOperationParameters{Algorithm: &alg, Value: secret}, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("fleet: Key Vault wrapKey with key %q: %w", w.name, kvclient.Sanitize(err))
	}
	if resp.KID == nil || len(resp.Result) == 0 {
		return nil, nil, fmt.Errorf("fleet: Key Vault wrapKey with key %q returned no key ID or no result", w.name)
	}
	blob, err := json.Marshal(wrappedKey{V: 1, KID: string(*resp.KID), Alg: string(alg), Wrapped: resp.Result})
	if err != nil {
		return nil, nil, fmt.Errorf("fleet: encoding the wrapped key: %w", err)
	}
	return k, blob, nil
}

// open unwraps a blob made by seal (one Key Vault unwrapKey call) into the
// Key named id.
func (w *wrapper) open(ctx context.Context, id string, blob []byte) (*Key, error) {
	if len(blob) > maxWrappedBlob {
		return nil, fmt.Errorf("fleet: wrapped data key %q is %d bytes, not a blob made by SealDataKey (at most %d)", id, len(blob), maxWrappedBlob)
	}
	var wk wrappedKey
	if err := json.Unmarshal(blob, &wk); err != nil || wk.V != 1 || wk.KID == "" || len(wk.KID) > 1024 || len(wk.Wrapped) == 0 || len(wk.Wrapped) > 1024 {
		return nil, fmt.Errorf("fleet: wrapped data key %q is not a blob made by SealDataKey", id)
	}
	if wk.Alg != string(wrapAlgorithm) {
		return nil, fmt.Errorf("fleet: wrapped data key %q uses algorithm %q; want %s", id, wk.Alg, wrapAlgorithm)
	}
	kid := azkeys.ID(wk.KID)
	if !strings.EqualFold(kid.Name(), w.name) {
		return nil, fmt.Errorf("fleet: wrapped data key %q was wrapped by Key Vault key %q, not %q", id, kid.Name(), w.name)
	}
	alg := wrapAlgorithm
	resp, err := w.client.UnwrapKey(ctx, w.name, kid.Version(), azkeys.KeyOperationParameters{Algorithm: &alg, Value: wk.Wrapped}, nil)
	if err != nil {
		return nil, fmt.Errorf("fleet: Key Vault unwrapKey of data key %q with key %q: %w", id, w.name, kvclient.Sanitize(err))
	}
	defer clear(resp.Result)
	return NewKey(id, resp.Result)
}

// maxWrappedBlob bounds a wrapped data key read from Redis or
// configuration: SealDataKey's are under 2 KiB (RSA-4096 wraps to 512
// bytes).
const maxWrappedBlob = 8 << 10

// LoadDataKey returns the fleet's data key named opts.ID (default "k1"),
// wrapped by the RSA key keyName in Key Vault or Managed HSM (vault: a keys
// client for its vault; keys/wrapKey and keys/unwrapKey, RSA-OAEP-256; the
// key never leaves the vault). Give the key to NewCache.
//
// The wrapped key is kept in Redis at "<prefix>:datakey:<id>" (never
// expiring): the first replica of a new fleet creates, wraps and stores it
// with SET NX; every other replica (and every later start) unwraps the
// stored blob, one Key Vault call per process start. When two replicas
// bootstrap at once, SET NX lets one win and the other unwraps the
// winner's key, so the fleet always agrees. The caller's identity needs
// the wrapKey (once, for the first replica of a fleet) and unwrapKey
// (once per process start) permissions on the key.
//
// Anyone who can write to Redis could plant a data key of their own there
// (wrapping needs only the public key). When that is part of your threat
// model, make the blob once with SealDataKey and give it to the replicas
// by configuration (DataKeyOptions.Wrapped): LoadDataKey then unwraps it
// and does not use Redis. Bad input is a *kvassert.InputError.
func LoadDataKey(ctx context.Context, client redis.UniversalClient, vault *azkeys.Client, keyName string, opts *DataKeyOptions) (*Key, error) {
	w, o, err := dataKeyInput(vault, keyName, opts)
	if err != nil {
		return nil, err
	}
	if o.Wrapped != nil {
		return w.open(ctx, o.ID, o.Wrapped)
	}
	if client == nil {
		return nil, inputerr.New("fleet", "client", "client is nil: LoadDataKey keeps the wrapped key in Redis unless opts.Wrapped is set")
	}
	prefix, err := checkPrefix(o.Prefix)
	if err != nil {
		return nil, err
	}
	return w.load(ctx, client, prefix+":datakey:"+o.ID, o.ID)
}

// load reads the wrapped key at rkey in Redis, or bootstraps it.
func (w *wrapper) load(ctx context.Context, client redis.UniversalClient, rkey, id string) (*Key, error) {
	blob, err := client.Get(ctx, rkey).Bytes()
	switch {
	case err == nil:
		return w.open(ctx, id, blob)
	case !errors.Is(err, redis.Nil):
		return nil, fmt.Errorf("fleet: reading the wrapped data key %s from Redis: %w", rkey, err)
	}
	k, blob, err := w.seal(ctx, id)
	if err != nil {
		return nil, err
	}
	won, err := client.SetNX(ctx, rkey, blob, 0).Result()
	if err != nil {
		return nil, fmt.Errorf("fleet: storing the wrapped data key %s in Redis: %w", rkey, err)
	}
	if won {
		return k, nil
	}
	// Another replica stored its key first: use that one.
	blob, err = client.Get(ctx, rkey).Bytes()
	if err != nil {
		return nil, fmt.Errorf("fleet: reading the wrapped data key %s from Redis: %w", rkey, err)
	}
	return w.open(ctx, id, blob)
}
