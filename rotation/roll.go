package rotation

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"github.com/kvassert/kvassert/internal/graphapi"
	"github.com/kvassert/kvassert/internal/textutil"
)

// Action is what a roll does with a version: in a Step, what a pass did
// (or, in a dry run, would do); in a VersionStatus, what the next pass does.
type Action string

// Actions.
const (
	ActionSkipped   Action = "skipped"   // nothing to do for this version (Status: never registered)
	ActionRegister  Action = "register"  // addKey of the version
	ActionWait      Action = "wait"      // wait for the version to be valid, or for Entra to accept it
	ActionAccepted  Action = "accepted"  // Entra accepts the version (the active one, or superseded within the grace period)
	ActionRemove    Action = "remove"    // removeKey of a superseded version
	ActionKeep      Action = "keep"      // a superseded key kept (grace, or not kvassert's)
	ActionRetired   Action = "retired"   // Status: superseded and its key is no longer on the app
	ActionCreate    Action = "create"    // a new version created in the vault
	ActionAttention Action = "attention" // needs a person: see Why
)

// Step is one thing a roll did (or would do), and why.
type Step struct {
	Action  Action
	Version string
	// Thumbprint is the version's SHA-1 thumbprint (hex).
	Thumbprint string
	// Why, in one sentence.
	Why string
	// KeyID is the Graph keyId added or removed, when known.
	KeyID string `json:",omitempty"`
	// Done is false in a dry run and for steps that only report.
	Done bool
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
	level := r.stepLevel
	if s.Action == ActionAttention {
		level = slog.LevelWarn // needs a person
	}
	r.cfg.Logger.Log(context.Background(), level, "kvassert rotation: "+string(s.Action), "certificate", r.cert, "version", s.Version, "thumbprint", s.Thumbprint, "why", s.Why, "done", s.Done)
}

// ErrNoAcceptedVersion is returned when no valid version of the
// certificate is accepted by Entra: no proof can be signed, so a person
// must register a certificate (kvassert cert export --format keycredential).
var ErrNoAcceptedVersion = errors.New("rotation: no valid version of the certificate is accepted by Entra, so no proof of possession can be signed; register the newest version on the app by hand (kvassert cert export --format keycredential) and run again")

// ErrNotAccepted is returned when a registered version was still refused by
// Entra when AcceptTimeout ran out. The previous version stays active; the
// roll is safe to re-run.
var ErrNotAccepted = errors.New("rotation: Entra did not accept the newly registered version in time; the previous version stays active; run again later")

// ErrActiveRefused is returned when Entra refused the active version right
// after a key was removed: the pass stops at once and removes nothing more.
var ErrActiveRefused = errors.New("rotation: after removing a superseded key, Entra refused the active version; the pass stopped; check the app's keys (kvassert cert status) and register the active version by hand if needed")

// Roll makes one pass: register the newest valid version that may be
// registered (generated in the vault, non-exportable, RSA) if Entra does not
// accept it yet (proof signed by an accepted version), wait until Entra
// accepts it, remove the keys of versions older than the active one past the
// grace period, and, with RenewBefore, create the next version.
//
// Keys are identified by certificate thumbprint, not by vault version. A
// pass never removes a key whose thumbprint is the active version's, the
// newest version's, a not-yet-valid version's, or any version's that is not
// older than the active one; after each removal it probes the active version
// again and stops if Entra refuses it. The pass has its own deadline
// (PassTimeout). The report says what was done and why, also on error: a
// key added is reported even when recording it in the vault failed.
func (r *Roller) Roll(ctx context.Context) (*Report, error) {
	rep := &Report{}
	pctx, cancel := context.WithTimeout(ctx, r.cfg.PassTimeout)
	defer cancel()
	err := r.roll(pctx, rep)
	if err != nil && ctx.Err() == nil && errors.Is(pctx.Err(), context.DeadlineExceeded) {
		rep.add(r, Step{Action: ActionAttention, Why: "the pass reached its deadline (" + r.cfg.PassTimeout.String() + ") and stopped; the accepted version stays active; run again"})
		err = fmt.Errorf("rotation: the pass reached its deadline of %s: %w", r.cfg.PassTimeout, err)
	}
	return rep, err
}

