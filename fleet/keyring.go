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
)

// KeySize is the size of a data key: AES-256.
const KeySize = 32

// Key is one AES-256-GCM data key with its ID. Its String method shows only
// the ID, so a Key can be logged or printed without disclosing it.
type Key struct {
	id    string
	aead  cipher.AEAD
	names []byte // HMAC key of the Redis names (HKDF of the secret)
}

// NewKey makes a Key from a 32-byte secret. id names the key in every entry
// it encrypts (1 to 32 characters of A-Z a-z 0-9 . _ -), so that a keyring
// can hold several keys during a rotation. The secret is copied into the
// cipher; the caller may clear its slice.
func NewKey(id string, secret []byte) (*Key, error) {
	if !validKeyID(id) {
		return nil, fmt.Errorf("fleet: invalid key ID %q: use 1 to 32 characters of A-Z a-z 0-9 . _ -", id)
	}
	if len(secret) != KeySize {
		return nil, fmt.Errorf("fleet: key %q has %d bytes; AES-256 needs exactly %d", id, len(secret), KeySize)
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

// ID is the key's ID.
func (k *Key) ID() string { return k.id }

// String shows the key's ID only.
func (k *Key) String() string { return "fleet.Key(" + k.id + ")" }

// GoString shows the key's ID only.
func (k *Key) GoString() string { return k.String() }

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

// Keyring holds the key that encrypts new entries and the keys that may
// still decrypt older ones: to rotate, make the new key active and keep the
// old one for as long as its entries live (at most a token lifetime).
type Keyring struct {
	active *Key
	older  []*Key
	byID   map[string]*Key
}

// NewKeyring makes a keyring in which active encrypts and decrypts, and
// older keys only decrypt. Key IDs must be distinct.
func NewKeyring(active *Key, older ...*Key) (*Keyring, error) {
	if active == nil {
		return nil, errors.New("fleet: a keyring needs an active key")
	}
	r := &Keyring{active: active, byID: map[string]*Key{active.id: active}}
	for _, k := range older {
		if k == nil {
			return nil, errors.New("fleet: nil key in keyring")
		}
		if _, dup := r.byID[k.id]; dup {
			return nil, fmt.Errorf("fleet: key ID %q appears twice in the keyring", k.id)
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
func (r *Keyring) nameKey() []byte { return r.active.names }

// olderNameKeys are the name keys of the keys that only decrypt.
func (r *Keyring) olderNameKeys() [][]byte {
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
func (r *Keyring) seal(plaintext []byte, ad func(keyID string) []byte) []byte {
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
func (r *Keyring) open(entry []byte, ad func(keyID string) []byte) ([]byte, error) {
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
