package rotation

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/assertion"
	"github.com/kvassert/kvassert/internal/entraid"
	"github.com/kvassert/kvassert/internal/graphapi"
	"github.com/kvassert/kvassert/internal/inputerr"
	"github.com/kvassert/kvassert/internal/rootaccess"
	"github.com/kvassert/kvassert/internal/textutil"
	"github.com/kvassert/kvassert/keyvault"
	"github.com/kvassert/kvassert/telemetry"
)

// Application is the app registration whose keys a Roller rolls.
type Application struct {
	// TenantID is the app's home tenant (ID or domain): probes and the Graph
	// token are requested there.
	TenantID string
	// ClientID is the app's client (application) ID.
	ClientID string
	// ObjectID is the app registration's Object ID (addKey and removeKey
	// address the application object); it differs from ClientID.
	ObjectID string
}

// Options configure a Roller. A nil *Options means the defaults.
type Options struct {
	// ClientOptions for every call a roll makes: Key Vault (certificates and
	// keys), the token requests (probes and the Graph token) and Microsoft
	// Graph. Cloud selects the authority and Graph hosts; an emulator's
	// Transport is given here once.
	ClientOptions policy.ClientOptions
	// AllowLoopback accepts an https vault URL on this machine (127.0.0.1,
	// [::1], localhost), for emulators reached without a re-routing
	// transport. Off by default.
	AllowLoopback bool
	// Algorithm and Lifetime shape the probe assertions, like the app's own
	// (default PS256 with x5t#S256, 10 minutes).
	Algorithm assertion.Algorithm
	Lifetime  time.Duration

	// Grace is how long a superseded version's key stays registered after
	// its successor was accepted (default 7 days), so that replicas still
	// using it move on first.
	Grace time.Duration
	// AcceptTimeout bounds the wait for Entra to accept a newly registered
	// version (default 10 minutes; replication takes seconds to minutes).
	AcceptTimeout time.Duration
	// RenewBefore, when positive, makes the roll create the next version in
	// the vault when the version it keeps the app on expires within
	// RenewBefore and the vault will not renew it in time: the policy has no
	// AutoRenew, or AutoRenew counts from another version (the vault's
	// latest, which may be unusable), or no version may be registered. Not
	// while a create is in progress. Zero leaves renewal to the vault's
	// policy (a pass then reports an active version that expires within 30
	// days with nothing to register).
	RenewBefore time.Duration
	// RegisterImportedKeys lets a roll register versions whose key was not
	// generated in the vault (imported certificates, including pre-staged
	// ones) or whose policy lets the key be exported. By default such
	// versions are skipped and reported as needing attention: whoever may
	// import a certificate would otherwise get their own key registered on
	// the app.
	RegisterImportedKeys bool
	// PassTimeout bounds one pass (Roll), whatever the caller's context:
	// a vault or Graph that never answers ends the pass with a report
	// (default twice AcceptTimeout plus 10 minutes: a pass may wait twice).
	PassTimeout time.Duration
	// DryRun computes and reports the plan and changes nothing: no addKey,
	// no removeKey, no tag, no new version. Probes (a token request each)
	// still run.
	DryRun bool

	// Source, when set, is switched to a version as soon as a roll knows
	// Entra accepts it, instead of at its next re-read of the vault: give
	// the source the service in this process signs with.
	Source *kvassert.KeyVaultCertificateSource
	// OnAccepted, when set, is called with a version as soon as a roll
	// knows Entra accepts it (after Source is switched), e.g. to tell other
	// processes.
	OnAccepted func(version string)

	// Logger receives the roll's lines. Steps that need a person (Action
	// "attention") and a failed roll in Run are logged at Warn. The other
	// steps are logged at Info when Logger is set, and at Debug on
	// slog.Default() when it is nil: a library does not write routine lines
	// to a program's log unasked; every step is in the Report anyway.
	Logger *slog.Logger
	// Telemetry selects where the Key Vault signs' metrics and spans go
	// (default: the global OpenTelemetry providers).
	Telemetry telemetry.Options

	// Test hooks (see export_test.go): the roll's clock, the probes'
	// assertion clock and a context-aware sleep.
	now      func() time.Time
	probeNow func() time.Time
	sleep    func(ctx context.Context, d time.Duration) error
}

