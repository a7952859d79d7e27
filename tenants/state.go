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
	"sync"
	"time"
)

// StateStore remembers the states a Handler has accepted, so that a state
// is used once. The default keeps them in the Handler's memory, which
// protects one replica: behind several replicas a state replayed to another
// one is accepted there once more (the consent it reports happened; a
// replay can only repeat the callback for the same tenant). Give a store
// shared by the replicas (the fleet's (*fleet.Cache).StateStore: Redis SET
// NX PXAT) to refuse those too.
type StateStore interface {
	// Use records the state nonce (32 hex digits) as used until the state
	// expires, and reports whether it was unused. An error refuses the
	// redirect (the administrator is asked to start again).
	Use(ctx context.Context, nonce string, until time.Time) (fresh bool, err error)
}

const (
	stateVersion = 1
	stateNonce   = 16
	stateBody    = 1 + 8 + stateNonce // version, expiry (unix seconds), nonce
	stateLen     = stateBody + sha256.Size
	stateText    = (stateLen*8 + 5) / 6 // base64url without padding
)

var errState = errors.New("tenants: the state is malformed, forged or expired")

// mintState returns a state valid until exp.
func mintState(key []byte, exp time.Time) (string, error) {
	b := make([]byte, stateLen)
	b[0] = stateVersion
	binary.BigEndian.PutUint64(b[1:9], uint64(exp.Unix()))
	if _, err := rand.Read(b[9:stateBody]); err != nil {
		return "", err
	}
	copy(b[stateBody:], stateMAC(key, b[:stateBody]))
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// verifyState checks s's form, MAC and expiry, and returns its nonce (hex)
// and expiry.
func verifyState(key []byte, s string, now time.Time) (nonce string, exp time.Time, err error) {
	if len(s) != stateText {
		return "", time.Time{}, errState
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != stateLen || b[0] != stateVersion {
		return "", time.Time{}, errState
	}
	if !hmac.Equal(b[stateBody:], stateMAC(key, b[:stateBody])) {
		return "", time.Time{}, errState
	}
	sec := binary.BigEndian.Uint64(b[1:9])
	if sec > 1<<62 {
		return "", time.Time{}, errState
	}
	exp = time.Unix(int64(sec), 0)
	if !now.Before(exp) {
		return "", time.Time{}, errState
	}
	return hex.EncodeToString(b[9:stateBody]), exp, nil
}

func stateMAC(key, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("kvassert tenants state v1\x00"))
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
