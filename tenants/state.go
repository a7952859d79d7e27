package tenants

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/kvassert/kvassert/internal/entraid"
)

// StateStore remembers the states a Handler has accepted, so that a state
// is used once. The default keeps them in the Handler's memory, which
// protects one replica: behind several replicas a state replayed to another
// one is accepted there once more (the consent it reports happened; a
// replay can only repeat the callback for the same tenant). Give a store
// shared by the replicas (the fleet's (*fleet.Cache).StateStore: Redis SET
// NX PXAT) to refuse those too.
type StateStore interface {
	// Use records the state nonce (32 hex digits) as used until until (the
	// state's expiry plus 5 minutes, so that clocks a few minutes apart do
	// not forget it while a replica still accepts it), and reports whether
	// it was unused. An error refuses the redirect (the administrator is
	// asked to start again).
	Use(ctx context.Context, nonce string, until time.Time) (fresh bool, err error)
}

const (
	stateVersion = 3
	stateNonce   = 16
	stateFixed   = 1 + 8 + stateNonce + 16 + 1 // version, expiry (unix seconds), nonce, tenant ID (zero: any), domain length
	stateMaxName = 255                         // a domain name's limit (RFC 1035)
	stateMinText = ((stateFixed+sha256.Size)*8 + 5) / 6
	stateMaxText = ((stateFixed+stateMaxName+sha256.Size)*8 + 5) / 6 // base64url without padding
)

// stateSkew is how long past its expiry a used state is remembered: the
// clock skew tolerated between the replicas and a shared StateStore.
const stateSkew = 5 * time.Minute

var errState = errors.New("tenants: the state is malformed, forged or expired")

// stateBinding is what a state is valid for besides its own fields: the
// app (client ID) and the redirect URI of the Handler that made it, so
// that a state made by one Handler is refused by another sharing the key.
func stateBinding(clientID, redirectURI string) []byte {
	return []byte(strings.ToLower(clientID) + "\x00" + redirectURI + "\x00")
}

// tenantGUID is the 16 bytes of a tenant ID (a GUID), or false for
// anything else (a domain, "organizations", "").
func tenantGUID(t string) (g [16]byte, ok bool) {
	if !entraid.ValidClientID(t) {
		return g, false
	}
	_, err := hex.Decode(g[:], []byte(strings.ReplaceAll(t, "-", "")))
	return g, err == nil
}

// mintState returns a state valid until exp, for bind (stateBinding), and
// for tenant only when it is a tenant ID (zero: any tenant). domain is the
// domain the link was made for ("" for none): it does not restrict the
// tenant (a domain's tenant ID is not known here), it is carried so that
// the Handler can also forget a refusal remembered under that name.
func mintState(key, bind []byte, exp time.Time, tenant [16]byte, domain string) (string, error) {
	if len(domain) > stateMaxName {
		return "", errState
	}
	b := make([]byte, stateFixed+len(domain)+sha256.Size)
	b[0] = stateVersion
	binary.BigEndian.PutUint64(b[1:9], uint64(exp.Unix()))
	if _, err := rand.Read(b[9 : 9+stateNonce]); err != nil {
		return "", err
	}
	copy(b[9+stateNonce:], tenant[:])
	b[stateFixed-1] = byte(len(domain))
	body := stateFixed + len(domain)
	copy(b[stateFixed:body], domain)
	copy(b[body:], stateMAC(key, bind, b[:body]))
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// verifiedState is what a state verifyState accepted says.
type verifiedState struct {
	nonce  string    // hex
	exp    time.Time // expiry
	tenant [16]byte  // the tenant ID the link was made for (zero: any)
	domain string    // the domain the link was made for ("" for none)
}

// verifyState checks s's form, MAC (under key and bind) and expiry.
func verifyState(key, bind []byte, s string, now time.Time) (verifiedState, error) {
	var v verifiedState
	if len(s) < stateMinText || len(s) > stateMaxText {
		return v, errState
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s) // Strict: one text per state
	if err != nil || len(b) < stateFixed+sha256.Size || b[0] != stateVersion {
		return v, errState
	}
	body := stateFixed + int(b[stateFixed-1])
	if len(b) != body+sha256.Size {
		return v, errState
	}
	if !hmac.Equal(b[body:], stateMAC(key, bind, b[:body])) {
		return v, errState
	}
	sec := binary.BigEndian.Uint64(b[1:9])
	if sec > 1<<62 {
		return v, errState
	}
	v.exp = time.Unix(int64(sec), 0)
	if !now.Before(v.exp) {
		return verifiedState{}, errState
	}
	copy(v.tenant[:], b[9+stateNonce:stateFixed-1])
	v.domain = string(b[stateFixed:body])
	v.nonce = hex.EncodeToString(b[9 : 9+stateNonce])
	return v, nil
}

func stateMAC(key, bind, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("kvassert tenants state v3\x00"))
	m.Write(bind)
	m.Write(body)
	return m.Sum(nil)
}

// memoryStates is the default StateStore: used nonces until they expire,
// at most max of them (expired ones are dropped first; when it is full of
// live ones, new states are refused until some expire: memory stays
// bounded whatever a caller sends, and only states with a valid MAC get
// here).
type memoryStates struct {
	mu   sync.Mutex
	used map[string]time.Time
	max  int
	now  func() time.Time
}

var errStatesFull = errors.New("tenants: too many consents in flight; try again in a few minutes")

func (m *memoryStates) Use(_ context.Context, nonce string, until time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.used[nonce]; ok {
		return false, nil
	}
	if len(m.used) >= m.max {
		now := m.now()
		for n, exp := range m.used {
			if !now.Before(exp) {
				delete(m.used, n)
			}
		}
		if len(m.used) >= m.max {
			return false, errStatesFull
		}
	}
	m.used[nonce] = until
	return true, nil
}
