package kvasserttest

import (
	"strings"

	"github.com/kvassert/kvassert/internal/inputerr"
	"github.com/kvassert/kvassert/internal/textutil"
	"github.com/kvassert/kvassert/kvasserttest/internal/entra"
)

// Microsoft Graph emulation: see Emulator.

// KeyCredential is a certificate credential of an app registration (its
// keyId, display name, certificate, revocation and the time the token
// endpoint starts accepting it).
type KeyCredential = entra.KeyCredential

// AppKeyCredentials returns an app's certificate credentials as they are now
// (scenario ones, RegisterCertificate and addKey additions, minus removals),
// oldest first: for assertions in tests.
func (e *Emulator) AppKeyCredentials(clientID string) ([]KeyCredential, error) {
	if err := e.checkApp(clientID); err != nil {
		return nil, err
	}
	return e.entra.KeyCredentials(clientID)
}

// GrantAppRoles adds application permissions (app roles on the app's
// RolesResource, Microsoft Graph by default; e.g. "Application.Read.All",
// which Graph needs to answer GET /applications/{id}, also for the app
// itself) to the app's roles: its Graph tokens issued afterwards carry them
// in its home tenant and in every tenant that granted all of the app's roles
// (ConsentedTenants, SetConsent, the consent page), not where
// SetGrantedRoles or scenario Consents set the grant.
func (e *Emulator) GrantAppRoles(clientID string, roles ...string) error {
	if err := e.checkApp(clientID); err != nil {
		return err
	}
	for _, r := range roles {
		if r == "" || strings.ContainsAny(r, " \t\n") {
			return inputerr.New("kvasserttest", "roles", "role %q in roles is empty or holds white space", textutil.Truncate(r, 64))
		}
	}
	return e.entra.AddRoles(clientID, roles...)
}

// appObjectID returns the application object ID of a scenario app.
func (e *Emulator) appObjectID(clientID string) (string, error) {
	if err := e.checkApp(clientID); err != nil {
		return "", err
	}
	a, _ := e.entra.AppByID(clientID)
	return a.ObjectID, nil
}

func errNoApp(clientID string) error {
	return inputerr.New("kvasserttest", "clientID", "no app with client ID %q (clientID) in the scenario", textutil.Truncate(clientID, 64))
}
