package kvassert

import (
	"context"
	"unicode/utf8"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
)

// This file connects a Credential to its SharedCache (CredentialOptions):
// the shared cache sits between the local cache and the network, on the
// miss and refresh paths only.

// fromSharedOrNetwork gets the token of key from the shared cache, which
// calls back to acquire it from the network when this replica must (no
// usable shared token, or replacing's token is still the shared one). A
// request with claims, and the refresh of a token obtained for claims, go
// to the network directly: such a token answers one resource's challenge
// and a shared token could be the very token that was refused.
//
// Before a request to Entra, the shared cache is asked whether another
// replica was refused for the tenant (then this one fails fast too); a
// token the shared cache serves needs no such question (it serves none of
// a refused tenant). start is the negative cache's seq when the
// acquisition started. The retry of a tenant's refusal, when its back-off
// ends, goes to the network too (refusedHere).
func (c *Credential) fromSharedOrNetwork(ctx context.Context, key flightKey, replacing *entry, start uint64) (azcore.AccessToken, error) {
	acquire := func(ctx context.Context) (azcore.AccessToken, error) {
		if c.shc != nil {
			if rerr := c.sharedRefusal(ctx, key, start); rerr != nil {
				return azcore.AccessToken{}, rerr
			}
		}
		return c.acquire(ctx, key, []string{key.scope})
	}
	if c.shc == nil || key.claims != "" || replacing != nil && replacing.local || c.refusedHere(key.cacheKey) {
		return acquire(ctx)
	}
	var stale azcore.AccessToken
	if replacing != nil {
		stale = replacing.tok
	}
	return c.shc.Token(ctx, c.sharedKey(key), stale, acquire)
}

// sharedKey names key's token in the shared cache: the app (client ID and
// authority host) is part of the name, so that two apps, or one app in two
// clouds, never share a token.
func (c *Credential) sharedKey(key flightKey) SharedKey {
	return SharedKey{
		ClientID:  c.clientID,
		Authority: c.authority(),
		Tenant:    key.tenant,
		Scope:     key.scope,
		Claims:    key.claims,
		CAE:       key.cae,
		Source:    c.srcID,
	}
}

// maxSourceIdentity bounds a Source's identity.
const maxSourceIdentity = 1024

// sharedSourceIdentity is the identity of src for a SharedCache: a Source
// that cannot name the credential it proves must not share tokens, since a
// shared token would reach a Source that never proved the app's key.
func sharedSourceIdentity(src Source) (string, error) {
	id := sourceIdentity(src)
	switch {
	case id == "":
		return "", inputErr("SharedCache", "the Source (%T) does not name the credential it proves, so its tokens cannot be shared: use a kvassert Source (wrap it with WrapSource), or give your Source a method SourceIdentity() string, or leave SharedCache unset", src)
	case len(id) > maxSourceIdentity || !utf8.ValidString(id):
		return "", inputErr("SharedCache", "the Source's identity (%d bytes) is not valid UTF-8 of at most %d bytes", len(id), maxSourceIdentity)
	}
	return id, nil
}
