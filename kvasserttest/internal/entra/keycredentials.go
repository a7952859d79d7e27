package entra

import (
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// DefaultPropagationDelay is how long, on the emulator's clock, a key added
// through Graph's addKey takes to reach the token endpoint unless
// SetPropagationDelay says otherwise. Real Entra ID replicates in seconds to
// minutes.
const DefaultPropagationDelay = 5 * time.Second

// KeyCredential is a certificate credential of an app, as Microsoft Graph
// reports it (keyCredentials of the application object).
type KeyCredential = emuhook.KeyCredential

// Errors of the key credential operations.
var (
	// ErrNoApp: no app with that client or object ID.
	ErrNoApp = errors.New("entra: no such app")
	// ErrDuplicateKey: the app already has a credential with this certificate.
	ErrDuplicateKey = errors.New("entra: the app already has a key credential with this certificate")
	// ErrNoKey: the app has no credential with this keyId.
	ErrNoKey = errors.New("entra: the app has no key credential with this keyId")
)

func (kc *keyCredential) export() KeyCredential {
	return KeyCredential{KeyID: kc.keyID, DisplayName: kc.displayName, Certificate: kc.cert, Revoked: kc.revoked, ActiveAt: kc.activeAt}
}

// App identifies an application registration.
type App struct {
	// ClientID is the application (client) ID, lower case.
	ClientID string
	// ObjectID is the application object ID, lower case.
	ObjectID string
	// HomeTenant is the home tenant ID, lower case.
	HomeTenant string
	// DisplayName is the app registration's name.
	DisplayName string
	// Roles are the app's application permissions (granted in its home
	// tenant).
	Roles []string
	// ServicePrincipalLock is the app instance property lock (a copy; nil
	// when not set).
	ServicePrincipalLock *scenario.ServicePrincipalLock
}

// AppByID finds an app by client ID or application object ID.
func (e *Entra) AppByID(clientOrObjectID string) (App, bool) {
	id := strings.ToLower(clientOrObjectID)
	e.mu.RLock()
	defer e.mu.RUnlock()
	a := e.apps[id]
	if a == nil {
		for _, c := range e.apps {
			if c.objectID == id {
				a = c
				break
			}
		}
	}
	if a == nil {
		return App{}, false
	}
	out := App{ClientID: a.clientID, ObjectID: a.objectID, HomeTenant: a.home, DisplayName: a.name, Roles: slices.Clone(a.roles)}
	if a.lock != nil {
		l := *a.lock
		out.ServicePrincipalLock = &l
	}
	return out, true
}

// KeyCredentials lists an app's certificate credentials, oldest first.
func (e *Entra) KeyCredentials(clientID string) ([]KeyCredential, error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	a := e.apps[strings.ToLower(clientID)]
	if a == nil {
		return nil, fmt.Errorf("%w: client ID %q", ErrNoApp, clientID)
	}
	out := make([]KeyCredential, 0, len(a.certs))
	for _, c := range a.certs {
		out = append(out, c.export())
	}
	return out, nil
}

// AddKeyCredential registers a certificate on an app as Graph's addKey does:
// with a new keyId, accepted by the token endpoint only after the
// propagation delay. A certificate the app already has is refused with
// ErrDuplicateKey.
func (e *Entra) AddKeyCredential(clientID string, cert *x509.Certificate, displayName string) (KeyCredential, error) {
	var out KeyCredential
	err := e.withAppCertificate(clientID, cert, func(a *app, kc *keyCredential, i int) error {
		if i >= 0 {
			return ErrDuplicateKey
		}
		if displayName != "" {
			kc.displayName = displayName
		}
		kc.activeAt = e.now().Add(e.PropagationDelay())
		a.certs = append(a.certs, kc)
		out = kc.export()
		return nil
	})
	return out, err
}

// RemoveKeyCredential removes the credential with this keyId from an app, as
// Graph's removeKey does. The token endpoint stops accepting it at once.
func (e *Entra) RemoveKeyCredential(clientID, keyID string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	a := e.apps[strings.ToLower(clientID)]
	if a == nil {
		return fmt.Errorf("%w: client ID %q", ErrNoApp, clientID)
	}
	for i, c := range a.certs {
		if strings.EqualFold(c.keyID, keyID) {
			a.certs = slices.Delete(slices.Clone(a.certs), i, i+1)
			return nil
		}
	}
	return ErrNoKey
}

// SetPropagationDelay sets how long a key added through AddKeyCredential
// takes to reach the token endpoint, on the emulator's clock (0: at once;
// negative values count as 0). It applies to keys added afterwards.
func (e *Entra) SetPropagationDelay(d time.Duration) {
	e.propagation.Store(int64(max(d, 0)))
}

// PropagationDelay is the current propagation delay.
func (e *Entra) PropagationDelay() time.Duration {
	return time.Duration(e.propagation.Load())
}

// AddRoles grants application permissions (app roles, e.g.
// "Application.Read.All") to an app; they appear in the "roles" claim of
// tokens issued afterwards.
func (e *Entra) AddRoles(clientID string, roles ...string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	a := e.apps[strings.ToLower(clientID)]
	if a == nil {
		return fmt.Errorf("%w: client ID %q", ErrNoApp, clientID)
	}
	next := slices.Clone(a.roles)
	for _, r := range roles {
		if !slices.Contains(next, r) {
			next = append(next, r)
		}
	}
	a.roles = next
	return nil
}

// SetServicePrincipalLock replaces the app's app instance property lock
// (nil: none).
func (e *Entra) SetServicePrincipalLock(clientID string, lock *scenario.ServicePrincipalLock) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	a := e.apps[strings.ToLower(clientID)]
	if a == nil {
		return fmt.Errorf("%w: client ID %q", ErrNoApp, clientID)
	}
	if lock != nil {
		l := *lock
		lock = &l
	}
	a.lock = lock
	return nil
}
