package fleet

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/kvassert/kvassert/internal/inputerr"
	"github.com/kvassert/kvassert/internal/textutil"
)

// keySize is the size of a data key: AES-256.
const keySize = 32

// Key is one AES-256-GCM data key with its ID. Its String method shows only
// the ID, so a Key can be logged or printed without disclosing it.
type Key struct {
	id    string
	aead  cipher.AEAD
	names []byte // HMAC key of the Redis names (HKDF of the secret)
}

// NewKey makes a Key from a 32-byte (AES-256) secret. id names the key in
// every entry it encrypts (1 to 32 characters of A-Z a-z 0-9 . _ -), so
// that a cache can decrypt with several keys during a rotation
// (CacheOptions.OlderKeys). The secret is copied into the cipher; the
// caller may clear its slice. Bad input is a *kvassert.InputError.
func NewKey(id string, secret []byte) (*Key, error) {
	if !validKeyID(id) {
		return nil, badKeyID("id", id)
	}
	if len(secret) != keySize {
		return nil, inputerr.New("fleet", "secret", "secret of key %q has %d bytes; AES-256 needs exactly %d", id, len(secret), keySize)
	}
	block, err := aes.NewCipher(secret)
	if err != nil {
		return nil, fmt.Errorf("fleet: key %q: %w", id, err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("fleet: key %q: %w", id, err)
	}
	names, err := hkdf.Key(sha256.New, secret, nil, "kvassert/fleet/names/v1", sha256.Size)
	if err != nil {
		return nil, fmt.Errorf("fleet: key %q: %w", id, err)
	}
	return &Key{id: id, aead: aead, names: names}, nil
}

// String shows the key's ID only.
func (k *Key) String() string { return "fleet.Key(" + k.id + ")" }

// GoString shows the key's ID only.
func (k *Key) GoString() string { return k.String() }

// badKeyID refuses a key ID given as the parameter param.
func badKeyID(param, id string) error {
	return inputerr.New("fleet", param, "invalid %s %q: a key ID is 1 to 32 characters of A-Z a-z 0-9 . _ -", param, truncate(id))
}

// truncate shortens an echoed input.
func truncate(s string) string { return textutil.Truncate(s, 64) }

func validKeyID(id string) bool {
	if len(id) == 0 || len(id) > 32 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// keyring holds the key that encrypts new entries and the keys that may
// still decrypt older ones: to rotate, make the new key active and keep the
// old one for as long as its entries live (at most a token lifetime).
type keyring struct {
	active *Key
	older  []*Key
	byID   map[string]*Key
}

// newKeyring makes a keyring in which active encrypts and decrypts, and
// older keys only decrypt. Key IDs must be distinct.
func newKeyring(active *Key, older ...*Key) (*keyring, error) {
	if active == nil {
		return nil, inputerr.New("fleet", "key", "key is nil: NewCache needs the key that encrypts (NewKey, KeyFromBase64 or LoadDataKey)")
	}
	r := &keyring{active: active, byID: map[string]*Key{active.id: active}}
	for _, k := range older {
		if k == nil {
			return nil, inputerr.New("fleet", "opts.OlderKeys", "opts.OlderKeys holds a nil key")
		}
		if _, dup := r.byID[k.id]; dup {
			return nil, inputerr.New("fleet", "opts.OlderKeys", "key ID %q appears twice in key and opts.OlderKeys", k.id)
		}
		r.byID[k.id] = k
		r.older = append(r.older, k)
	}
	return r, nil
}

// nameKey is the HMAC key that names entries in Redis: derived from the
// active key, so that every replica of a fleet names a token alike and
// nobody without the key can tell which tenants have entries. During a key
// rotation the older keys' names are read too (olderNameKeys), so that a
// replica with the new active key still finds the entries of the replicas
// that encrypt with the old one.
func (r *keyring) nameKey() []byte { return r.active.names }

// olderNameKeys are the name keys of the keys that only decrypt.
func (r *keyring) olderNameKeys() [][]byte {
	out := make([][]byte, len(r.older))
	for i, k := range r.older {
		out[i] = k.names
	}
	return out
}

// entryVersion is the first byte of every entry.
const entryVersion = 1

// seal encrypts plaintext with the active key; the entry is
// version | len(id) | id | nonce | ciphertext+tag, and ad is bound to it.
func (r *keyring) seal(plaintext []byte, ad func(keyID string) []byte) []byte {
	k := r.active
	ns := k.aead.NonceSize()
	out := make([]byte, 0, 2+len(k.id)+ns+len(plaintext)+k.aead.Overhead())
	out = append(out, entryVersion, byte(len(k.id)))
	out = append(out, k.id...)
	nonce := out[len(out) : len(out)+ns]
	rand.Read(nonce) //nolint:errcheck // crypto/rand never fails
	out = out[:len(out)+ns]
	return k.aead.Seal(out, nonce, plaintext, ad(k.id))
}

// errBadEntry is the one error every unreadable entry gives: wrong version,
// unknown key, truncated, tampered or bound to another token.
var errBadEntry = errors.New("fleet: shared entry cannot be decrypted (unknown key, tampered, truncated or stored under another key)")

// open decrypts an entry made by seal with any key of the ring.
func (r *keyring) open(entry []byte, ad func(keyID string) []byte) ([]byte, error) {
	if len(entry) < 2 || entry[0] != entryVersion {
		return nil, errBadEntry
	}
	n := int(entry[1])
	if len(entry) < 2+n {
		return nil, errBadEntry
	}
	id := string(entry[2 : 2+n])
	k := r.byID[id]
	if k == nil {
		return nil, errBadEntry
	}
	rest := entry[2+n:]
	ns := k.aead.NonceSize()
	if len(rest) < ns+k.aead.Overhead() {
		return nil, errBadEntry
	}
	pt, err := k.aead.Open(nil, rest[:ns], rest[ns:], ad(id))
	if err != nil {
		return nil, errBadEntry
	}
	return pt, nil
}

// appendField appends a length-prefixed field, so that the associated data
// of two different keys can never be the same bytes.
func appendField(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}