// pass is the state of one roll.
type pass struct {
	list   versionList
	now    time.Time
	acc    map[string]acceptance // by thumbprint
	lookup keyLookup
}

// probeT probes v once per thumbprint per pass.
func (r *Roller) probeT(ctx context.Context, p *pass, v *certVersion) (acceptance, error) {
	t := v.Thumbprint()
	if a, ok := p.acc[t]; ok {
		return a, nil
	}
	a, err := r.probe(ctx, v)
	if err != nil {
		return accNotProbed, err
	}
	p.acc[t] = a
	return a, nil
}

func (r *Roller) roll(ctx context.Context, rep *Report) error {
	list, err := r.store.versions(ctx)
	if err != nil {
		return err
	}
	p := &pass{list: list, now: r.cfg.now(), acc: map[string]acceptance{}}
	if list.incomplete != "" {
		rep.add(r, Step{Action: ActionAttention, Why: list.incomplete + "; no key is removed this pass"})
	}
	target := r.target(rep, p)
	if target == nil {
		return r.keepAccepted(ctx, rep, p)
	}
	acc, err := r.probeT(ctx, p, target)
	if err != nil {
		return err
	}
	if acc != accAccepted {
		if err := r.register(ctx, rep, p, target); err != nil {
			return err
		}
	} else {
		rep.add(r, Step{Action: ActionAccepted, Version: target.Version, Thumbprint: target.Thumbprint(), Why: "Entra accepts the newest valid version", Done: true})
	}
	if !r.cfg.DryRun {
		if target.tagTime(tagAccepted).IsZero() {
			if err := r.store.setTags(ctx, target, map[string]string{tagAccepted: timeTag(target, r.cfg.now())}); err != nil {
				return err
			}
		}
		r.notifyAccepted(target.Version)
		rep.Active = target.Version
	}
	if err := r.retire(ctx, rep, p, target); err != nil {
		return err
	}
	return r.renew(ctx, rep, target, list)
}

// target is the newest valid version that may be registered (nil when
// none). Newer versions that may not are reported; not-yet-valid ones are
// waited for.
func (r *Roller) target(rep *Report, p *pass) *certVersion {
	for _, v := range p.list.all {
		if v.Unreadable != "" {
			rep.add(r, Step{Action: ActionAttention, Version: v.Version, Thumbprint: v.Thumbprint(), Why: "skipped: " + v.Unreadable})
		}
	}
	for _, v := range p.list.all {
		if v.Certificate == nil {
			continue // unreadable (reported above) or disabled
		}
		if v.Enabled && p.now.Before(v.Certificate.NotBefore) {
			if why := v.skipReason(p.now, r.cfg.RegisterImportedKeys); why != "" {
				rep.add(r, Step{Action: ActionAttention, Version: v.Version, Thumbprint: v.Thumbprint(), Why: "not valid until " + v.Certificate.NotBefore.UTC().Format(time.RFC3339) + ", and will not be registered: " + why})
			} else {
				rep.add(r, Step{Action: ActionWait, Version: v.Version, Thumbprint: v.Thumbprint(), Why: "not valid until " + v.Certificate.NotBefore.UTC().Format(time.RFC3339) + ": waited for; registered once valid"})
			}
			continue
		}
		why := v.skipReason(p.now, r.cfg.RegisterImportedKeys)
		if why == "" {
			return v
		}
		if v.Enabled && !p.now.After(v.Certificate.NotAfter) {
			rep.add(r, Step{Action: ActionAttention, Version: v.Version, Thumbprint: v.Thumbprint(), Why: "skipped: " + why})
		}
	}
	return nil
}

