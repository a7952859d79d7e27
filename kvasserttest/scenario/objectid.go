package scenario

import (
	"strings"

	"github.com/kvassert/kvassert/kvasserttest/internal/names"
)

// AppObjectID is the app's application object ID: ObjectID when given, else
// a GUID derived from the client ID (the same on every run and in every
// process, so a CLI emulator and its clients agree on it), in lower case.
func (a *App) AppObjectID() string {
	if a.ObjectID != "" {
		return strings.ToLower(a.ObjectID)
	}
	return names.DerivedObjectID(a.ClientID)
}

// app returns the app with the given client ID or application object ID
// (case-insensitive).
func (s *Scenario) app(clientOrObjectID string) (*App, bool) {
	for i := range s.Apps {
		a := &s.Apps[i]
		if strings.EqualFold(a.ClientID, clientOrObjectID) || strings.EqualFold(a.AppObjectID(), clientOrObjectID) {
			return a, true
		}
	}
	return nil, false
}