// Roller registers the newest version of a Key Vault certificate on the app
// and retires the keys of versions it superseded. A roll is idempotent and
// safe to re-run at any point; its state lives in the vault's tags.
type Roller struct {
	cfg       Options
	app       Application
	cert      string // the certificate's name
	cred      azcore.TokenCredential
	stepLevel slog.Level // Info with a caller's Logger, else Debug
	store     *certStore

	mu      sync.Mutex
	signers map[string]*keyvault.Signer // by versioned key ID: one Key Vault client (and challenge) per version
}

// New returns a Roller for the Key Vault certificate certificate in the
// vault at vaultURL (https://{vault}.vault.azure.net/), reached with
// vaultCredential, and the app registration app. It checks its input (an
// *InputError, alias kvassert.InputError, names what it refused) and makes
// no call. opts may be nil.
//
// vaultCredential needs certificates/get, certificates/list,
// certificates/update (tags), keys/sign, and certificates/create only with
// RenewBefore.
func New(vaultURL, certificate string, vaultCredential azcore.TokenCredential, app Application, opts *Options) (*Roller, error) {
	var cfg Options
	if opts != nil {
		cfg = *opts
	}
	if err := checkInput(vaultCredential, app, &cfg); err != nil {
		return nil, err
	}
	r := &Roller{app: app, cert: certificate, cred: vaultCredential, stepLevel: slog.LevelInfo, signers: map[string]*keyvault.Signer{}}
	if cfg.Grace == 0 {
		cfg.Grace = 7 * 24 * time.Hour
	}
	if cfg.AcceptTimeout == 0 {
		cfg.AcceptTimeout = 10 * time.Minute
	}
	if cfg.PassTimeout == 0 {
		cfg.PassTimeout = 2*cfg.AcceptTimeout + 10*time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger, r.stepLevel = slog.Default(), slog.LevelDebug
	}
	if cfg.now == nil {
		cfg.now = time.Now
	}
	if cfg.sleep == nil {
		cfg.sleep = sleep
	}
	if cfg.probeNow == nil {
		cfg.probeNow = cfg.now
	}
	r.cfg = cfg
	store, err := newCertStore(vaultURL, certificate, vaultCredential, r.vaultOptions())
	if err != nil {
		return nil, err
	}
	r.store = store
	return r, nil
}

// checkInput refuses bad input to New with an *inputerr.Error naming it.
func checkInput(cred azcore.TokenCredential, app Application, o *Options) error {
	switch {
	case cred == nil:
		return inputErr("vaultCredential", "no vault credential (vaultCredential is nil)")
	case !entraid.ValidTenantID(app.TenantID):
		return inputErr("Application.TenantID", "the tenant ID (Application.TenantID, %d bytes) is not a tenant ID or domain", len(app.TenantID))
	case !entraid.ValidClientID(app.ClientID):
		return inputErr("Application.ClientID", "the client ID (Application.ClientID, %d bytes) is not a GUID", len(app.ClientID))
	case !entraid.ValidClientID(app.ObjectID):
		return inputErr("Application.ObjectID", "the application object ID (Application.ObjectID, %d bytes) is not a GUID: use the app registration's Object ID", len(app.ObjectID))
	case strings.EqualFold(app.ObjectID, app.ClientID):
		return inputErr("Application.ObjectID", "the application object ID equals the client ID (Application.ObjectID = Application.ClientID); addKey needs the app registration's Object ID, which differs from its client (application) ID\nhint: copy the Object ID from the app registration's overview page")
	case o.Algorithm != "" && o.Algorithm != assertion.PS256 && o.Algorithm != assertion.RS256:
		return inputErr("Options.Algorithm", "Options.Algorithm %q is not PS256 or RS256", textutil.FirstLine(string(o.Algorithm), 20))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"Grace", o.Grace}, {"AcceptTimeout", o.AcceptTimeout}, {"RenewBefore", o.RenewBefore}, {"PassTimeout", o.PassTimeout}, {"Lifetime", o.Lifetime}} {
		if d.v < 0 {
			return inputErr("Options."+d.name, "Options.%s is %v; it must not be negative (0 means the default)", d.name, d.v)
		}
	}
	if _, err := graphapi.Host(o.ClientOptions.Cloud); err != nil {
		return &inputerr.Error{Package: "rotation", Input: "Options.ClientOptions.Cloud", Reason: strings.TrimPrefix(err.Error(), "rotation: ") + " (Options.ClientOptions.Cloud)"}
	}
	return nil
}

