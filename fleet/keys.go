package fleet

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
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

// tokenKeys are the Redis names of one token's value and lock, and the
// message that announces a new value. The value and lock share the hash tag
// {h}, so they live in one Cluster slot; h hides the tenant and scope.
type tokenKeys struct {
	value, lock, msg string
	key              kvassert.SharedKey // normalized
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
// scope, claims and source behind an HMAC keyed with nameKey (derived from
// the keyring's active key), so that reading Redis tells nothing about who
// the customers are: an unkeyed hash of a known tenant would find its keys.
// A key without a Source is refused: its token must not be shared.
func keysFor(prefix string, nameKey []byte, k kvassert.SharedKey) (tokenKeys, error) {
	k = normalize(k)
	app, err := appName(k)
	if err != nil {
		return tokenKeys{}, err
	}
	if k.Source == "" {
		return tokenKeys{}, errNoSource
	}
	h := hmac.New(sha256.New, nameKey)
	h.Write(identity(nil, k))
	sum := hex.EncodeToString(h.Sum(nil)[:16])
	base := prefix + ":" + app + ":{" + sum + "}"
	return tokenKeys{value: base + ":tok", lock: base + ":lock", msg: base, key: k}, nil
}

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
		b := []byte("kvassert/fleet/v2\x00")
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

// encodeToken is the plaintext of an entry: expires on and refresh on (unix
// ms, 0 for none), then the token.
func encodeToken(t azcore.AccessToken) []byte {
	b := make([]byte, 0, 16+len(t.Token))
	b = binary.BigEndian.AppendUint64(b, uint64(t.ExpiresOn.UnixMilli()))
	var r int64
	if !t.RefreshOn.IsZero() {
		r = t.RefreshOn.UnixMilli()
	}
	b = binary.BigEndian.AppendUint64(b, uint64(r))
	return append(b, t.Token...)
}

// decodeToken parses an entry's plaintext. Even an authentic entry is
// checked: a token must be printable, expire within maxTokenLife, and
// refresh (when set) before it expires.
func decodeToken(b []byte) (azcore.AccessToken, bool) {
	if len(b) <= 16 || len(b) > maxEntry || !printable(string(b[16:])) {
		return azcore.AccessToken{}, false
	}
	exp := int64(binary.BigEndian.Uint64(b))
	ref := int64(binary.BigEndian.Uint64(b[8:]))
	limit := time.Now().Add(maxTokenLife).UnixMilli()
	if exp <= 0 || exp > limit || ref < 0 || ref > exp {
		return azcore.AccessToken{}, false
	}
	t := azcore.AccessToken{ExpiresOn: time.UnixMilli(exp), Token: string(b[16:])}
	if ref != 0 {
		t.RefreshOn = time.UnixMilli(ref)
	}
	return t, true
}
