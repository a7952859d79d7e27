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
	Assertion kvassert.AssertionOptions

	// Grace is how long a superseded version's key stays registered after
	// its successor was accepted (default 7 days), so that replicas still
	// using it move on first.
	Grace time.Duration
	// AcceptTimeout bounds the wait for Entra to accept a newly registered
	// version (default 10 minutes; replication takes seconds to minutes).
	AcceptTimeout time.Duration
	// RenewBefore, when positive, makes the roll create the next version in
	// the vault when the newest valid version expires within RenewBefore
	// and the certificate's policy does not renew it (AutoRenew). Zero
	// leaves renewal to the vault's policy.
	RenewBefore time.Duration
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
	if !kvassert.ValidTenantID(cfg.TenantID) {
		return nil, fmt.Errorf("rotation: the tenant ID (%d bytes) is not a tenant ID or domain", len(cfg.TenantID))
	}
	if !kvassert.ValidClientID(cfg.ClientID) {
		return nil, fmt.Errorf("rotation: the client ID (%d bytes) is not a GUID", len(cfg.ClientID))
	}
	if !kvassert.ValidClientID(cfg.AppObjectID) {
		return nil, fmt.Errorf("rotation: the application object ID (%d bytes) is not a GUID: use the app registration's Object ID", len(cfg.AppObjectID))
	}
	if strings.EqualFold(cfg.AppObjectID, cfg.ClientID) {
		return nil, errors.New("rotation: the application object ID equals the client ID; addKey needs the app registration's Object ID, which differs from its client (application) ID")
	}
	if cfg.Grace < 0 || cfg.AcceptTimeout < 0 || cfg.RenewBefore < 0 {
		return nil, errors.New("rotation: Grace, AcceptTimeout and RenewBefore must not be negative")
	}
	if cfg.Grace == 0 {
		cfg.Grace = 7 * 24 * time.Hour
	}
	if cfg.AcceptTimeout == 0 {
		cfg.AcceptTimeout = 10 * time.Minute
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

// VersionStatus is one row of Status.
type VersionStatus struct {
	*Version
	// Valid: enabled and within its validity now.
	Valid bool
	// Acceptance by Entra (probed for valid versions only).
	Acceptance Acceptance
	// Active is the version the app's sources use: the newest accepted one.
	Active bool
	// GraphKeyID is the keyId kvassert recorded when it registered the
	// version ("" when kvassert did not register it).
	GraphKeyID string
	// Removed is set when kvassert removed the version's key.
	Removed bool
}

// Status reads every version and probes the valid ones (one keys/sign and
// one token request each). It changes nothing.
func (r *Roller) Status(ctx context.Context) ([]VersionStatus, error) {
	versions, err := r.store.versions(ctx)
	if err != nil {
		return nil, err
	}
	now := r.cfg.Now()
	out := make([]VersionStatus, 0, len(versions))
	active := false
	for _, v := range versions {
		s := VersionStatus{Version: v, Valid: v.ValidAt(now), GraphKeyID: v.Tags[TagKeyID], Removed: v.Tags[TagRemoved] != ""}
		if s.Valid && !s.Removed {
			if s.Acceptance, err = r.probe(ctx, v); err != nil {
				return nil, err
			}
			if s.Acceptance == Accepted && !active {
				s.Active, active = true, true
			}
		}
		out = append(out, s)
	}
	return out, nil
}