func inputErr(input, format string, args ...any) error {
	return inputerr.New("rotation", input, format, args...)
}

// vaultOptions are the Key Vault clients' options.
func (r *Roller) vaultOptions() keyvault.SignerOptions {
	return keyvault.SignerOptions{ClientOptions: r.cfg.ClientOptions, AllowLoopback: r.cfg.AllowLoopback, Telemetry: r.cfg.Telemetry}
}

// notifyAccepted tells Options.Source and Options.OnAccepted that Entra accepts
// version.
func (r *Roller) notifyAccepted(version string) {
	if src := r.cfg.Source; src != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		_ = rootaccess.Cache(src).Adopt(ctx, version) // on failure the source finds it on its own
		cancel()
	}
	if r.cfg.OnAccepted != nil {
		r.cfg.OnAccepted(version)
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// acceptance is what a probe found out about a version.
type acceptance int

// acceptance values.
const (
	// accNotProbed: the version was not tried (expired, disabled, or not
	// needed).
	accNotProbed acceptance = iota
	// accAccepted: a token request signed with the version succeeded.
	accAccepted
	// accRefused: Entra refused the version's key (not registered yet, or
	// revoked).
	accRefused
)

func (a acceptance) String() string {
	return [...]string{"not probed", "accepted", "refused"}[a]
}

// source returns a source that signs with version v's key.
func (r *Roller) source(ctx context.Context, v *certVersion) (kvassert.Source, error) {
	signer, err := r.signer(ctx, v)
	if err != nil {
		return nil, err
	}
	return kvassert.NewLocalSource(v.Certificate, signer, &kvassert.LocalCertificateOptions{Algorithm: r.cfg.Algorithm, Lifetime: r.cfg.Lifetime, Clock: r.cfg.probeNow}) // any crypto.Signer; the builder uses SignContext
}

// signer returns a crypto.Signer over version v's key in the vault
// (keys/sign only; no lookup), one per version for the Roller's life.
func (r *Roller) signer(ctx context.Context, v *certVersion) (*keyvault.Signer, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s := r.signers[v.KeyID]; s != nil {
		return s, nil
	}
	vo := r.vaultOptions()
	vo.PublicKey = v.Certificate.PublicKey
	s, err := keyvault.NewSigner(ctx, v.KeyID, r.cred, &vo)
	if err != nil {
		return nil, err
	}
	r.signers[v.KeyID] = s
	return s, nil
}

// credential returns a fresh credential (no cached token) that signs with v.
func (r *Roller) credential(ctx context.Context, v *certVersion) (*kvassert.Credential, error) {
	src, err := r.source(ctx, v)
	if err != nil {
		return nil, err
	}
	return kvassert.NewCredential(r.app.TenantID, r.app.ClientID, src, &kvassert.CredentialOptions{ClientOptions: r.cfg.ClientOptions})
}

// refusedCodes are Entra's answers that mean "this key is not (or no
// longer) accepted for this app".
var refusedCodes = map[int]bool{700027: true, 7000274: true, 7000214: true, 7000277: true, 1000502: true}

// probe asks Entra for a token in the home tenant signed with v: the ground
// truth of whether v is registered, with no Graph read permission.
func (r *Roller) probe(ctx context.Context, v *certVersion) (acceptance, error) {
	cred, err := r.credential(ctx, v)
	if err != nil {
		return accNotProbed, err
	}
	host, _ := graphapi.Host(r.cfg.ClientOptions.Cloud)
	_, err = cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://" + host + "/.default"}})
	var ae *kvassert.AuthError
	switch {
	case err == nil:
		return accAccepted, nil
	case errors.As(err, &ae) && refusedCodes[ae.Code]:
		return accRefused, nil
	}
	return accNotProbed, fmt.Errorf("rotation: probing version %s: %w", v.Version, err)
}

// graph returns a Graph client authenticated as the app with version v.
func (r *Roller) graph(ctx context.Context, v *certVersion) (*graphapi.Client, error) {
	cred, err := r.credential(ctx, v)
	if err != nil {
		return nil, err
	}
	return graphapi.New(cred, &r.cfg.ClientOptions)
}

// VersionStatus is one row of Status: a version of the certificate, what
// Entra thinks of it, and what a roll does with it and why.
type VersionStatus struct {
	// Version is the Key Vault version identifier.
	Version string
	// KeyID is the versioned key identifier (kid) that signs for it.
	KeyID string
	// Certificate is the parsed X.509 certificate; nil when the version
	// could not be read (see Unreadable) or is disabled.
	Certificate *x509.Certificate
	// Thumbprint is the SHA-1 thumbprint in upper-case hex, as the Azure
	// portal shows it next to a registered certificate.
	Thumbprint string
	// Enabled is the version's enabled attribute.
	Enabled bool
	// Created is when the vault created the version.
	Created time.Time
	// Tags are the version's tags. kvassert keeps three, each bound to the
	// version's thumbprint (a tag copied to another certificate is
	// ignored): kvassert-graph-key-id (the Graph keyId addKey returned,
	// "keyid=<GUID>;x5t=<thumbprint>;at=<RFC 3339>"), kvassert-accepted
	// (when Entra was first seen accepting it) and kvassert-removed (when
	// kvassert removed its key; a record only), both "at=<RFC 3339>;x5t=<thumbprint>".
	Tags map[string]string
	// Imported reports that the version's key is not shown to be generated
	// in the vault (an imported certificate, or a version made by an
	// earlier operation than the certificate's latest create or renewal).
	Imported bool
	// Exportable reports that the certificate's policy lets the private key
	// be exported.
	Exportable bool
	// Unreadable is why the version could not be read (a pending create has
	// no certificate yet); "" otherwise.
	Unreadable string

	// Valid: enabled and within its validity now.
	Valid bool
	// Probed reports that a token request signed with the version was made
	// (valid RSA versions only); Accepted that Entra accepted it.
	Probed, Accepted bool
	// Active is the version the roll keeps the app on: the newest accepted
	// one that may be registered (or, when none may, the newest accepted).
	Active bool
	// GraphKeyID is the keyId kvassert recorded when it registered the
	// version ("" when kvassert did not register it, or when the tag is not
	// bound to this version's certificate).
	GraphKeyID string
	// Removed is set when kvassert removed the version's key.
	Removed bool
	// Action and Reason: what the next roll does with the version and why:
	// ActionSkipped (never registered: EC, exportable, imported, disabled,
	// expired, pending), ActionWait (not yet valid, or registered and
	// awaiting Entra's acceptance), ActionRegister (the next roll registers
	// it), ActionAccepted (Entra accepts it: the active one, or superseded
	// within the grace period) or ActionRetired (superseded and its key is
	// no longer on the app).
	Action Action
	Reason string
}

// statusRow is one version while Status decides.
type statusRow struct {
	v       *certVersion
	valid   bool
	acc     acceptance
	removed bool
	active  bool
	action  Action
	reason  string
	skip    string // skipReason
}

// Status reads every version and probes the valid RSA ones (one keys/sign
// and one token request per thumbprint), and says per version what a roll
// does with it and why. It changes nothing. Like a pass, it ends within
// PassTimeout.
func (r *Roller) Status(ctx context.Context) ([]VersionStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.PassTimeout)
	defer cancel()
	list, err := r.store.versions(ctx)
	if err != nil {
		return nil, err
	}
	now := r.cfg.now()
	rows, err := r.statusRows(ctx, list.all, now)
	if err != nil {
		return nil, err
	}
	active := activeRow(rows)
	targetSeen := false
	for i := range rows {
		r.decide(rows, i, active, now, &targetSeen)
	}
	out := make([]VersionStatus, 0, len(rows))
	for _, s := range rows {
		v := s.v
		out = append(out, VersionStatus{
			Version: v.Version, KeyID: v.KeyID, Certificate: v.Certificate, Thumbprint: v.Thumbprint(), Enabled: v.Enabled,
			Created: v.Created, Tags: v.Tags, Imported: v.Imported, Exportable: v.Exportable, Unreadable: v.Unreadable,
			Valid: s.valid, Probed: s.acc != accNotProbed, Accepted: s.acc == accAccepted, Active: s.active,
			GraphKeyID: v.recordedKeyID(), Removed: s.removed, Action: s.action, Reason: s.reason,
		})
	}
	return out, nil
}