// keepAccepted: nothing may be registered, so the pass keeps whatever
// Entra accepts (and, with RenewBefore, renews it).
func (r *Roller) keepAccepted(ctx context.Context, rep *Report, p *pass) error {
	for _, v := range p.list.all {
		if !v.ValidAt(p.now) || !v.RSA() {
			continue
		}
		acc, err := r.probeT(ctx, p, v)
		if err != nil {
			return err
		}
		if acc == accAccepted {
			rep.add(r, Step{Action: ActionAccepted, Version: v.Version, Thumbprint: v.Thumbprint(), Why: "Entra accepts this version; no newer version may be registered", Done: true})
			rep.Active = v.Version
			if p.list.opPending {
				return nil // the version being made is registered once it is ready
			}
			return r.renewStuck(ctx, rep, v)
		}
	}
	return fmt.Errorf("rotation: certificate %q has no enabled RSA version valid now that kvassert may register or that Entra accepts; create one and register it by hand: %w", r.cert, ErrNoAcceptedVersion)
}

// register adds target's key to the app with a proof from an accepted
// version, then waits for Entra to accept it. The keyId tag is a hint: a
// key registered (by this or another roller) less than AcceptTimeout ago,
// or still listed by Graph, is waited for; otherwise, and when the wait on
// a hint ends refused, target is registered again.
func (r *Roller) register(ctx context.Context, rep *Report, p *pass, target *certVersion) error {
	var signer *certVersion
	for _, v := range p.list.all {
		if v == target || !v.ValidAt(p.now) || !v.RSA() || v.Thumbprint() == target.Thumbprint() {
			continue
		}
		acc, err := r.probeT(ctx, p, v)
		if err != nil {
			return err
		}
		if acc == accAccepted {
			signer = v
			break
		}
	}
	if signer == nil {
		rep.add(r, Step{Action: ActionAttention, Version: target.Version, Thumbprint: target.Thumbprint(), Why: "the newest version is not accepted and no other valid version is: no proof can be signed"})
		return ErrNoAcceptedVersion
	}
	pending, why := r.registeredEarlier(ctx, p, signer, target)
	for attempt := 0; ; attempt++ {
		added := false
		if pending {
			rep.add(r, Step{Action: ActionWait, Version: target.Version, Thumbprint: target.Thumbprint(), Why: why + "; waiting for Entra to accept it"})
		} else {
			step := Step{Action: ActionRegister, Version: target.Version, Thumbprint: target.Thumbprint(),
				Why: "the newest valid version is not accepted by Entra; addKey with a proof signed by version " + short(signer.Version)}
			if attempt > 0 {
				step.Why = "still refused after the wait on an earlier registration (" + why + "); registering it again: addKey with a proof signed by version " + short(signer.Version)
			}
			if r.cfg.DryRun {
				rep.add(r, step)
				rep.add(r, Step{Action: ActionWait, Version: target.Version, Thumbprint: target.Thumbprint(), Why: "then wait for Entra to accept it"})
				return nil
			}
			dup, err := r.addKey(ctx, rep, step, target, signer)
			if err != nil {
				return err
			}
			added = !dup
		}
		if r.cfg.DryRun {
			return nil
		}
		ok, err := r.waitAccepted(ctx, rep, target)
		if err != nil || ok {
			return err
		}
		if added || attempt > 0 || !pending {
			rep.add(r, Step{Action: ActionAttention, Version: target.Version, Thumbprint: target.Thumbprint(), Why: "registered but not accepted within " + r.cfg.AcceptTimeout.String() + "; the previous version stays active"})
			return ErrNotAccepted
		}
		pending = false // the hint was wrong: register it again
	}
}

// registeredEarlier tells whether target's key was registered already and
// may still be propagating: Graph lists its thumbprint (when the app may
// read its keys), or else a keyId tag bound to its thumbprint was written
// less than AcceptTimeout ago.
func (r *Roller) registeredEarlier(ctx context.Context, p *pass, current, target *certVersion) (bool, string) {
	keys, readable := r.appKeys(ctx, p, current)
	if readable {
		for _, k := range keys {
			if sameThumbprint(k.CustomKeyIdentifier, target) {
				return true, "registered (Graph lists keyId " + k.KeyID + " with its thumbprint)"
			}
		}
		return false, "Graph does not list its thumbprint"
	}
	id, at := target.recordedKeyID(), target.tagTime(tagKeyID)
	if id != "" && !at.IsZero() && p.now.Before(at.Add(r.cfg.AcceptTimeout)) {
		return true, "registered at " + at.UTC().Format(time.RFC3339) + " (Graph keyId " + id + ")"
	}
	if id != "" {
		return false, "registered at " + at.UTC().Format(time.RFC3339) + " (Graph keyId " + id + ") but not accepted since"
	}
	return false, ""
}

