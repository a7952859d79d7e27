// Package emuhook holds what kvassert's own tests and CLI use of the
// emulators (package kvasserttest) that is not part of kvasserttest's public
// API: the controls only our tests need (Of), the demo scenario's other
// identifiers, the well-known URLs, and a transport that reaches an emulator
// from another process (NewTransport).
//
// It imports only the standard library; kvasserttest and its internal
// packages import it (the types below are theirs, by alias) and register the
// controls in kvasserttest's init.
package emuhook

import (
	"crypto"
	"crypto/x509"
	"time"
)

// Op names an emulated operation, for fault injection and counters (see
// kvasserttest.Op for the list).
type Op string

// Fault is what an injected failure does to matching requests.
type Fault struct {
	// Latency delays the response (cut short when the client goes away).
	Latency time.Duration
	// Status, when non-zero, answers with this HTTP status and the emulator's
	// error body for it (429 Throttled, 500, 503, ...).
	Status int
	// RetryAfter, when non-zero, sets the Retry-After header (whole seconds,
	// rounded up) on a Status answer.
	RetryAfter time.Duration
	// Hold, when not nil, keeps each matching request waiting until Hold is
	// closed (or the client goes away), after Latency and before the rest
	// of the fault applies: a request that stays in flight for exactly as
	// long as a test wants, without a timed guess.
	Hold <-chan struct{}
	// Drop closes the connection without any response.
	Drop bool
	// Times limits the fault to the next n matching requests; 0 means every
	// request until cleared.
	Times int
}

// KeyCredential is a certificate credential of an app, as Microsoft Graph
// reports it (keyCredentials of the application object).
type KeyCredential struct {
	// KeyID is Graph's keyId, a GUID.
	KeyID string
	// DisplayName defaults to the certificate's subject ("CN=...").
	DisplayName string
	// Certificate holds the public key and the validity window
	// (startDateTime, endDateTime).
	Certificate *x509.Certificate
	// Revoked is set by RevokeCertificate.
	Revoked bool
	// ActiveAt is when the token endpoint starts accepting assertions
	// signed with it; zero for credentials of the scenario or added with
	// RegisterCertificate, the addKey time plus the propagation delay for
	// keys added through Graph.
	ActiveAt time.Time
}

// VersionSpec shapes a version AddVersion publishes. Zero values take the
// certificate's policy: a new key of its type, valid from ten minutes ago
// for its validity_months, enabled, no tags, not exportable.
type VersionSpec struct {
	// NotBefore and NotAfter override the validity window (e.g. a
	// pre-staged version whose validity starts in the future).
	NotBefore, NotAfter time.Time
	// EC makes the version's key a P-256 EC key whatever the policy says.
	EC bool
	// Disabled publishes the version disabled.
	Disabled bool
	// Exportable publishes the key as exportable (its secret holds it).
	Exportable bool
	// Tags are the version's tags.
	Tags map[string]string
	// Key, when set, is the version's key instead of one generated now (it
	// spares a test the cost of RSA key generation; the vault keeps it as
	// its own). Its type wins over EC.
	Key crypto.Signer
}

// VersionInfo is the vault's ground truth about one certificate version.
type VersionInfo struct {
	Version     string
	Certificate *x509.Certificate
	Enabled     bool
	// Exportable: the key was published exportable (its secret holds it).
	Exportable bool
	// Imported: the version came from an import (its key was generated
	// outside the vault).
	Imported bool
	// KeyType is RSA, RSA-HSM, EC or EC-HSM.
	KeyType string
	Tags    map[string]string
}

