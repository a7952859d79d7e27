package rotation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/internal/entraid"
	"github.com/kvassert/kvassert/keyvault"
)

// Config configures a Roller.
type Config struct {
	// VaultURL and Certificate name the Key Vault certificate the app
	// authenticates with.
	VaultURL, Certificate string
	// VaultCredential reaches the vault. A roll needs certificates/get,
	// certificates/list, certificates/update (tags), keys/sign, and
	// certificates/create only when RenewBefore is set.
	VaultCredential azcore.TokenCredential
	// VaultOptions configure the Key Vault clients.
	VaultOptions keyvault.Options

	// TenantID is the app's home tenant, ClientID its client (application)
	// ID, AppObjectID the app registration's object ID (addKey and removeKey
	// address the application object).
	TenantID, ClientID, AppObjectID string
	// ClientOptions for the token requests (probes and the Graph token) and
	// Graph calls: Cloud selects the authority and Graph hosts.
	ClientOptions policy.ClientOptions
	// Assertion shapes the probe assertions, like the app's own (default
	// PS256 with x5t#S256).
	Assertion kvassert.LocalCertificateOptions

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
	// OnAccepted is called when a version is known to be accepted by Entra,
	// e.g. to tell an in-process source to switch to it.
	OnAccepted func(version string)
	// Logger receives one line per step (default slog.Default()).
	Logger *slog.Logger
	// Now and Sleep replace time.Now and a context-aware sleep (tests on an
	// emulator clock).
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
}

// Roller registers the newest version of a Key Vault certificate on the app
// and retires the keys of versions it superseded. A roll is idempotent and
// safe to re-run at any point; its state lives in the vault's tags.
type Roller struct {
	cfg   Config
	store *certStore

	mu      sync.Mutex
	signers map[string]*keyvault.Signer // by versioned key ID: one Key Vault client (and challenge) per version
}

