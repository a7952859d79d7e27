package rotation

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"
)

// Action is what one step of a roll did or, in a dry run, would do.
type Action string

// Actions.
const (
	ActionNone     Action = "none"      // nothing to do for this version
	ActionRegister Action = "register"  // addKey of the version
	ActionWait     Action = "wait"      // wait for Entra to accept the version
	ActionAccepted Action = "accepted"  // the version is accepted and active
	ActionRemove   Action = "remove"    // removeKey of a superseded version
	ActionKeep     Action = "keep"      // a superseded key kept (grace, or not kvassert's)
	ActionCreate   Action = "create"    // a new version created in the vault
	ActionReport   Action = "attention" // needs a person: see Why
)

// Step is one thing a roll did (or would do), and why.
type Step struct {
	Action  Action
	Version string
	// Thumbprint is the version's SHA-1 thumbprint (hex).
	Thumbprint string
	// Why, in one sentence.
	Why string
	// Done is false in a dry run and for steps that only report.
	Done bool
}

func (s Step) String() string {
	v := s.Version
	if len(v) > 8 {
		v = v[:8]
	}
	done := ""
	if !s.Done && s.Action != ActionNone && s.Action != ActionKeep && s.Action != ActionReport && s.Action != ActionAccepted {
		done = " (not done: dry run)"
	}
	return fmt.Sprintf("%-9s %-8s %s%s", s.Action, v, s.Why, done)
}

// Report is the outcome of one roll.
type Report struct {
	// Steps in the order they happened.
	Steps []Step
	// Active is the version accepted by Entra after the roll ("" if none).
	Active string
	// Changed reports whether the roll changed anything (a key added or
	// removed, a version created).
	Changed bool
}

func (rep *Report) add(r *Roller, s Step) {
	rep.Steps = append(rep.Steps, s)
	r.cfg.Logger.Info("kvassert rotation: "+string(s.Action), "certificate", r.cfg.Certificate, "version", s.Version, "thumbprint", s.Thumbprint, "why", s.Why, "done", s.Done)
}

// ErrNoAcceptedVersion is returned when no valid version of the
// certificate is accepted by Entra: no proof can be signed, so a person
// must register a certificate (kvassert cert export --format keycredential).
var ErrNoAcceptedVersion = errors.New("rotation: no valid version of the certificate is accepted by Entra, so no proof of possession can be signed; register the newest version on the app by hand (kvassert cert export --format keycredential) and run again")

// ErrNotAccepted is returned when a registered version was still refused by
// Entra when AcceptTimeout ran out. The previous version stays active; the
// roll is safe to re-run.
var ErrNotAccepted = errors.New("rotation: Entra did not accept the newly registered version in time; the previous version stays active; run again later")

// Roll makes one pass: register the newest valid version if Entra does not
// accept it yet (proof signed by an accepted version), wait until Entra
// accepts it, remove the keys kvassert added for superseded versions past
// the grace period, and, with RenewBefore, create the next version. It
// never removes the key of the newest accepted version, so the app always
// keeps a valid key. The report says what was done and why, also on error.
func (r *Roller) Roll(ctx context.Context) (*Report, error) {
	rep := &Report{}
	err := r.roll(ctx, rep)
	return rep, err
}

func (r *Roller) roll(ctx context.Context, rep *Report) error {
	versions, err := r.store.versions(ctx)
	if err != nil {
		return err
	}
	now := r.cfg.Now()
	var valid []*Version
	for _, v := range versions {
		if v.ValidAt(now) && v.Tags[TagRemoved] == "" {
			valid = append(valid, v)
		}
	}
	if len(valid) == 0 {
		return fmt.Errorf("rotation: certificate %q has no enabled version valid now; create one and register it by hand: %w", r.cfg.Certificate, ErrNoAcceptedVersion)
	}
	newest := valid[0]
	acc, err := r.probe(ctx, newest)
	if err != nil {
		return err
	}
	if acc != Accepted {
		if err := r.register(ctx, rep, newest, valid[1:]); err != nil {
			return err
		}
	} else {
		rep.add(r, Step{Action: ActionAccepted, Version: newest.Version, Thumbprint: newest.Thumbprint(), Why: "Entra accepts the newest valid version", Done: true})
	}
	if !r.cfg.DryRun {
		if newest.Tags[TagAccepted] == "" {
			if err := r.store.setTags(ctx, newest, map[string]string{TagAccepted: r.cfg.Now().UTC().Format(time.RFC3339)}); err != nil {
				return err
			}
		}
		if r.cfg.OnAccepted != nil {
			r.cfg.OnAccepted(newest.Version)
		}
		rep.Active = newest.Version
	}
	if err := r.retire(ctx, rep, newest, versions); err != nil {
		return err
	}
	return r.renew(ctx, rep, newest)
}

