package certcache

import (
	"context"
	"encoding/hex"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
)

// refusal is Entra's answer to a version it refused with a rotation code.
type refusal struct {
	code   int
	probe  time.Time     // when the version is tried again
	delay  time.Duration // the wait after the next refusal
	warned bool
}

// rotationWindow is how long after a re-read caused by a refusal another
// refusal of the same version reads nothing: a burst of refusals (one per
// tenant in flight) costs one read.
const rotationWindow = 10 * time.Second

// rotationKey is the flight key of re-reads caused by Entra's refusals.
const rotationKey = "rotation"

// NoteAccepted records that Entra issued a token for a request authenticated
// by an assertion signed with version: that version is registered on the
// app. The newest accepted version is what the cache goes back to when a
// newer one is refused. Cheap; the credential calls it for every token it
// gets from the network.
func (s *Cache) NoteAccepted(version string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.known[version]
	if c == nil {
		return
	}
	delete(s.refused, version)
	if s.accepted != nil && (s.accepted.Version == version || c.Certificate.NotBefore.Before(s.accepted.Certificate.NotBefore)) {
		return // already known, or an older version's answer arriving late
	}
	s.accepted = c
	s.opts.Logger.Debug("kvassert: Entra accepts this certificate version", "vault", s.vault.Host, "certificate", s.name, "version", version)
	if s.active != nil && s.active.Version != version && s.active.Certificate.NotBefore.Before(c.Certificate.NotBefore) {
		s.switchLocked(c)
	}
}

// NoteRefused records that Entra refused an assertion signed with version with
// an AADSTS code that a rotated, unregistered or revoked certificate
// explains (700027, 7000274, 7000214, 7000277, 1000502), and picks what to
// sign with next. It reports whether the certificate to sign with is now a
// different version, so that one retry of the token request may succeed.
// Code 0 says that Key Vault itself refused to sign with version (disabled
// or deleted since it was read); it is handled the same way.
//
// A version Entra never accepted is set aside while an accepted version is
// still valid: the cache signs with that one again, at once, and warns once
// naming the refused version's thumbprint and how to register it. Otherwise
// NoteRefused waits (within ctx) for a re-read of the latest version, and, when
// that is the refused one, for a look at the versions list
// (certificates/list) for an older valid, enabled version. Concurrent
// refusals share one re-read, and refusals of the same version within 10 s
// of it read nothing.
func (s *Cache) NoteRefused(ctx context.Context, version string, code int) bool {
	now := s.opts.Now()
	s.mu.Lock()
	if s.active == nil || version == "" {
		s.mu.Unlock()
		return false
	}
	if version != s.active.Version {
		s.mu.Unlock()
		return true // another refusal or a read has moved on already
	}
	if s.accepted != nil && s.accepted.Version == version {
		s.accepted = nil // no longer accepted: removed from the app, or revoked
	}
	s.refuseLocked(version, code, now)
	if alt := s.fallbackLocked(now, version); alt != nil {
		s.warnRefusedLocked(version, alt)
		s.switchLocked(alt)
		s.mu.Unlock()
		return true
	}
	if !s.rotatedAt.IsZero() && now.Sub(s.rotatedAt) < rotationWindow {
		s.mu.Unlock()
		return false
	}
	s.mu.Unlock()
	if _, err := s.reads.Do(ctx, rotationKey, s.opts.ReadTimeout, func(ctx context.Context) (*Certificate, error) {
		return s.rotate(ctx, version)
	}); err != nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.active != nil && s.active.Version != version
}

// refuseLocked remembers a refusal and schedules the version's next try:
// after TTL, then doubling up to 8 TTLs.
func (s *Cache) refuseLocked(version string, code int, now time.Time) {
	r := s.refused[version]
	if r == nil {
		r = &refusal{delay: s.opts.TTL}
		s.refused[version] = r
	}
	r.code = code
	r.probe = now.Add(r.delay)
	r.delay = min(2*r.delay, 8*s.opts.TTL)
}

// fallbackLocked is the accepted version, when it is not the refused one
// and still valid.
func (s *Cache) fallbackLocked(now time.Time, refused string) *Certificate {
	if a := s.accepted; a != nil && a.Version != refused && a.validAt(now) {
		return a
	}
	return nil
}

// probeLocked tries the newest version again once its time has come, while
// an older one is in use because Entra refused the newest: a version
// registered on the app since is picked up without a restart. If Entra
// refuses it again, NoteRefused goes back and doubles the wait.
func (s *Cache) probeLocked(now time.Time) {
	n := s.newest
	if n == nil || s.active == nil || s.active.Version == n.Version {
		return
	}
	r := s.refused[n.Version]
	if r == nil || now.Before(r.probe) || !n.validAt(now) {
		return
	}
	r.probe = now.Add(r.delay)
	s.opts.Logger.Debug("kvassert: trying the newest certificate version again (Entra refused it before)",
		"vault", s.vault.Host, "certificate", s.name, "version", n.Version)
	s.active = n
}

// warnRefusedLocked warns once per version that Entra refused it while an
// older version is used instead, naming the thumbprint and the fix.
func (s *Cache) warnRefusedLocked(version string, using *Certificate) {
	r := s.refused[version]
	if r == nil || r.warned {
		return
	}
	r.warned = true
	args := []any{"vault", s.vault.Host, "certificate", s.name, "version", version, "aadsts", r.code,
		"signing_with_version", using.Version,
		"fix", "kvassert cert export --vault " + s.vault.URL + " --cert " + s.name + " --format keycredential, then add it to the app registration's keyCredentials (or upload the certificate)"}
	if c := s.known[version]; c != nil {
		args = append(args, "thumbprint", thumbprintHex(c), "not_after", c.Certificate.NotAfter.UTC().Format(time.RFC3339))
	}
	if r.code == 0 {
		s.opts.Logger.Warn("kvassert: Key Vault refused to sign with a certificate version (disabled or deleted?); signing with the version Entra accepts meanwhile, and trying the other one again after the TTL", args...)
		return
	}
	s.opts.Logger.Warn("kvassert: Entra refused a certificate version it has never accepted (a renewed certificate not registered on the app?); signing with the version it accepts meanwhile, and trying the new one again after the TTL", args...)
}

