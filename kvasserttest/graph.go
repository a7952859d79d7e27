package kvasserttest

import (
	"strings"

	"github.com/kvassert/kvassert/internal/inputerr"
	"github.com/kvassert/kvassert/internal/textutil"
	"github.com/kvassert/kvassert/kvasserttest/internal/entra"
)

// Microsoft Graph emulation: the application's keyCredentials and the
// addKey / removeKey actions that let an app roll its own certificates with a
// proof of possession. Graph is reached at https://graph.microsoft.com/v1.0/
// through Client (and graph.microsoft.us, microsoftgraph.chinacloudapi.cn),
// with an app-only token for scope https://graph.microsoft.com/.default from
// the emulator's token service in the app's home tenant. Reading an
// application (GET /v1.0/applications/{objectId}) needs the app role
// "Application.Read.All"; addKey/removeKey on another app need
// "Application.ReadWrite.All" (an app rolling its own keys needs none). A key
// added through addKey is accepted at the token endpoint 5 s later on the
// emulator's clock (SetClock), as Entra replicates; removeKey takes effect
// at once.

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

// GrantAppRoles gives an app application permissions (app roles, e.g.
// "Application.Read.All", which Graph needs to answer GET
// /applications/{id}, also for the app itself); tokens issued afterwards
// carry them.
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
