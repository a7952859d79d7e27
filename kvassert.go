// Package kvassert gets app-only Microsoft Entra ID access tokens for a
// multi-tenant application in any tenant where it is consented, authenticated
// by a certificate whose private key never leaves Azure Key Vault or Managed
// HSM.
//
// A Source makes the client assertion that proves the app's identity:
//
//   - NewKeyVaultCertificateSource: a Key Vault certificate, read once and
//     cached; each assertion costs one keys/sign call. Rotation is picked up
//     on a TTL and at once when Entra rejects the old certificate; a renewed
//     version Entra refuses (not registered yet) is set aside while the
//     version it accepts is still valid.
//   - NewKeyVaultKeySource: a key ID plus the certificate given by the
//     caller, or only its thumbprint (KeyVaultKeyOptions.Thumbprint); needs
//     only keys/sign (with a thumbprint, also one keys/get in the
//     constructor, which pins the key version) and makes no other lookups.
//   - NewManagedIdentitySource: a managed identity token used as a federated
//     identity credential (no certificate at all).
//   - NewLocalSource / ParseCertificateData: a local key, for development.
//
// WrapSource wraps a Source (to log or count its assertions) and keeps what
// the credential tells it.
//
// A Source plugs into MSAL Go (NewMSALCredential) or becomes an
// azcore.TokenCredential for every Azure SDK for Go client and the Microsoft
// Graph SDK (NewCredential), with tokens cached per tenant, scope and CAE
// capability (a token obtained for a claims challenge replaces the cached
// one of its tenant and scope; it is not cached apart), concurrent misses
// merged, and refresh ahead of expiry. NewCredential gives its
// ClientOptions (transport, cloud, retries), Telemetry and Logger to a
// built-in Source whose own were left zero, so an emulator or a proxy is
// named once. By default the library logs only what an operator must act
// on (warnings); routine notices are at debug level.
//
// Customer tenants: a tenant Entra refuses (no consent, app disabled or
// removed, ...) is remembered and fails fast with the same *AuthError
// (AuthError.RefusedUntil); a tenant that removes the app has its tokens
// evicted and is reported (CredentialOptions.TenantOffboarded);
// Credential.ForgetTenant forgets a tenant's refusals and tokens (after a
// consent, or when the SaaS offboards a customer). Package tenants
// builds on this: admin-consent links and their redirect handler, and a
// health check of every tenant.
package kvassert

import (
	"context"
	"time"
)

// Source makes client assertions: signed JWTs that authenticate clientID at
// the token endpoint tokenEndpoint (which becomes the assertion's aud).
// Implementations are safe for concurrent use.
type Source interface {
	Assertion(ctx context.Context, clientID, tokenEndpoint string) (string, error)
}

// feedback is implemented by the Sources that learn from Entra's answers
// to their assertions: the Key Vault certificate source uses them to
// remember which certificate version Entra accepts, so that a renewed
// version not yet registered on the app does not stop tokens, and to pick
// up a rotation without a restart. The credentials (NewCredential, and
// AcquireWithFeedback for MSAL users) call them after each token request
// for which the Source made an assertion and named its signer with
// noteSigner. A Source that wraps another keeps this through WrapSource.
type feedback interface {
	// accepted reports that Entra issued a token for a request
	// authenticated by an assertion that signer signed. It is called on
	// the token path, so it must be cheap.
	accepted(signer string)
	// refused reports that Entra refused an assertion that signer signed
	// with an AADSTS code that a rotated, unregistered or revoked
	// certificate explains (700027, 7000274, 7000214, 7000277, 1000502).
	// It returns true when the Source now signs with something else, so
	// that one retry may succeed. It may block (re-reading a certificate),
	// within ctx.
	refused(ctx context.Context, signer string, code int) (retry bool)
}

// throttleReporter is implemented by Sources that sign in Key Vault, so
// that a caller whose deadline passes learns that the vault was throttling.
type throttleReporter interface {
	// throttledSince reports whether Key Vault is throttling the Source's
	// signs now, and since when.
	throttledSince() (time.Time, bool)
}

// WrapSource returns a Source whose Assertion is assertion, which wraps
// inner's Assertion (to log, count or time it, as golang.org/x/oauth2
// composes TokenSources), and which forwards to inner everything else a
// Credential tells or asks a Source: Entra's answers (so that the Key Vault
// certificate source keeps its rotation handling), whether the vault is
// throttling, the identity a SharedCache needs, and the settings
// NewCredential gives. assertion must call inner.Assertion with the ctx it
// was given (or one derived from it): the signer of the assertion is noted
// in it.
func WrapSource(inner Source, assertion func(ctx context.Context, clientID, tokenEndpoint string) (string, error)) (Source, error) {
	switch {
	case inner == nil:
		return nil, inputErr("inner", "no Source to wrap (inner is nil)")
	case assertion == nil:
		return nil, inputErr("assertion", "no assertion function (assertion is nil)")
	}
	return &wrapped{inner: inner, assert: assertion}, nil
}

// wrapped is WrapSource's Source.
type wrapped struct {
	inner  Source
	assert func(ctx context.Context, clientID, tokenEndpoint string) (string, error)
}

func (w *wrapped) Assertion(ctx context.Context, clientID, tokenEndpoint string) (string, error) {
	return w.assert(ctx, clientID, tokenEndpoint)
}

func (w *wrapped) accepted(signer string) {
	if fb, ok := w.inner.(feedback); ok {
		fb.accepted(signer)
	}
}

func (w *wrapped) refused(ctx context.Context, signer string, code int) bool {
	fb, ok := w.inner.(feedback)
	return ok && fb.refused(ctx, signer, code)
}

func (w *wrapped) throttledSince() (time.Time, bool) {
	if tr, ok := w.inner.(throttleReporter); ok {
		return tr.throttledSince()
	}
	return time.Time{}, false
}

func (w *wrapped) sourceIdentity() string { return sourceIdentity(w.inner) }

func (w *wrapped) configure(d inherited) error {
	if c, ok := w.inner.(configurable); ok {
		return c.configure(d)
	}
	return nil
}

// identified is implemented by the built-in Sources (and WrapSource's).
type identified interface{ sourceIdentity() string }

// sourceIdentity is the identity of src for a SharedCache: the built-in
// Sources' own, or, for a Source of the caller's, its SourceIdentity
// method (CredentialOptions.SharedCache); "" when it has none.
func sourceIdentity(src Source) string {
	switch s := src.(type) {
	case identified:
		return s.sourceIdentity()
	case interface{ SourceIdentity() string }:
		return s.SourceIdentity()
	}
	return ""
}