// errDuplicateKey: Graph already holds a key with this thumbprint.
func isDuplicate(err error) bool {
	var ge *graphapi.Error
	return errors.As(err, &ge) && ge.StatusCode == http.StatusBadRequest &&
		(strings.Contains(strings.ToLower(ge.Message), "duplicate") || strings.Contains(strings.ToLower(ge.Message), "same key"))
}

// addKey registers v with a proof signed by signer. It records the step in
// the report before writing the keyId tag, so a failed tag write still
// reports the key added (with its keyId, for removal by hand). dup reports
// that Graph already held the key (another roller, or a person).
func (r *Roller) addKey(ctx context.Context, rep *Report, step Step, v, signer *certVersion) (dup bool, err error) {
	g, err := r.graph(ctx, signer)
	if err != nil {
		return false, err
	}
	proof, err := r.proof(ctx, signer)
	if err != nil {
		return false, err
	}
	kc, err := g.AddKey(ctx, r.app.ObjectID, v.Certificate.Raw, proof)
	if err != nil {
		if isDuplicate(err) {
			rep.add(r, Step{Action: ActionWait, Version: v.Version, Thumbprint: v.Thumbprint(), Why: "Graph already holds a key with this thumbprint (another roller or a person added it); waiting for Entra to accept it"})
			return true, nil
		}
		return false, err
	}
	step.Done, step.KeyID = true, kc.KeyID
	step.Why += " (Graph keyId " + kc.KeyID + ")"
	rep.add(r, step)
	rep.Changed = true
	if err := r.store.setTags(ctx, v, map[string]string{tagKeyID: keyIDTag(kc.KeyID, v, r.cfg.now())}); err != nil {
		rep.add(r, Step{Action: ActionAttention, Version: v.Version, Thumbprint: v.Thumbprint(), KeyID: kc.KeyID,
			Why: "key added (Graph keyId " + kc.KeyID + ") but recording it in the version's tags failed; a later pass finds it by thumbprint when the app may read its keys, else remove it by hand once superseded"})
		return false, err
	}
	return false, nil
}

// proof signs a Graph proof of possession with v's key.
func (r *Roller) proof(ctx context.Context, v *certVersion) (string, error) {
	signer, err := r.signer(ctx, v)
	if err != nil {
		return "", err
	}
	return graphapi.Proof(ctx, v.Certificate, signer, r.app.ObjectID, r.cfg.now())
}

// waitAccepted probes v with back-off until Entra accepts it (true) or
// AcceptTimeout passes (false).
func (r *Roller) waitAccepted(ctx context.Context, rep *Report, v *certVersion) (bool, error) {
	deadline := r.cfg.now().Add(r.cfg.AcceptTimeout)
	delay := time.Second
	for {
		acc, err := r.probe(ctx, v)
		if err != nil {
			return false, err
		}
		if acc == accAccepted {
			rep.add(r, Step{Action: ActionAccepted, Version: v.Version, Thumbprint: v.Thumbprint(), Why: "Entra accepts the newly registered version; it is now active", Done: true})
			return true, nil
		}
		if !r.cfg.now().Add(delay).Before(deadline) {
			return false, nil
		}
		if err := r.cfg.sleep(ctx, delay+rand.N(delay/4+1)); err != nil {
			return false, err
		}
		delay = min(2*delay, 30*time.Second)
	}
}

// retire removes the keys of versions older than active once active has
// been accepted for Grace (expired ones at once), with a proof signed by
// active. Keys are found by thumbprint: in Graph's list when the app may
// read its keys, else by the keyId tag bound to the version's thumbprint.
// It never removes a key whose thumbprint is protected (active's, a newer
// or not-yet-valid version's), and after each removal it probes active and
// stops if Entra refuses it.
func (r *Roller) retire(ctx context.Context, rep *Report, p *pass, active *certVersion) error {
	if p.list.incomplete != "" {
		return nil
	}
	ai, protected, protectedIDs := protection(p, active)
	done := map[string]bool{}
	for _, v := range p.list.all[ai+1:] {
		if v.Certificate == nil || protected[v.Thumbprint()] || done[v.Thumbprint()] {
			continue
		}
		done[v.Thumbprint()] = true
		if err := r.retireCert(ctx, rep, p, active, v, protectedIDs); err != nil {
			return err
		}
	}
	return nil
}