// statusRows probes the valid RSA versions, once per thumbprint.
func (r *Roller) statusRows(ctx context.Context, all []*certVersion, now time.Time) ([]statusRow, error) {
	acc := map[string]acceptance{}
	rows := make([]statusRow, 0, len(all))
	for _, v := range all {
		s := statusRow{v: v, valid: v.ValidAt(now), removed: !v.tagTime(tagRemoved).IsZero(), skip: v.skipReason(now, r.cfg.RegisterImportedKeys)}
		if s.valid && v.RSA() {
			a, ok := acc[v.Thumbprint()]
			if !ok {
				var err error
				if a, err = r.probe(ctx, v); err != nil {
					return nil, err
				}
				acc[v.Thumbprint()] = a
			}
			s.acc = a
		}
		rows = append(rows, s)
	}
	return rows, nil
}

// activeRow is the active version: the newest accepted one that may be
// registered, else the newest accepted (-1 when none is accepted).
func activeRow(rows []statusRow) int {
	for pass := 0; pass < 2; pass++ {
		for i, s := range rows {
			if s.acc == accAccepted && (pass == 1 || s.skip == "") {
				return i
			}
		}
	}
	return -1
}

// decide sets rows[i]'s action and reason; targetSeen is whether a newer
// row is the version a roll registers (or keeps).
func (r *Roller) decide(rows []statusRow, i, active int, now time.Time, targetSeen *bool) {
	s := &rows[i]
	why := s.skip
	switch {
	case i == active:
		s.active, s.action, s.reason = true, ActionAccepted, "active: the newest version Entra accepts"
		*targetSeen = *targetSeen || why == ""
	case s.v.Certificate != nil && s.v.Enabled && now.Before(s.v.Certificate.NotBefore):
		s.action, s.reason = ActionWait, "not valid until "+s.v.Certificate.NotBefore.UTC().Format(time.RFC3339)
		if why != "" {
			s.reason += "; then skipped: " + why
		}
	case s.acc == accAccepted:
		s.action, s.reason = ActionAccepted, acceptedReason(rows, i, active)
	case why != "":
		s.action, s.reason = ActionSkipped, why
		if s.removed {
			s.action, s.reason = ActionRetired, "key removed by kvassert at "+s.v.tagTime(tagRemoved).UTC().Format(time.RFC3339)+"; now "+why
		}
	case active >= 0 && i > active:
		s.action, s.reason = ActionRetired, "superseded by version "+short(rows[active].v.Version)+"; Entra does not accept its key"
		if s.removed {
			s.reason = "key removed by kvassert at " + s.v.tagTime(tagRemoved).UTC().Format(time.RFC3339)
		}
	case *targetSeen:
		s.action, s.reason = ActionSkipped, "not accepted and older than the version a roll registers"
	default:
		*targetSeen = true
		s.action, s.reason = r.registerDecision(s.v, now)
	}
}