// Controls are the emulator controls only kvassert's own tests (and the
// CLI's demo) use. Get them with Of.
type Controls interface {
	// InjectGraphFaultAfterCommit arms a fault for a Graph action
	// ("graph/applications/addKey" or ".../removeKey") that strikes after
	// the action took effect: the key is added or removed, and the caller
	// gets f's status (504 when zero) or, with f.Drop, a cut connection
	// instead of the answer. Times limits it to the next n successful
	// actions (0: until cleared); actions that fail on their own do not
	// consume it. Latency is ignored.
	InjectGraphFaultAfterCommit(op Op, f Fault)
	// ClearGraphFaultsAfterCommit disarms the after-commit faults of ops, or all.
	ClearGraphFaultsAfterCommit(ops ...Op)
	// OnGraphAddKey sets a function called each time Graph's addKey has
	// added a key, before the answer is written; nil removes it. It must not
	// call Graph.
	OnGraphAddKey(fn func(KeyCredential))
	// SetGraphPropagationDelay sets how long a key added through addKey
	// takes to be accepted at the token endpoint, on the emulator's clock
	// (default DefaultGraphPropagationDelay); it applies to keys added
	// afterwards.
	SetGraphPropagationDelay(d time.Duration)
	// GraphPropagationDelay is the current addKey propagation delay.
	GraphPropagationDelay() time.Duration
	// SetListPageSize makes a vault answer paged lists with at most n items
	// per page and a nextLink (0 restores the service's 25).
	SetListPageSize(vaultName string, n int) error
	// AddCertificateVersion publishes a new latest version of an existing
	// vault certificate with a key generated in the vault, shaped by spec,
	// without changing its policy. It returns the version ID.
	AddCertificateVersion(vaultName, certName string, spec VersionSpec) (string, error)
	// CertificateVersions returns every version of a vault certificate,
	// oldest first, as the vault holds it (no request is counted).
	CertificateVersions(vaultName, certName string) ([]VersionInfo, error)
	// AppObjectID returns the application object ID of a scenario app.
	AppObjectID(clientID string) (string, error)
	// SetServicePrincipalLock sets the app's app instance property lock as
	// Microsoft Graph reports it (servicePrincipalLockConfiguration):
	// isEnabled, allProperties, and the four single properties
	// (credentialsWithUsageVerify, credentialsWithUsageSign, identifierUris,
	// tokenEncryptionKeyId) all equal to allProperties; unlock removes it
	// (Graph answers null).
	SetServicePrincipalLock(clientID string, isEnabled, allProperties, unlock bool) error
}

// Of returns the controls of an emulator (a *kvasserttest.Emulator). It is
// set by package kvasserttest's init, so it is there whenever a caller has
// an emulator.
var Of func(emulator any) Controls

// DefaultGraphPropagationDelay is the default time, on the emulator's clock,
// between a Graph addKey and the token endpoint accepting the new key.
const DefaultGraphPropagationDelay = 5 * time.Second

// Well-known URLs of the emulated public cloud.
const (
	// AuthorityHost is the Entra host, with a trailing slash.
	AuthorityHost = "https://login.microsoftonline.com/"
	// GraphURL is the Microsoft Graph v1.0 base URL, with a trailing slash.
	GraphURL = "https://graph.microsoft.com/v1.0/"
	// GraphScope is the scope of app-only tokens for Graph.
	GraphScope = "https://graph.microsoft.com/.default"
)

// TokenEndpoint is the v2.0 token endpoint of a tenant.
func TokenEndpoint(tenant string) string { return AuthorityHost + tenant + "/oauth2/v2.0/token" }

// The demo scenario's identifiers that scenario does not export (see
// scenario.Demo).
const (
	DemoFabrikamTenant   = "c41d8e92-3f5b-4a6c-b7d8-9e0f1a2b3c93"
	DemoNorthwindTenant  = "5e7a0b23-9c1d-4e2f-a3b4-c5d6e7f8a9b4"
	DemoWingtipTenant    = "9a1b2c3d-4e5f-4a6b-8c7d-0e1f2a3b4c55" // never consented
	DemoTailspinTenant   = "4d6f8a0c-2e4a-4c6e-9a0c-3e5a7c9e1b66" // not consented yet: the customer the demo onboards
	DemoWorkloadClientID = "3c5e7a9b-2d4f-4a6c-8e0a-1b3d5f7a9c27" // the app's workload identity (reaches the vault)
	DemoWorkloadSecret   = "demo-workload-secret-not-a-real-credential"
	DemoIdentityClientID = "7e9a1c3e-5b7d-4f9a-b1c3-d5e7f9a1b338" // user-assigned managed identity
	DemoIdentityObjectID = "1f3a5c7e-9b1d-4e3f-a5b7-c9d1e3f5a749"
)

// DemoRedirectURI and DemoRedirectURIIP are the demo app's registered web
// redirect URIs, where the emulated admin-consent page sends the
// administrator back (loopback http: a request with any port matches).
const (
	DemoRedirectURI   = "http://localhost/consent/callback"
	DemoRedirectURIIP = "http://127.0.0.1/consent/callback"
)