// protection returns active's index in the pass's list and the thumbprints
// and keyIds a roll never removes: the active version, every version listed
// before it (newer, or tied and the vault's current), every not-yet-valid
// one, and the keyIds tagged on them.
func protection(p *pass, active *certVersion) (ai int, protected, protectedIDs map[string]bool) {
	ai = -1
	protected = map[string]bool{active.Thumbprint(): true}
	protectedIDs = map[string]bool{}
	for i, v := range p.list.all {
		if v == active {
			ai = i
		}
		if v.Certificate == nil {
			continue
		}
		if ai < 0 || v == active || p.now.Before(v.Certificate.NotBefore) {
			protected[v.Thumbprint()] = true
		}
	}
	for _, v := range p.list.all {
		if v.Certificate != nil && protected[v.Thumbprint()] {
			for _, id := range []string{v.recordedKeyID(), v.legacyKeyID()} {
				if id != "" {
					protectedIDs[strings.ToLower(id)] = true
				}
			}
		}
	}
	return ai, protected, protectedIDs
}

// retireCert removes the keys of v's certificate (every version holding it)
// once past the grace period.
func (r *Roller) retireCert(ctx context.Context, rep *Report, p *pass, active, v *certVersion, protectedIDs map[string]bool) error {
	var same []*certVersion // every version holding this certificate
	for _, o := range p.list.all {
		if o.Certificate != nil && o.Thumbprint() == v.Thumbprint() {
			same = append(same, o)
		}
	}
	ids, why := r.keyIDsOf(ctx, p, active, same)
	_, readable := r.appKeys(ctx, p, active)
	if !readable && removedEarlier(same) {
		return nil // kvassert removed it before; only Graph's list could say otherwise
	}
	if !readable {
		ids = r.dropProtected(rep, v, ids, protectedIDs)
	}
	if len(ids) == 0 {
		if why != "" && v.ValidAt(p.now) {
			rep.add(r, Step{Action: ActionKeep, Version: v.Version, Thumbprint: v.Thumbprint(), Why: why})
		}
		return nil
	}
	now := r.cfg.now()
	expired := now.After(v.Certificate.NotAfter)
	if acceptedAt := active.tagTime(tagAccepted); !expired && (acceptedAt.IsZero() || now.Before(acceptedAt.Add(r.cfg.Grace))) {
		rep.add(r, Step{Action: ActionKeep, Version: v.Version, Thumbprint: v.Thumbprint(), Why: "superseded; kept for the grace period (" + r.cfg.Grace.String() + " after its successor was accepted)"})
		return nil
	}
	for _, id := range ids {
		if err := r.removeOne(ctx, rep, p, active, v, id, expired); err != nil {
			return err
		}
	}
	if r.cfg.DryRun || rep.Active == "" {
		return nil
	}
	for _, o := range same {
		if err := r.store.setTags(ctx, o, map[string]string{tagRemoved: timeTag(o, r.cfg.now())}); err != nil {
			return err
		}
	}
	return nil
}

// dropProtected leaves out of ids (keyIds from tags) those also tagged on a
// version in use: tags are hints, and such a key is not removed on the
// tag's word.
func (r *Roller) dropProtected(rep *Report, v *certVersion, ids []string, protectedIDs map[string]bool) []string {
	kept := ids[:0:0]
	for _, id := range ids {
		if protectedIDs[strings.ToLower(id)] {
			rep.add(r, Step{Action: ActionAttention, Version: v.Version, Thumbprint: v.Thumbprint(), Why: "its keyId tag names the key of a version in use (" + id + "): not removed; check the tags"})
			continue
		}
		kept = append(kept, id)
	}
	return kept
}

