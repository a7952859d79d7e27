package kvassert

import (
	"time"

	"github.com/kvassert/kvassert/internal/certcache"
	"github.com/kvassert/kvassert/internal/credclock"
	"github.com/kvassert/kvassert/internal/rootaccess"
)

// Tests elsewhere in the module move a Credential's clock through
// internal/credclock.
func init() {
	credclock.Register(func(cred any, now func() time.Time) {
		c := cred.(*Credential)
		c.now, c.clockMoved = now, true
	})
}

// This module's CLI, proxy, rotation and tests reach a source's certificate
// cache and a credential's counters through internal/rootaccess.
func init() {
	rootaccess.Register(func(src any) *certcache.Cache {
		if s, ok := src.(*KeyVaultCertificateSource); ok {
			return s.cache()
		}
		return nil
	}, func(cred any) rootaccess.Stats { return cred.(*Credential).stats() })
}