// register adds newest's key to the app with a proof from an accepted
// version among older, then waits for Entra to accept newest.
func (r *Roller) register(ctx context.Context, rep *Report, newest *Version, older []*Version) error {
	var signer *Version
	for _, v := range older {
		acc, err := r.probe(ctx, v)
		if err != nil {
			return err
		}
		if acc == Accepted {
			signer = v
			break
		}
	}
	if signer == nil {
		rep.add(r, Step{Action: ActionReport, Version: newest.Version, Thumbprint: newest.Thumbprint(), Why: "the newest version is not accepted and no other valid version is: no proof can be signed"})
		return ErrNoAcceptedVersion
	}
	if keyID := newest.Tags[TagKeyID]; keyID != "" {
		rep.add(r, Step{Action: ActionRegister, Version: newest.Version, Thumbprint: newest.Thumbprint(), Why: "registered earlier (Graph keyId " + keyID + "); waiting for Entra to accept it", Done: true})
	} else {
		step := Step{Action: ActionRegister, Version: newest.Version, Thumbprint: newest.Thumbprint(),
			Why: "the newest valid version is not accepted by Entra; addKey with a proof signed by version " + short(signer.Version)}
		if r.cfg.DryRun {
			rep.add(r, step)
			rep.add(r, Step{Action: ActionWait, Version: newest.Version, Thumbprint: newest.Thumbprint(), Why: "then wait for Entra to accept it"})
			return nil
		}
		if err := r.addKey(ctx, newest, signer); err != nil {
			return err
		}
		step.Done = true
		rep.add(r, step)
		rep.Changed = true
	}
	if r.cfg.DryRun {
		return nil
	}
	return r.waitAccepted(ctx, rep, newest)
}

func (r *Roller) addKey(ctx context.Context, v, signer *Version) error {
	g, err := r.graph(ctx, signer)
	if err != nil {
		return err
	}
	proof, err := r.proof(ctx, signer)
	if err != nil {
		return err
	}
	kc, err := g.AddKey(ctx, r.cfg.AppObjectID, v.Certificate.Raw, proof)
	if err != nil {
		var ge *GraphError
		if errors.As(err, &ge) && ge.StatusCode == http.StatusBadRequest {
			// Another roller may have added the same key a moment ago: its
			// tag then appears on the version.
			if err2 := r.cfg.Sleep(ctx, 2*time.Second); err2 == nil {
				if fresh, err2 := r.store.version(ctx, v.Version); err2 == nil && fresh.Tags[TagKeyID] != "" {
					v.Tags = fresh.Tags
					return nil
				}
			}
		}
		return err
	}
	return r.store.setTags(ctx, v, map[string]string{TagKeyID: kc.KeyID})
}

// proof signs a Graph proof of possession with v's key.
func (r *Roller) proof(ctx context.Context, v *Version) (string, error) {
	signer, err := r.signer(ctx, v)
	if err != nil {
		return "", err
	}
	return Proof(ctx, v.Certificate, signer, r.cfg.AppObjectID, r.cfg.Now())
}

// waitAccepted probes v with back-off until Entra accepts it or
// AcceptTimeout passes.
func (r *Roller) waitAccepted(ctx context.Context, rep *Report, v *Version) error {
	deadline := r.cfg.Now().Add(r.cfg.AcceptTimeout)
	delay := time.Second
	for {
		acc, err := r.probe(ctx, v)
		if err != nil {
			return err
		}
		if acc == Accepted {
			rep.add(r, Step{Action: ActionAccepted, Version: v.Version, Thumbprint: v.Thumbprint(), Why: "Entra accepts the newly registered version; it is now active", Done: true})
			return nil
		}
		if !r.cfg.Now().Add(delay).Before(deadline) {
			rep.add(r, Step{Action: ActionReport, Version: v.Version, Thumbprint: v.Thumbprint(), Why: "registered but not accepted within " + r.cfg.AcceptTimeout.String() + "; the previous version stays active"})
			return ErrNotAccepted
		}
		if err := r.cfg.Sleep(ctx, delay+rand.N(delay/4+1)); err != nil {
			return err
		}
		delay = min(2*delay, 30*time.Second)
	}
}

