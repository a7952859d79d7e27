package scenario

import (
	"crypto/sha256"
	"fmt"
	"strings"
)

// AppObjectID is the app's application object ID: ObjectID when given, else
// a GUID derived from the client ID (the same on every run and in every
// process, so a CLI emulator and its clients agree on it), in lower case.
func (a *App) AppObjectID() string {
	if a.ObjectID != "" {
		return strings.ToLower(a.ObjectID)
	}
	return DerivedObjectID(a.ClientID)
}

// DerivedObjectID is the object ID a scenario app without an explicit
// objectId gets: a name-based (version 5 style) GUID of its client ID.
func DerivedObjectID(clientID string) string {
	sum := sha256.Sum256([]byte("kvasserttest/application-object\x00" + strings.ToLower(clientID)))
	b := sum[:16]
	b[6] = b[6]&0x0f | 0x50 // version 5
	b[8] = b[8]&0x3f | 0x80 // RFC 9562 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// App returns the app with the given client ID or application object ID
// (case-insensitive).
func (s *Scenario) App(clientOrObjectID string) (*App, bool) {
	for i := range s.Apps {
		a := &s.Apps[i]
		if strings.EqualFold(a.ClientID, clientOrObjectID) || strings.EqualFold(a.AppObjectID(), clientOrObjectID) {
			return a, true
		}
	}
	return nil, false
}
