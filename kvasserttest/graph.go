package kvasserttest

import (
	"errors"
	"strings"
	"time"

	"github.com/kvassert/kvassert/kvasserttest/internal/emu"
	"github.com/kvassert/kvassert/kvasserttest/internal/entra"
)

// Microsoft Graph emulation: the application's keyCredentials and the
// addKey / removeKey actions that let an app roll its own certificates with a
// proof of possession (see the README's kvasserttest section for the rules
// and error codes). Graph is reached at https://graph.microsoft.com/v1.0/
// through Client (and graph.microsoft.us, microsoftgraph.chinacloudapi.cn),
// with an app-only token for scope https://graph.microsoft.com/.default from
// the emulator's token service in the app's home tenant.

// Operations of the Microsoft Graph emulation, for InjectFault and Count.
const (
	OpGraphGetApplication = emu.OpGraphGetApplication // GET /v1.0/applications/{objectId}
	OpGraphAddKey         = emu.OpGraphAddKey         // POST /v1.0/applications/{objectId}/addKey
	OpGraphRemoveKey      = emu.OpGraphRemoveKey      // POST /v1.0/applications/{objectId}/removeKey
)

// Application permissions (app roles) Graph checks.
const (
	// RoleApplicationReadAll lets an app read application objects, its own
	// included (GET /applications/{id} needs it).
	RoleApplicationReadAll = "Application.Read.All"
	// RoleApplicationReadWriteAll lets an app call addKey/removeKey on other
	// apps (an app rolling its own keys needs no permission).
	RoleApplicationReadWriteAll = "Application.ReadWrite.All"
)

// DefaultGraphPropagationDelay is the default time, on the emulator's clock,
// between a Graph addKey and the token endpoint accepting the new key.
const DefaultGraphPropagationDelay = entra.DefaultPropagationDelay

// KeyCredential is a certificate credential of an app registration (its
// keyId, display name, certificate, revocation and the time the token
// endpoint starts accepting it).
type KeyCredential = entra.KeyCredential

// GraphURL is the Microsoft Graph v1.0 base URL clients use, with a trailing
// slash: "https://graph.microsoft.com/v1.0/".
func (e *Emulator) GraphURL() string { return "https://graph.microsoft.com/v1.0/" }

// GraphScope is the scope of app-only tokens for Graph.
func (e *Emulator) GraphScope() string { return "https://graph.microsoft.com/.default" }

// SetGraphPropagationDelay sets how long a key added through Graph's addKey
// takes to be accepted at the token endpoint, on the emulator's clock
// (SetClock): until then a client assertion signed with it gets AADSTS700027.
// Zero makes new keys usable at once; negative values count as zero. It
// applies to keys added afterwards. removeKey always takes effect at once.
func (e *Emulator) SetGraphPropagationDelay(d time.Duration) { e.entra.SetPropagationDelay(d) }

// GraphPropagationDelay is the current addKey propagation delay.
func (e *Emulator) GraphPropagationDelay() time.Duration { return e.entra.PropagationDelay() }

// AppObjectID returns the application object ID of a scenario app (the
// scenario's objectId, or the one derived from its client ID), the ID Graph
// addresses it by and the iss of its addKey/removeKey proofs.
func (e *Emulator) AppObjectID(clientID string) (string, error) {
	a, ok := e.entra.AppByID(clientID)
	if !ok || a.ClientID != lower(clientID) {
		return "", errNoApp(clientID)
	}
	return a.ObjectID, nil
}

// AppKeyCredentials returns an app's certificate credentials as they are now
// (scenario ones, RegisterCertificate and addKey additions, minus removals),
// oldest first: for assertions in tests.
func (e *Emulator) AppKeyCredentials(clientID string) ([]KeyCredential, error) {
	return e.entra.KeyCredentials(clientID)
}

// GrantGraphRead gives an app the Application.Read.All application
// permission, which Graph needs to answer GET /applications/{id} (also for
// the app itself). Tokens issued afterwards carry the role.
func (e *Emulator) GrantGraphRead(clientID string) error {
	return e.entra.AddRoles(clientID, RoleApplicationReadAll)
}

// GrantAppRoles gives an app application permissions (app roles, e.g.
// RoleApplicationReadWriteAll); tokens issued afterwards carry them.
func (e *Emulator) GrantAppRoles(clientID string, roles ...string) error {
	return e.entra.AddRoles(clientID, roles...)
}

func lower(s string) string { return strings.ToLower(s) }

func errNoApp(clientID string) error {
	return errors.New("kvasserttest: no app with client ID " + truncateID(clientID) + " in the scenario")
}

func truncateID(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// InjectGraphFaultAfterCommit arms a fault for a Graph action (OpGraphAddKey
// or OpGraphRemoveKey) that strikes after the action took effect: the key is
// added or removed, and the caller gets f's status (504 when zero) or, with
// f.Drop, a cut connection instead of the answer, as when a timeout or a
// network failure loses Graph's answer. Times limits it to the next n
// successful actions (0: until cleared); actions that fail on their own do
// not consume it. Latency is ignored.
func (e *Emulator) InjectGraphFaultAfterCommit(op Op, f Fault) { e.graph.SetFaultAfterCommit(op, f) }

// ClearGraphFaultsAfterCommit disarms the after-commit faults of ops, or all.
func (e *Emulator) ClearGraphFaultsAfterCommit(ops ...Op) { e.graph.ClearFaultsAfterCommit(ops...) }

// OnGraphAddKey sets a function the emulator calls each time Graph's addKey
// has added a key, before the answer is written (e.g. to arm a fault on the
// caller's next request, such as its tag write: InjectFault of
// OpCertificateUpdate). nil removes it. It must not call Graph.
func (e *Emulator) OnGraphAddKey(fn func(KeyCredential)) { e.graph.OnAddKey(fn) }