// removeOne removes key id of superseded version v, probing active before
// and after: it stops the pass when Entra refuses active.
func (r *Roller) removeOne(ctx context.Context, rep *Report, p *pass, active, v *certVersion, id string, expired bool) error {
	step := Step{Action: ActionRemove, Version: v.Version, Thumbprint: v.Thumbprint(), KeyID: id, Why: "superseded by version " + short(active.Version) + " and past the grace period (Graph keyId " + id + ")"}
	if expired {
		step.Why = "expired and superseded by version " + short(active.Version) + " (Graph keyId " + id + ")"
	}
	if r.cfg.DryRun || rep.Active == "" {
		rep.add(r, step)
		return nil
	}
	// The active version is probed right before each removal too: a
	// person or another roller may have removed its key meanwhile.
	if acc, err := r.probe(ctx, active); err != nil {
		return err
	} else if acc != accAccepted {
		rep.add(r, Step{Action: ActionAttention, Version: active.Version, Thumbprint: active.Thumbprint(), Why: "Entra no longer accepts the active version: no key is removed; the pass stopped"})
		return ErrActiveRefused
	}
	gone, err := r.removeKey(ctx, active, id)
	if err != nil {
		return err
	}
	step.Done = true
	if gone {
		step.Action, step.Why = ActionSkipped, "its key (Graph keyId "+id+") was already removed (by a person or another roller)"
	} else {
		rep.Changed = true
	}
	rep.add(r, step)
	acc, err := r.probe(ctx, active)
	if err != nil {
		return err
	}
	p.acc[active.Thumbprint()] = acc
	if acc != accAccepted {
		rep.add(r, Step{Action: ActionAttention, Version: active.Version, Thumbprint: active.Thumbprint(), Why: "Entra refused the active version after key " + id + " was removed: the pass stopped"})
		return ErrActiveRefused
	}
	return nil
}

// removedEarlier reports whether kvassert recorded removing the key of
// one of these versions (a tagRemoved bound to its thumbprint).
func removedEarlier(same []*certVersion) bool {
	for _, v := range same {
		if !v.tagTime(tagRemoved).IsZero() {
			return true
		}
	}
	return false
}

// keyIDsOf returns the Graph keyIds of the certificate the versions in same
// hold: every key Graph lists with its thumbprint when the app may read its
// keys, else the keyIds tagged on them (bound to the thumbprint). It
// returns why none is known when it cannot tell.
func (r *Roller) keyIDsOf(ctx context.Context, p *pass, current *certVersion, same []*certVersion) ([]string, string) {
	keys, readable := r.appKeys(ctx, p, current)
	var ids []string
	if readable {
		for _, k := range keys {
			if sameThumbprint(k.CustomKeyIdentifier, same[0]) {
				ids = append(ids, k.KeyID)
			}
		}
		return ids, ""
	}
	seen := map[string]bool{}
	for _, v := range same {
		for _, id := range []string{v.recordedKeyID(), v.legacyKeyID()} {
			if id != "" && !seen[strings.ToLower(id)] {
				seen[strings.ToLower(id)] = true
				ids = append(ids, id)
			}
		}
	}
	if len(ids) > 0 {
		return ids, ""
	}
	var ge *graphapi.Error
	if errors.As(p.lookup.err, &ge) && ge.StatusCode == http.StatusForbidden {
		return nil, "superseded, but kvassert did not register it and cannot read the app's keys (Application.Read.All or ownership): if it is registered on the app, remove it by hand after the grace period"
	}
	return nil, "superseded, but kvassert did not register it and reading the app's keys failed: " + textutil.FirstLine(p.lookup.err.Error(), 200)
}

// removeKey removes keyID with a proof signed by current; gone reports that
// Graph no longer held it (removed by a person or another roller).
func (r *Roller) removeKey(ctx context.Context, current *certVersion, keyID string) (gone bool, err error) {
	g, err := r.graph(ctx, current)
	if err != nil {
		return false, err
	}
	proof, err := r.proof(ctx, current)
	if err != nil {
		return false, err
	}
	err = g.RemoveKey(ctx, r.app.ObjectID, keyID, proof)
	var ge *graphapi.Error
	if errors.As(err, &ge) && ge.StatusCode == http.StatusNotFound && strings.Contains(strings.ToLower(ge.Message), "key") {
		return true, nil
	}
	return false, err
}

