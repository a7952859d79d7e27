// Package credclock lets this module's tests run a kvassert Credential on a
// clock of their own (to reach a token's refresh time or expiry without
// waiting for it), without a public option. Package kvassert registers the
// setter; only tests call Set.
package credclock

import "time"

var set func(cred any, now func() time.Time)

// Register installs the setter; package kvassert calls it once, at init.
func Register(f func(cred any, now func() time.Time)) { set = f }

// Set makes cred (a *kvassert.Credential) read the time from now instead of
// time.Now for its refresh and expiry decisions. Call it before cred's
// first GetToken; to move the clock later, make now read an atomic offset.
func Set(cred any, now func() time.Time) { set(cred, now) }