// retire removes the keys kvassert added for versions superseded by
// newest once newest has been accepted for Grace (expired ones at once),
// with a proof signed by newest. It never touches newest.
func (r *Roller) retire(ctx context.Context, rep *Report, newest *Version, versions []*Version) error {
	acceptedAt, _ := time.Parse(time.RFC3339, newest.Tags[TagAccepted])
	now := r.cfg.Now()
	var lookup keyLookup
	for _, v := range versions {
		if v == newest || v.Tags[TagRemoved] != "" {
			continue
		}
		keyID := v.Tags[TagKeyID]
		if keyID == "" {
			// Not registered by kvassert: its keyId can be found only by
			// reading the app's keys, which needs Application.Read.All or
			// ownership. Without it, report instead of guessing.
			found, why := r.lookupKeyID(ctx, newest, v, &lookup)
			if found == "" {
				if why != "" && v.ValidAt(now) {
					rep.add(r, Step{Action: ActionKeep, Version: v.Version, Thumbprint: v.Thumbprint(), Why: why})
				}
				continue
			}
			keyID = found
		}
		expired := now.After(v.Certificate.NotAfter)
		if !expired && (acceptedAt.IsZero() || now.Before(acceptedAt.Add(r.cfg.Grace))) {
			rep.add(r, Step{Action: ActionKeep, Version: v.Version, Thumbprint: v.Thumbprint(), Why: "superseded; kept for the grace period (" + r.cfg.Grace.String() + " after its successor was accepted)"})
			continue
		}
		step := Step{Action: ActionRemove, Version: v.Version, Thumbprint: v.Thumbprint(), Why: "superseded by version " + short(newest.Version) + " and past the grace period"}
		if expired {
			step.Why = "expired and superseded by version " + short(newest.Version)
		}
		if r.cfg.DryRun || rep.Active == "" {
			rep.add(r, step)
			continue
		}
		if err := r.removeKey(ctx, newest, keyID); err != nil {
			return err
		}
		if err := r.store.setTags(ctx, v, map[string]string{TagRemoved: now.UTC().Format(time.RFC3339)}); err != nil {
			return err
		}
		step.Done = true
		rep.add(r, step)
		rep.Changed = true
	}
	return nil
}

func (r *Roller) removeKey(ctx context.Context, current *Version, keyID string) error {
	g, err := r.graph(ctx, current)
	if err != nil {
		return err
	}
	proof, err := r.proof(ctx, current)
	if err != nil {
		return err
	}
	err = g.RemoveKey(ctx, r.cfg.AppObjectID, keyID, proof)
	var ge *GraphError
	if errors.As(err, &ge) && ge.StatusCode == http.StatusNotFound && strings.Contains(strings.ToLower(ge.Message), "key") {
		return nil // already removed (by a person or another roller)
	}
	return err
}

// renew creates the next version when the newest expires within
// RenewBefore and the vault's policy does not renew it.
func (r *Roller) renew(ctx context.Context, rep *Report, newest *Version) error {
	if r.cfg.RenewBefore <= 0 || newest.Certificate.NotAfter.Sub(r.cfg.Now()) > r.cfg.RenewBefore {
		return nil
	}
	auto, err := r.store.autoRenews(ctx)
	if err != nil {
		return err
	}
	if auto {
		rep.add(r, Step{Action: ActionNone, Version: newest.Version, Thumbprint: newest.Thumbprint(), Why: "expires soon; the vault's AutoRenew lifetime action will create the next version"})
		return nil
	}
	step := Step{Action: ActionCreate, Version: newest.Version, Thumbprint: newest.Thumbprint(), Why: "expires within " + r.cfg.RenewBefore.String() + " and the policy does not renew it: creating the next version (registered on the next roll)"}
	if !r.cfg.DryRun {
		if err := r.store.createVersion(ctx); err != nil {
			return err
		}
		step.Done = true
		rep.Changed = true
	}
	rep.add(r, step)
	return nil
}

func short(v string) string {
	if len(v) > 8 {
		return v[:8]
	}
	return v
}

// keyLookup is the app's registered keys, read at most once per roll.
type keyLookup struct {
	done bool
	keys []KeyCredential
	err  error
}

// lookupKeyID finds the Graph keyId of version v among the app's keys
// (Graph read permission needed). It returns "" and why not when it cannot
// tell, or "" and "" when v is not registered.
func (r *Roller) lookupKeyID(ctx context.Context, current, v *Version, l *keyLookup) (string, string) {
	if !l.done {
		l.done = true
		g, err := r.graph(ctx, current)
		if err == nil {
			l.keys, l.err = g.KeyCredentials(ctx, r.cfg.AppObjectID)
		} else {
			l.err = err
		}
	}
	if l.err != nil {
		var ge *GraphError
		if errors.As(l.err, &ge) && ge.StatusCode == http.StatusForbidden {
			return "", "superseded, but kvassert did not register it and cannot read the app's keys (Application.Read.All or ownership): if it is registered on the app, remove it by hand after the grace period"
		}
		return "", "superseded, but kvassert did not register it and reading the app's keys failed: " + oneLine(l.err.Error(), 200)
	}
	for _, k := range l.keys {
		if sameThumbprint(k.CustomKeyIdentifier, v) {
			return k.KeyID, ""
		}
	}
	return "", ""
}

// sameThumbprint compares Graph's customKeyIdentifier (the SHA-1 thumbprint,
// as hex or as base64 of its bytes) with version v's.
func sameThumbprint(id string, v *Version) bool {
	hexThumb := v.Thumbprint()
	if strings.EqualFold(id, hexThumb) {
		return true
	}
	b, err := base64.StdEncoding.DecodeString(id)
	if err != nil {
		return false
	}
	sum := sha1.Sum(v.Certificate.Raw)
	return bytes.Equal(b, sum[:]) || strings.EqualFold(string(b), hexThumb)
}