// New checks cfg and returns a Roller. It makes no call.
func New(cfg Config) (*Roller, error) {
	if cfg.VaultCredential == nil {
		return nil, errors.New("rotation: no vault credential")
	}
	if !entraid.ValidTenantID(cfg.TenantID) {
		return nil, fmt.Errorf("rotation: the tenant ID (%d bytes) is not a tenant ID or domain", len(cfg.TenantID))
	}
	if !entraid.ValidClientID(cfg.ClientID) {
		return nil, fmt.Errorf("rotation: the client ID (%d bytes) is not a GUID", len(cfg.ClientID))
	}
	if !entraid.ValidClientID(cfg.AppObjectID) {
		return nil, fmt.Errorf("rotation: the application object ID (%d bytes) is not a GUID: use the app registration's Object ID", len(cfg.AppObjectID))
	}
	if strings.EqualFold(cfg.AppObjectID, cfg.ClientID) {
		return nil, errors.New("rotation: the application object ID equals the client ID; addKey needs the app registration's Object ID, which differs from its client (application) ID")
	}
	if cfg.Grace < 0 || cfg.AcceptTimeout < 0 || cfg.RenewBefore < 0 || cfg.PassTimeout < 0 {
		return nil, errors.New("rotation: Grace, AcceptTimeout, RenewBefore and PassTimeout must not be negative")
	}
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
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Sleep == nil {
		cfg.Sleep = sleep
	}
	if cfg.Assertion.Clock == nil {
		cfg.Assertion.Clock = cfg.Now
	}
	if _, err := GraphHost(cfg.ClientOptions.Cloud); err != nil {
		return nil, err
	}
	store, err := newCertStore(cfg.VaultURL, cfg.Certificate, cfg.VaultCredential, cfg.VaultOptions)
	if err != nil {
		return nil, err
	}
	return &Roller{cfg: cfg, store: store, signers: map[string]*keyvault.Signer{}}, nil
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

// Acceptance is what a probe found out about a version.
type Acceptance int

// Acceptance values.
const (
	// NotProbed: the version was not tried (expired, disabled, or not
	// needed).
	NotProbed Acceptance = iota
	// Accepted: a token request signed with the version succeeded.
	Accepted
	// Refused: Entra refused the version's key (not registered yet, or
	// revoked).
	Refused
)

func (a Acceptance) String() string {
	return [...]string{"not probed", "accepted", "refused"}[a]
}

// source returns a source that signs with version v's key.
func (r *Roller) source(ctx context.Context, v *Version) (kvassert.Source, error) {
	signer, err := r.signer(ctx, v)
	if err != nil {
		return nil, err
	}
	return kvassert.NewLocalSource(v.Certificate, signer, &r.cfg.Assertion) // any crypto.Signer; the builder uses SignContext
}

// signer returns a crypto.Signer over version v's key in the vault
// (keys/sign only; no lookup), one per version for the Roller's life.
func (r *Roller) signer(ctx context.Context, v *Version) (*keyvault.Signer, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s := r.signers[v.KeyID]; s != nil {
		return s, nil
	}
	s, err := keyvault.NewSigner(ctx, v.KeyID, r.cfg.VaultCredential, v.Certificate.PublicKey, &r.cfg.VaultOptions)
	if err != nil {
		return nil, err
	}
	r.signers[v.KeyID] = s
	return s, nil
}

// credential returns a fresh credential (no cached token) that signs with v.
func (r *Roller) credential(ctx context.Context, v *Version) (*kvassert.Credential, error) {
	src, err := r.source(ctx, v)
	if err != nil {
		return nil, err
	}
	return kvassert.NewCredential(r.cfg.TenantID, r.cfg.ClientID, src, &kvassert.CredentialOptions{ClientOptions: r.cfg.ClientOptions})
}

// refusedCodes are Entra's answers that mean "this key is not (or no
// longer) accepted for this app".
var refusedCodes = map[int]bool{700027: true, 7000274: true, 7000214: true, 7000277: true, 1000502: true}

// probe asks Entra for a token in the home tenant signed with v: the ground
// truth of whether v is registered, with no Graph read permission.
func (r *Roller) probe(ctx context.Context, v *Version) (Acceptance, error) {
	cred, err := r.credential(ctx, v)
	if err != nil {
		return NotProbed, err
	}
	host, _ := GraphHost(r.cfg.ClientOptions.Cloud)
	_, err = cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://" + host + "/.default"}})
	var ae *kvassert.AuthError
	switch {
	case err == nil:
		return Accepted, nil
	case errors.As(err, &ae) && refusedCodes[ae.Code]:
		return Refused, nil
	}
	return NotProbed, fmt.Errorf("rotation: probing version %s: %w", v.Version, err)
}

// graph returns a Graph client authenticated as the app with version v.
func (r *Roller) graph(ctx context.Context, v *Version) (*GraphClient, error) {
	cred, err := r.credential(ctx, v)
	if err != nil {
		return nil, err
	}
	return NewGraphClient(cred, &GraphOptions{ClientOptions: r.cfg.ClientOptions})
}

// Decision is what a roll does with a version, as Status reports it.
type Decision string

// Decisions.
const (
	DecisionSkipped  Decision = "skipped"  // never registered: EC, exportable, imported, disabled, expired, pending
	DecisionWaiting  Decision = "waiting"  // not yet valid, or registered and awaiting Entra's acceptance
	DecisionRegister Decision = "register" // the next roll registers it
	DecisionAccepted Decision = "accepted" // Entra accepts it (the active one, or superseded within the grace period)
	DecisionRetired  Decision = "retired"  // superseded and its key is no longer on the app
)

// VersionStatus is one row of Status.
type VersionStatus struct {
	*Version
	// Valid: enabled and within its validity now.
	Valid bool
	// Acceptance by Entra (probed for valid RSA versions only).
	Acceptance Acceptance
	// Active is the version the roll keeps the app on: the newest accepted
	// one that may be registered (or, when none may, the newest accepted).
	Active bool
	// GraphKeyID is the keyId kvassert recorded when it registered the
	// version ("" when kvassert did not register it, or when the tag is not
	// bound to this version's certificate).
	GraphKeyID string
	// Removed is set when kvassert removed the version's key.
	Removed bool
	// Decision and Reason: what a roll does with the version and why.
	Decision Decision
	Reason   string
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
	now := r.cfg.Now()
	acc := map[string]Acceptance{}
	out := make([]VersionStatus, 0, len(list.all))
	for _, v := range list.all {
		s := VersionStatus{Version: v, Valid: v.ValidAt(now), GraphKeyID: v.recordedKeyID(), Removed: !v.tagTime(TagRemoved).IsZero()}
		if s.Valid && v.RSA() {
			a, ok := acc[v.Thumbprint()]
			if !ok {
				if a, err = r.probe(ctx, v); err != nil {
					return nil, err
				}
				acc[v.Thumbprint()] = a
			}
			s.Acceptance = a
		}
		out = append(out, s)
	}
	// The active version: the newest accepted one that may be registered,
	// else the newest accepted.
	active := -1
	for pass := 0; pass < 2 && active < 0; pass++ {
		for i, s := range out {
			if s.Acceptance == Accepted && (pass == 1 || s.skipReason(now, r.cfg.RegisterImportedKeys) == "") {
				active = i
				break
			}
		}
	}
	targetSeen := false
	for i := range out {
		s := &out[i]
		why := s.skipReason(now, r.cfg.RegisterImportedKeys)
		switch {
		case i == active:
			s.Active, s.Decision, s.Reason = true, DecisionAccepted, "active: the newest version Entra accepts"
			targetSeen = targetSeen || why == ""
		case s.Certificate != nil && s.Enabled && now.Before(s.Certificate.NotBefore):
			s.Decision, s.Reason = DecisionWaiting, "not valid until "+s.Certificate.NotBefore.UTC().Format(time.RFC3339)
			if why != "" {
				s.Reason += "; then skipped: " + why
			}
		case s.Acceptance == Accepted:
			s.Decision, s.Reason = DecisionAccepted, "accepted, newer than the active version"
			if why != "" {
				s.Reason += ", but not used: " + why
			}
			if active >= 0 && i > active {
				s.Reason = "accepted, superseded by version " + short(out[active].Version.Version) + ": its key is removed after the grace period"
				if s.Thumbprint() == out[active].Thumbprint() {
					s.Reason = "accepted: the same certificate as the active version " + short(out[active].Version.Version) + ", so its key is kept"
				}
			}
		case why != "":
			s.Decision, s.Reason = DecisionSkipped, why
			if s.Removed {
				s.Decision, s.Reason = DecisionRetired, "key removed by kvassert at "+s.tagTime(TagRemoved).UTC().Format(time.RFC3339)+"; now "+why
			}
		case active >= 0 && i > active:
			s.Decision, s.Reason = DecisionRetired, "superseded by version "+short(out[active].Version.Version)+"; Entra does not accept its key"
			if s.Removed {
				s.Reason = "key removed by kvassert at " + s.tagTime(TagRemoved).UTC().Format(time.RFC3339)
			}
		case targetSeen:
			s.Decision, s.Reason = DecisionSkipped, "not accepted and older than the version a roll registers"
		default:
			targetSeen = true
			s.Decision, s.Reason = DecisionRegister, "valid and not accepted by Entra: the next roll registers it"
			if id, at := s.recordedKeyID(), s.tagTime(TagKeyID); id != "" && now.Before(at.Add(r.cfg.AcceptTimeout)) {
				s.Decision, s.Reason = DecisionWaiting, "registered at "+at.UTC().Format(time.RFC3339)+" (Graph keyId "+id+"); awaiting Entra's acceptance"
			} else if id != "" {
				s.Reason = "registered at " + at.UTC().Format(time.RFC3339) + " (Graph keyId " + id + ") but still refused: the next roll registers it again"
			}
		}
	}
	return out, nil
}