// acceptedReason is why rows[i], accepted but not active, is kept.
func acceptedReason(rows []statusRow, i, active int) string {
	s := rows[i]
	if active >= 0 && i > active {
		if s.v.Thumbprint() == rows[active].v.Thumbprint() {
			return "accepted: the same certificate as the active version " + short(rows[active].v.Version) + ", so its key is kept"
		}
		return "accepted, superseded by version " + short(rows[active].v.Version) + ": its key is removed after the grace period"
	}
	if s.skip != "" {
		return "accepted, newer than the active version, but not used: " + s.skip
	}
	return "accepted, newer than the active version"
}

// registerDecision is what Status says of the version a roll registers.
func (r *Roller) registerDecision(v *certVersion, now time.Time) (Action, string) {
	id, at := v.recordedKeyID(), v.tagTime(tagKeyID)
	switch {
	case id != "" && now.Before(at.Add(r.cfg.AcceptTimeout)):
		return ActionWait, "registered at " + at.UTC().Format(time.RFC3339) + " (Graph keyId " + id + "); awaiting Entra's acceptance"
	case id != "":
		return ActionRegister, "registered at " + at.UTC().Format(time.RFC3339) + " (Graph keyId " + id + ") but still refused: the next roll registers it again"
	}
	return ActionRegister, "valid and not accepted by Entra: the next roll registers it"
}
