package entra

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/kvassert/kvassert/kvasserttest/internal/emu"
)

// federatedAssertion validates a client assertion that is not signed by a
// certificate: a token from another identity provider, matched against the
// app's federated identity credentials (FIC). The emulator can verify only
// the tokens its own Authority issued (managed identity tokens, typically
// for api://AzureADTokenExchange); a token of any other issuer that some FIC
// names fails signature verification, as a token Entra cannot verify does.
//
// Federated assertions are not replay-checked: they are bearer tokens that
// workloads reuse until they expire, and Entra accepts that.
func (e *Entra) federatedAssertion(j *jws, a *appView) *oauthError {
	iss := j.str("iss")
	if j.header.Kid != e.auth.KeyID() {
		if !slices.ContainsFunc(a.fics, func(f ficView) bool { return f.issuer == iss }) {
			return ficIssuerMismatch(iss)
		}
		return newErr(http.StatusBadRequest, "invalid_request", 50027,
			"Invalid JWT token. External ID token from issuer '%s' failed signature verification.", iss)
	}
	c, err := e.auth.Verify(j.compact)
	if err != nil {
		if c != nil && (errors.Is(err, emu.ErrTokenExpired) || c.Nbf > e.now().Unix()) {
			return newErr(http.StatusUnauthorized, "invalid_client", 700024,
				"Client assertion is not within its valid time range. Current time: %s, assertion valid from %s, expiry time of assertion %s. %s",
				isoTime(e.now()), isoTime(time.Unix(c.Nbf, 0)), isoTime(time.Unix(c.Exp, 0)), certDocs)
		}
		return newErr(http.StatusBadRequest, "invalid_request", 50027,
			"Invalid JWT token. External ID token from issuer '%s' failed signature verification.", iss)
	}
	if c.IdTyp != "app" {
		return newErr(http.StatusBadRequest, "invalid_request", 700229,
			"Forbidden token type. Only app-only tokens may be used as Federated Identity Credentials for Microsoft Entra issuer.")
	}
	if entraIssuerTenant(c.Iss) != a.home || !strings.EqualFold(c.Tid, a.home) {
		return newErr(http.StatusBadRequest, "invalid_request", 700236,
			"Entra ID tokens issued by issuer '%s' may not be used for federated identity credential flows for applications or managed identities registered in this tenant.",
			c.Iss)
	}
	var issuerOK, subjectOK bool
	for _, f := range a.fics {
		if f.issuer != c.Iss {
			continue
		}
		issuerOK = true
		if f.subject != c.Sub {
			continue
		}
		subjectOK = true
		if slices.Contains(f.audiences, c.Aud) {
			return nil
		}
	}
	switch {
	case !issuerOK:
		return ficIssuerMismatch(c.Iss)
	case !subjectOK:
		return newErr(http.StatusBadRequest, "invalid_request", 700213,
			"No matching federated identity record found for presented assertion subject '%s'. %s", c.Sub, ficDocs)
	default:
		return newErr(http.StatusBadRequest, "invalid_request", 700212,
			"No matching federated identity record found for presented assertion audience '%s'. %s", c.Aud, ficDocs)
	}
}

func ficIssuerMismatch(iss string) *oauthError {
	return newErr(http.StatusBadRequest, "invalid_request", 700211,
		"No matching federated identity record found for presented assertion issuer '%s'. %s", iss, ficDocs)
}

// entraIssuerTenant returns the lower-case tenant of an Entra issuer URL
// (https://{login host}/{tenant}/v2.0 or https://sts.windows.net/{tenant}/),
// or "" for any other issuer.
func entraIssuerTenant(iss string) string {
	u, err := url.Parse(iss)
	if err != nil || u.Scheme != "https" {
		return ""
	}
	host := strings.ToLower(u.Host)
	if host != "sts.windows.net" && !slices.Contains(loginHosts, host) {
		return ""
	}
	seg := strings.Split(strings.Trim(u.Path, "/"), "/")[0]
	if !isGUID(seg) {
		return ""
	}
	return strings.ToLower(seg)
}
