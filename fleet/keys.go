package fleet

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/internal/inputerr"
)

// defaultPrefix namespaces every Redis key when an options' Prefix is
// empty.
const defaultPrefix = "kvassert"

// checkPrefix validates a user prefix (and applies the default). Braces
// would change Cluster hash tags; spaces and control characters make keys
// hard to inspect.
func checkPrefix(p string) (string, error) {
	if p == "" {
		return defaultPrefix, nil
	}
	if len(p) > 64 || strings.ContainsAny(p, "{} \t\r\n") || !printable(p) {
		return "", inputerr.New("fleet", "opts.Prefix", "invalid opts.Prefix %q: use up to 64 printable characters without spaces or braces", truncate(p))
	}
	return p, nil
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// tokenKeys are the Redis names of one token's value and lock, its tenant's
// epoch, and the message that announces a new value. The three keys share
// the hash tag {t}, the tenant's keyed hash, so that they live in one
// Cluster slot and one script reads the value and the epoch together; the
// rest of the name, a keyed hash of the whole identity, hides the scope.
type tokenKeys struct {
	value, lock, epoch, msg string
	key                     kvassert.SharedKey // normalized
}

// tenantKeys are the Redis names of one tenant's epoch and refusal (in the
// slot of the tenant's tokens).
type tenantKeys struct {
	epoch, refusal string
	key            kvassert.SharedKey // normalized; only the app and tenant
}

// normalize lower-cases the parts of a key that are case-insensitive, so
// that every replica names a token alike.
func normalize(k kvassert.SharedKey) kvassert.SharedKey {
	k.ClientID = strings.ToLower(k.ClientID)
	k.Authority = strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(k.Authority, "https://"), "HTTPS://"), "/"))
	k.Tenant = strings.ToLower(k.Tenant)
	return k
}

// appName is the app's namespace: client ID and authority host.
func appName(k kvassert.SharedKey) (string, error) {
	if k.ClientID == "" || k.Authority == "" || !printable(k.ClientID) || !printable(k.Authority) || strings.ContainsAny(k.ClientID+k.Authority, "{}") {
		return "", fmt.Errorf("fleet: invalid app (client ID %q, authority %q)", k.ClientID, k.Authority)
	}
	return k.ClientID + "@" + k.Authority, nil
}

// keysFor names the token of k under prefix. The name hides the tenant,
// scope, claims and source behind HMACs keyed with nameKey (derived from
// the keyring's active key), so that reading Redis tells nothing about who
// the customers are: an unkeyed hash of a known tenant would find its keys.
// A key without a Source is refused: its token must not be shared.
func keysFor(prefix string, nameKey []byte, k kvassert.SharedKey) (tokenKeys, error) {
	k = normalize(k)
	if k.Source == "" {
		return tokenKeys{}, errNoSource
	}
	h := hmac.New(sha256.New, nameKey)
	tenant, err := tenantBase(prefix, h, k)
	if err != nil {
		return tokenKeys{}, err
	}
	h.Reset()
	h.Write(identity(nil, k))
	var sum [sha256.Size]byte
	base := tenant + ":" + hex.EncodeToString(h.Sum(sum[:0])[:16])
	return tokenKeys{value: base + ":tok", lock: base + ":lock", epoch: tenant + ":epoch", msg: base, key: k}, nil
}

// tenantKeysFor names the epoch and refusal of k's tenant under prefix.
func tenantKeysFor(prefix string, nameKey []byte, k kvassert.SharedKey) (tenantKeys, error) {
	k = normalize(kvassert.SharedKey{ClientID: k.ClientID, Authority: k.Authority, Tenant: k.Tenant})
	tenant, err := tenantBase(prefix, hmac.New(sha256.New, nameKey), k)
	if err != nil {
		return tenantKeys{}, err
	}
	return tenantKeys{epoch: tenant + ":epoch", refusal: tenant + ":refusal", key: k}, nil
}

