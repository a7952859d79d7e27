package fleet

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
	"github.com/kvassert/kvassert/internal/kvclient"
	"github.com/redis/go-redis/v9"
)

// WrapAlgorithm is the key-wrapping algorithm used with Key Vault.
const WrapAlgorithm = azkeys.EncryptionAlgorithmRSAOAEP256

// KeyVaultWrapper wraps and unwraps data keys with an RSA key in Key Vault
// or Managed HSM (keys/wrapKey and keys/unwrapKey, RSA-OAEP-256). The key
// never leaves the vault; the caller's identity needs the wrapKey (once, for
// the first replica of a fleet) and unwrapKey (once per process start)
// permissions on it.
type KeyVaultWrapper struct {
	// Client is a keys client for the vault that holds the key.
	Client *azkeys.Client
	// Name is the key's name.
	Name string
	// Version is the key version that wraps new data keys; empty for the
	// latest. Unwrapping uses the version recorded in the wrapped blob.
	Version string
}

// wrappedKey is a wrapped data key as stored (in Redis or in configuration).
type wrappedKey struct {
	V       int    `json:"v"`
	KID     string `json:"kid"`
	Alg     string `json:"alg"`
	Wrapped []byte `json:"wrapped"`
}

func (w *KeyVaultWrapper) check() error {
	if w == nil || w.Client == nil || w.Name == "" {
		return errors.New("fleet: KeyVaultWrapper needs a keys client and a key name")
	}
	return nil
}

// SealDataKey makes a new random data key, wraps it with the Key Vault key
// and returns the key and the wrapped blob (JSON, safe to store anywhere:
// only the vault key can open it). Give the blob to OpenDataKey.
func SealDataKey(ctx context.Context, w *KeyVaultWrapper, id string) (*Key, []byte, error) {
	if err := w.check(); err != nil {
		return nil, nil, err
	}
	secret := make([]byte, KeySize)
	defer clear(secret)
	rand.Read(secret) //nolint:errcheck // crypto/rand never fails
	k, err := NewKey(id, secret)
	if err != nil {
		return nil, nil, err
	}
	alg := WrapAlgorithm
	resp, err := w.Client.WrapKey(ctx, w.Name, w.Version, azkeys.KeyOperationParameters{Algorithm: &alg, Value: secret}, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("fleet: Key Vault wrapKey with key %q: %w", w.Name, kvclient.Sanitize(err))
	}
	if resp.KID == nil || len(resp.Result) == 0 {
		return nil, nil, fmt.Errorf("fleet: Key Vault wrapKey with key %q returned no key ID or no result", w.Name)
	}
	blob, err := json.Marshal(wrappedKey{V: 1, KID: string(*resp.KID), Alg: string(alg), Wrapped: resp.Result})
	if err != nil {
		return nil, nil, fmt.Errorf("fleet: encoding the wrapped key: %w", err)
	}
	return k, blob, nil
}

// OpenDataKey unwraps a blob made by SealDataKey (one Key Vault unwrapKey
// call) into the Key named id.
func OpenDataKey(ctx context.Context, w *KeyVaultWrapper, id string, blob []byte) (*Key, error) {
	if err := w.check(); err != nil {
		return nil, err
	}
	if len(blob) > maxWrappedBlob {
		return nil, fmt.Errorf("fleet: wrapped data key %q is %d bytes, not a blob made by SealDataKey (at most %d)", id, len(blob), maxWrappedBlob)
	}
	var wk wrappedKey
	if err := json.Unmarshal(blob, &wk); err != nil || wk.V != 1 || wk.KID == "" || len(wk.KID) > 1024 || len(wk.Wrapped) == 0 || len(wk.Wrapped) > 1024 {
		return nil, fmt.Errorf("fleet: wrapped data key %q is not a blob made by SealDataKey", id)
	}
	if wk.Alg != string(WrapAlgorithm) {
		return nil, fmt.Errorf("fleet: wrapped data key %q uses algorithm %q; want %s", id, wk.Alg, WrapAlgorithm)
	}
	kid := azkeys.ID(wk.KID)
	if !strings.EqualFold(kid.Name(), w.Name) {
		return nil, fmt.Errorf("fleet: wrapped data key %q was wrapped by Key Vault key %q, not %q", id, kid.Name(), w.Name)
	}
	alg := WrapAlgorithm
	resp, err := w.Client.UnwrapKey(ctx, w.Name, kid.Version(), azkeys.KeyOperationParameters{Algorithm: &alg, Value: wk.Wrapped}, nil)
	if err != nil {
		return nil, fmt.Errorf("fleet: Key Vault unwrapKey of data key %q with key %q: %w", id, w.Name, kvclient.Sanitize(err))
	}
	defer clear(resp.Result)
	return NewKey(id, resp.Result)
}

// maxWrappedBlob bounds a wrapped data key read from Redis or
// configuration: SealDataKey's are under 2 KiB (RSA-4096 wraps to 512
// bytes).
const maxWrappedBlob = 8 << 10

// DataKeyOptions configure LoadDataKey.
type DataKeyOptions struct {
	// Prefix namespaces the Redis key; "kvassert" when empty. Use the same
	// prefix as the Cache.
	Prefix string
	// ID names the data key; "k1" when empty. To rotate, load a new ID,
	// make it the keyring's active key and keep the old one for decryption.
	ID string
	// Wrapper is the Key Vault key that wraps the data key. Required.
	Wrapper *KeyVaultWrapper
}

// LoadDataKey returns the fleet's data key named opts.ID, kept wrapped in
// Redis at "<prefix>:datakey:<id>" (never expiring): the first replica of a
// new fleet creates, wraps and stores it with SET NX; every other replica
// (and every later start) unwraps the stored blob, one Key Vault call per
// process start. When two replicas bootstrap at once, SET NX lets one win
// and the other unwraps the winner's key, so the fleet always agrees.
//
// Anyone who can write to Redis could plant a data key of their own there
// (wrapping needs only the public key). When that is part of your threat
// model, make the blob once with SealDataKey and give it to the replicas by
// configuration (OpenDataKey) instead.
func LoadDataKey(ctx context.Context, client redis.UniversalClient, opts DataKeyOptions) (*Key, error) {
	prefix, err := checkPrefix(opts.Prefix)
	if err != nil {
		return nil, err
	}
	id := opts.ID
	if id == "" {
		id = "k1"
	}
	if !validKeyID(id) {
		return nil, fmt.Errorf("fleet: invalid data key ID %q: use 1 to 32 characters of A-Z a-z 0-9 . _ -", id)
	}
	if err := opts.Wrapper.check(); err != nil {
		return nil, err
	}
	rkey := prefix + ":datakey:" + id
	blob, err := client.Get(ctx, rkey).Bytes()
	switch {
	case err == nil:
		return OpenDataKey(ctx, opts.Wrapper, id, blob)
	case !errors.Is(err, redis.Nil):
		return nil, fmt.Errorf("fleet: reading the wrapped data key %s from Redis: %w", rkey, err)
	}
	k, blob, err := SealDataKey(ctx, opts.Wrapper, id)
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
	return OpenDataKey(ctx, opts.Wrapper, id, blob)
}