// thumbprintHex is the SHA-1 thumbprint as the portal shows it.
func thumbprintHex(c *Certificate) string {
	b, err := decodeB64URL(c.X5T)
	if err != nil {
		return c.X5T
	}
	return strings.ToUpper(hex.EncodeToString(b))
}

// rotate is the re-read after a refusal of version: the latest version,
// and when that is the refused one or was refused moments ago (the
// fallback to the accepted version was refused in turn: its key was
// removed since), an older valid version from the list.
func (s *Cache) rotate(ctx context.Context, refused string) (*Certificate, error) {
	c, err := s.fetch(ctx, s.opts.Version)
	now := s.opts.Now()
	var ue *unusableError
	if err != nil && s.opts.Version == "" && errors.As(err, &ue) {
		// The latest version cannot sign (EC, disabled, pending): the
		// version Entra accepts is among the older ones.
		return s.switchToOlder(ctx, refused, ue.version)
	}
	s.mu.Lock()
	if err != nil {
		s.rotatedAt, s.lastErr = now, err
		s.backoff.Failed(now)
		s.mu.Unlock()
		s.opts.Logger.Warn("kvassert: re-reading the certificate after Entra refused it failed", "vault", s.vault.Host, "certificate", s.name, "error", err)
		return nil, err
	}
	s.backoff.Succeeded()
	s.checked, s.stale, s.lastErr = now, false, nil
	s.rememberLocked(c)
	s.newest = c
	s.maybeWarnLocked(c)
	r := s.refused[c.Version]
	recentlyRefused := r != nil && now.Before(r.probe)
	if s.opts.Version != "" || c.Version != refused && !recentlyRefused {
		delete(s.refused, c.Version) // a version newer than the refusal: try it
		s.switchLocked(c)
		s.rotatedAt = now
		s.mu.Unlock()
		return c, nil
	}
	s.mu.Unlock()
	alt := s.olderVersion(ctx, refused)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rotatedAt = s.opts.Now()
	if alt != nil {
		s.rememberLocked(alt)
		s.warnRefusedLocked(refused, alt)
		s.switchLocked(alt)
	}
	return c, nil
}

// switchToOlder signs with the newest older version that can (see
// olderVersion) after a refusal of refused, when the latest version
// (latest) cannot sign at all. It returns the version now in use.
func (s *Cache) switchToOlder(ctx context.Context, refused, latest string) (*Certificate, error) {
	alt := s.olderVersion(ctx, refused, latest)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rotatedAt, s.checked, s.stale, s.lastErr = s.opts.Now(), s.opts.Now(), false, nil
	if alt == nil {
		return s.active, nil
	}
	s.rememberLocked(alt)
	s.warnRefusedLocked(refused, alt)
	s.switchLocked(alt)
	return alt, nil
}

// maxOlderReads bounds the versions olderVersion reads: usable candidates
// (valid, enabled, RSA) and, in all, versions read.
const (
	maxOlderCandidates = 3
	maxOlderReads      = 10
)

// olderVersion finds the newest version other than those in skip that is
// enabled, valid, able to sign (RSA, not pending) and not refused itself.
// Versions that cannot sign do not count against the three candidates it
// tries (ten reads at most): an EC or pending latest version must not hide
// the registered one below it.
func (s *Cache) olderVersion(ctx context.Context, skip ...string) *Certificate {
	vs, err := s.Versions(ctx)
	if err != nil {
		var re *azcore.ResponseError
		if errors.As(err, &re) && re.StatusCode == http.StatusForbidden {
			s.mu.Lock()
			first := !s.listWarn
			s.listWarn = true
			s.mu.Unlock()
			if first {
				s.opts.Logger.Warn("kvassert: Entra refused the latest certificate version, and the versions list is denied (certificates/list), so an older version Entra still accepts cannot be found; grant certificates/list on the vault, or register the latest version on the app",
					"vault", s.vault.Host, "certificate", s.name, "versions", skip)
			}
			return nil
		}
		s.opts.Logger.Warn("kvassert: listing the certificate's versions failed", "vault", s.vault.Host, "certificate", s.name, "error", err)
		return nil
	}
	now := s.opts.Now()
	candidates, reads := 0, 0
	for _, v := range vs {
		s.mu.Lock()
		_, bad := s.refused[v.Version]
		s.mu.Unlock()
		if bad || slices.Contains(skip, v.Version) || !v.Enabled || (!v.NotBefore.IsZero() && now.Before(v.NotBefore)) || (!v.Expires.IsZero() && now.After(v.Expires)) {
			continue
		}
		if reads++; reads > maxOlderReads {
			return nil
		}
		c, err := s.fetch(ctx, v.Version)
		var ue *unusableError
		if errors.As(err, &ue) {
			continue // cannot sign: not a candidate
		}
		if candidates++; candidates > maxOlderCandidates {
			return nil
		}
		if err != nil {
			s.opts.Logger.Warn("kvassert: reading an older certificate version failed", "vault", s.vault.Host, "certificate", s.name, "version", v.Version, "error", err)
			continue
		}
		if c.validAt(now) {
			return c
		}
	}
	return nil
}