// tenantBase is "<prefix>:<app>:{<tenant's keyed hash>}", the start of
// every name of k's tenant; h is a fresh HMAC with the name key. The hashed input starts with 0xff, which no
// identity (a length-prefixed field first) does.
func tenantBase(prefix string, h hash.Hash, k kvassert.SharedKey) (string, error) {
	app, err := appName(k)
	if err != nil {
		return "", err
	}
	if k.Tenant == "" || len(k.Tenant) > 256 || !printable(k.Tenant) {
		return "", errBadTenant
	}
	var buf [64]byte
	h.Write(appendField(append(buf[:0], 0xff), k.Tenant))
	var sum [sha256.Size]byte
	return prefix + ":" + app + ":{" + hex.EncodeToString(h.Sum(sum[:0])[:16]) + "}", nil
}

// errBadTenant refuses a key whose tenant cannot be named in Redis.
var errBadTenant = errors.New("fleet: the shared key names no valid tenant")

// errNoSource refuses to share a token whose key does not name its Source.
var errNoSource = errors.New("fleet: the shared key names no Source; the token is not shared")

// identity appends every part of a token's identity but the app, each
// length-prefixed so that two identities never give the same bytes.
func identity(b []byte, k kvassert.SharedKey) []byte {
	for _, f := range []string{k.Tenant, k.Scope, k.Claims, k.Source} {
		b = appendField(b, f)
	}
	if k.CAE {
		return append(b, 1)
	}
	return append(b, 0)
}

// channelFor is the pub/sub channel of the "new value" messages under a
// prefix; each message is the base name of one token's keys.
func channelFor(prefix string) string { return prefix + ":ready" }

// adFor is the associated data bound to an entry: the key ID and every part
// of the token's identity, the Source's included.
func adFor(k kvassert.SharedKey) func(keyID string) []byte {
	return func(keyID string) []byte {
		b := []byte("kvassert/fleet/v3\x00")
		for _, f := range []string{keyID, k.ClientID, k.Authority} {
			b = appendField(b, f)
		}
		return identity(b, k)
	}
}

// maxEntry bounds an entry read from Redis: a token is a few KiB; a longer
// value is not ours and is not even transferred.
const maxEntry = 64 << 10

// maxTokenLife bounds the life of a shared token (Entra's are at most about
// a day): a longer one is neither stored nor served.
const maxTokenLife = 48 * time.Hour

// maxEpoch bounds an epoch: the ones we write are 32 hex digits; a longer
// value under an epoch's name is garbage.
const maxEpoch = 64

// encodeToken is the plaintext of an entry: expires on and refresh on (unix
// ms, 0 for none), the tenant's epoch it was stored under (one length byte,
// then the epoch), then the token.
func encodeToken(t azcore.AccessToken, epoch string) []byte {
	b := make([]byte, 0, 17+len(epoch)+len(t.Token))
	b = binary.BigEndian.AppendUint64(b, uint64(t.ExpiresOn.UnixMilli()))
	var r int64
	if !t.RefreshOn.IsZero() {
		r = t.RefreshOn.UnixMilli()
	}
	b = binary.BigEndian.AppendUint64(b, uint64(r))
	b = append(b, byte(len(epoch)))
	b = append(b, epoch...)
	return append(b, t.Token...)
}

// decodeToken parses an entry's plaintext into the token and the epoch it
// was stored under. Even an authentic entry is checked: a token must be
// printable, expire within maxTokenLife, and refresh (when set) before it
// expires.
func decodeToken(b []byte) (azcore.AccessToken, string, bool) {
	if len(b) <= 17 || len(b) > maxEntry {
		return azcore.AccessToken{}, "", false
	}
	n := int(b[16])
	if n > maxEpoch || len(b) <= 17+n {
		return azcore.AccessToken{}, "", false
	}
	epoch, token := string(b[17:17+n]), string(b[17+n:])
	if !printable(token) || (n > 0 && !printable(epoch)) {
		return azcore.AccessToken{}, "", false
	}
	exp := int64(binary.BigEndian.Uint64(b))
	ref := int64(binary.BigEndian.Uint64(b[8:]))
	limit := time.Now().Add(maxTokenLife).UnixMilli()
	if exp <= 0 || exp > limit || ref < 0 || ref > exp {
		return azcore.AccessToken{}, "", false
	}
	t := azcore.AccessToken{ExpiresOn: time.UnixMilli(exp), Token: token}
	if ref != 0 {
		t.RefreshOn = time.UnixMilli(ref)
	}
	return t, epoch, true
}
