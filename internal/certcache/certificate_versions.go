package certcache

import (
	"context"
	"encoding/base64"
	"fmt"

	"github.com/kvassert/kvassert/internal/kvid"
	"github.com/kvassert/kvassert/internal/textutil"
)

// AcceptedCertificate is the newest version Entra has accepted (see
// NoteAccepted and Adopt), or nil while none is known.
func (s *Cache) AcceptedCertificate() *Certificate {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted
}

// Newest is the latest version as last read from the vault (reading it if
// the cache has not yet). It may differ from the version Certificate
// returns, when Entra refused the newest.
func (s *Cache) Newest(ctx context.Context) (*Certificate, error) {
	s.mu.Lock()
	n := s.newest
	s.mu.Unlock()
	if n != nil {
		return n, nil
	}
	if _, err := s.Certificate(ctx); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.newest, nil
}

// Version returns one version of the certificate and a signer for its key,
// from the cache or read from the vault (certificates/get of that version).
func (s *Cache) Version(ctx context.Context, version string) (*Certificate, error) {
	if !kvid.ValidVersion(version) {
		return nil, inputErr("version", "%q is not a certificate version", textutil.Truncate(version, 40))
	}
	s.mu.Lock()
	c := s.known[version]
	s.mu.Unlock()
	if c != nil {
		return c, nil
	}
	return s.reads.Do(ctx, "version/"+version, s.opts.ReadTimeout, func(ctx context.Context) (*Certificate, error) {
		c, err := s.fetch(ctx, version)
		if err != nil {
			return nil, err
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		s.rememberLocked(c)
		return c, nil
	})
}

// Adopt tells the cache that Entra accepts version (for example after a
// roller registered it on the app and proved it with a token request): the
// cache signs with it from now on and remembers it as the accepted one.
func (s *Cache) Adopt(ctx context.Context, version string) error {
	c, err := s.Version(ctx, version)
	if err != nil {
		return err
	}
	now := s.opts.Now()
	if !c.validAt(now) {
		return fmt.Errorf("keyvault: certificate %q version %s is not valid now (valid %s to %s)", s.name, version,
			c.Certificate.NotBefore.UTC().Format("2006-01-02T15:04Z"), c.Certificate.NotAfter.UTC().Format("2006-01-02T15:04Z"))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.refused, version)
	s.accepted = c
	s.switchLocked(c)
	return nil
}

func decodeB64URL(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }
