package kvassert

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"
)

// signerKey is the context key of a signerRecord.
type signerKey struct{}

// signerRecord is where a Source notes which signer made the assertion of
// one token request. Each request has its own, so concurrent requests for
// many tenants never mix their signers up.
type signerRecord struct {
	mu     sync.Mutex
	signer string
	noted  bool
}

func (r *signerRecord) get() (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.signer, r.noted
}

// noteSigner records, in the context an assertion is made with, what
// signed it (for the Key Vault certificate source: the certificate
// version), so that the credential can report Entra's answer for that
// signer through feedback. Sources that implement feedback call it from
// Assertion; it does nothing when ctx does not come from a credential.
// MSAL passes the ctx of AcquireTokenByCredential to the assertion
// callback, which is how it reaches the Source.
func noteSigner(ctx context.Context, signer string) {
	if r, ok := ctx.Value(signerKey{}).(*signerRecord); ok {
		r.mu.Lock()
		r.signer, r.noted = signer, true
		r.mu.Unlock()
	}
}

// AcquireWithFeedback runs one token request through MSAL so that src
// learns Entra's answer: use it around confidential.Client's
// AcquireTokenByCredential when the client's credential is
// NewMSALCredential(src). A token that came from Entra (not from MSAL's
// cache) reports Accepted; a refusal with a rotation code reports Refused
// and, when src then signs with something else, acquire runs again (at
// most twice).
//
//	res, err := kvassert.AcquireWithFeedback(ctx, src, func(ctx context.Context) (confidential.AuthResult, error) {
//		return client.AcquireTokenByCredential(ctx, scopes, confidential.WithTenantID(tenant))
//	})
//
// Without it MSAL users still get tokens, but the source does not learn
// which certificate version Entra accepts: a renewed version that is not
// registered on the app stops tokens until it is, as it would without
// kvassert.
func AcquireWithFeedback(ctx context.Context, src Source, acquire func(context.Context) (confidential.AuthResult, error)) (confidential.AuthResult, error) {
	switch {
	case src == nil:
		return confidential.AuthResult{}, inputErr("src", "no Source (src is nil): give the Source that NewMSALCredential was made with")
	case acquire == nil:
		return confidential.AuthResult{}, inputErr("acquire", "no acquire function (acquire is nil): give one that calls AcquireTokenByCredential")
	}
	return acquireWithFeedback(ctx, src, acquire, nil)
}

// acquireWithFeedback is AcquireWithFeedback; retrying, when not nil, is
// told the AADSTS code before the retry.
func acquireWithFeedback(ctx context.Context, src Source, acquire func(context.Context) (confidential.AuthResult, error), retrying func(code int)) (confidential.AuthResult, error) {
	fb, _ := src.(feedback)
	for attempt := 0; ; attempt++ {
		actx := ctx
		rec := &signerRecord{}
		if fb != nil {
			actx = context.WithValue(ctx, signerKey{}, rec)
		}
		res, err := acquire(actx)
		signer, noted := rec.get()
		if err == nil {
			// MSAL answers from its cache (also when its own refresh
			// failed): only a token from Entra proves the signer.
			if noted && res.Metadata.TokenSource == confidential.TokenSourceIdentityProvider {
				fb.accepted(signer)
			}
			return res, nil
		}
		if attempt >= maxFeedbackRetries || !noted {
			return res, err
		}
		ae, ok := newAuthError("", "", err)
		if !ok || !rotationCodes[ae.Code] || !fb.refused(ctx, signer, ae.Code) {
			return res, err
		}
		if retrying != nil {
			retrying(ae.Code)
		}
	}
}

// maxFeedbackRetries bounds the retries after refusals: the newest version
// refused (not registered yet), then the accepted one it fell back to
// refused too (its key removed since by a roller elsewhere), then the
// version the vault's list offers. Each try costs one sign and one token
// request.
const maxFeedbackRetries = 2

// throttled says, for a caller who gave up, whether and for how long the
// Source's vault has been throttling signs.
func throttled(src Source) (string, bool) {
	tr, ok := src.(throttleReporter)
	if !ok {
		return "", false
	}
	since, ok := tr.throttledSince()
	if !ok {
		return "", false
	}
	return fmt.Sprintf("Key Vault has been throttling signs for %s (429: the vault's request limit; the acquisition goes on in the background)", time.Since(since).Round(time.Second)), true
}