// renew creates the next version when the newest version that may be
// registered expires within RenewBefore and the vault's policy will not
// renew it: no AutoRenew, or an AutoRenew that counts from another version
// (the vault's latest, e.g. an unusable one), which may come too late.
func (r *Roller) renew(ctx context.Context, rep *Report, newest *certVersion, list versionList) error {
	if r.cfg.RenewBefore <= 0 || newest.Certificate.NotAfter.Sub(r.cfg.now()) > r.cfg.RenewBefore {
		return nil
	}
	if list.opPending {
		rep.add(r, Step{Action: ActionSkipped, Version: newest.Version, Thumbprint: newest.Thumbprint(), Why: "expires soon; a create or renewal of the certificate is in progress (registered once ready)"})
		return nil
	}
	auto, err := r.store.autoRenews(ctx)
	if err != nil {
		return err
	}
	if auto && newest.Version == list.current {
		rep.add(r, Step{Action: ActionSkipped, Version: newest.Version, Thumbprint: newest.Thumbprint(), Why: "expires soon; the vault's AutoRenew lifetime action will create the next version"})
		return nil
	}
	why := "expires within " + r.cfg.RenewBefore.String() + " and the policy does not renew it: creating the next version (registered on the next roll)"
	if auto {
		why = "expires within " + r.cfg.RenewBefore.String() + " and the vault's AutoRenew counts from its latest version " + short(list.current) + ", not this one: creating the next version (registered on the next roll)"
	}
	step := Step{Action: ActionCreate, Version: newest.Version, Thumbprint: newest.Thumbprint(), Why: why}
	return r.createVersion(ctx, rep, step)
}

// renewStuck: no version may be registered and active, accepted, expires
// within RenewBefore: the next version is created even when the policy
// auto-renews (the vault renews by its latest version, which may be one
// that cannot be used), so that the next pass has one to register. Without
// RenewBefore, a version about to expire is reported.
func (r *Roller) renewStuck(ctx context.Context, rep *Report, active *certVersion) error {
	left := active.Certificate.NotAfter.Sub(r.cfg.now())
	if r.cfg.RenewBefore <= 0 {
		if left < 30*24*time.Hour {
			rep.add(r, Step{Action: ActionAttention, Version: active.Version, Thumbprint: active.Thumbprint(), Why: "the active version expires at " + active.Certificate.NotAfter.UTC().Format(time.RFC3339) + " and no version may be registered: create a version in the vault (or set RenewBefore / --renew-before)"})
		}
		return nil
	}
	if left > r.cfg.RenewBefore {
		return nil
	}
	step := Step{Action: ActionCreate, Version: active.Version, Thumbprint: active.Thumbprint(), Why: "expires within " + r.cfg.RenewBefore.String() + " and no version may be registered: creating the next version (registered on the next roll)"}
	return r.createVersion(ctx, rep, step)
}

// createVersion creates the certificate's next version (unless DryRun) and
// reports step.
func (r *Roller) createVersion(ctx context.Context, rep *Report, step Step) error {
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

// keyLookup is the app's registered keys, read at most once per pass.
type keyLookup struct {
	done bool
	keys []graphapi.KeyCredential
	err  error
}

// appKeys reads the app's keys once per pass (Graph read permission
// needed); readable is false when they cannot be read.
func (r *Roller) appKeys(ctx context.Context, p *pass, current *certVersion) (keys []graphapi.KeyCredential, readable bool) {
	l := &p.lookup
	if !l.done {
		l.done = true
		g, err := r.graph(ctx, current)
		if err == nil {
			l.keys, l.err = g.KeyCredentials(ctx, r.app.ObjectID)
		} else {
			l.err = err
		}
	}
	return l.keys, l.err == nil
}

// sameThumbprint compares Graph's customKeyIdentifier (the SHA-1 thumbprint,
// as hex or as base64 of its bytes) with version v's.
func sameThumbprint(id string, v *certVersion) bool {
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
