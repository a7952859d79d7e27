package kvassert

import (
	"encoding/json"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"time"

	msalerrors "github.com/AzureAD/microsoft-authentication-library-for-go/apps/errors"

	"github.com/kvassert/kvassert/internal/entraid"
	"github.com/kvassert/kvassert/internal/flight"
	"github.com/kvassert/kvassert/internal/inputerr"
)

// AuthError is a token request that Entra ID refused. Its message names the
// tenant, the HTTP status, the AADSTS code with kvassert's own wording of
// it, and a hint. It holds no text of Entra's answer: the answer's
// error_description (names, IDs, and whatever the endpoint put there) is
// not kept, only the numbers and identifiers parsed from it.
type AuthError struct {
	// Tenant the token was requested for.
	Tenant string
	// Code is the AADSTS number (e.g. 700016), 0 when Entra gave none.
	Code int
	// ErrorCode is the OAuth error ("invalid_client", "unauthorized_client",
	// ...) when it is one that OAuth 2.0 or Entra defines; empty otherwise.
	ErrorCode string
	// Description is kvassert's one-line wording of the refusal, e.g.
	// "AADSTS700016: the application was not found in the tenant". It is
	// never Entra's error_description.
	Description string
	// StatusCode is the HTTP status of the token response.
	StatusCode int
	// Hint says in one line what usually fixes it.
	Hint string
	// TraceID and CorrelationID are Entra's IDs of the request, to quote
	// in a support case; set only when Entra gave them as GUIDs.
	TraceID, CorrelationID string
	// RefusedUntil is set when no request was sent: Entra refused the app
	// in this tenant (or this resource of it) before, with a code a retry
	// cannot fix at once (such as AADSTS700016), and the credential, or
	// another replica through the SharedCache, remembers it. The next
	// request for the tenant is sent after RefusedUntil; ForgetTenant
	// clears it at once (after a consent). Zero for Entra's own answer.
	RefusedUntil time.Time
}

// Error returns the tenant, HTTP status, the AADSTS code and its wording,
// and a hint line; never an assertion, a token or Entra's text.
func (e *AuthError) Error() string {
	s := "kvassert: " + e.reason()
	if e.Hint != "" {
		s += "\nhint: " + e.Hint
	}
	return s
}

// reason is the one-line message without the package name and the hint:
// the tenant, the HTTP status and the Description, for a program that
// formats the error and the Hint itself.
func (e *AuthError) reason() string {
	var b strings.Builder
	b.WriteString("token request for tenant ")
	b.WriteString(e.Tenant)
	b.WriteString(" failed")
	if e.StatusCode != 0 {
		b.WriteString(" (HTTP " + strconv.Itoa(e.StatusCode) + ")")
	}
	b.WriteString(": ")
	switch {
	case e.Description != "":
		desc, _, _ := strings.Cut(e.Description, "\n")
		b.WriteString(desc)
	case e.ErrorCode != "":
		b.WriteString("Entra refused the token request (" + e.ErrorCode + ")")
	default:
		b.WriteString("Entra refused the token request")
	}
	if !e.RefusedUntil.IsZero() {
		b.WriteString(" (remembered refusal: no request sent; the next one goes to Entra after " + e.RefusedUntil.UTC().Format(time.RFC3339) + ", or at once after ForgetTenant)")
	}
	return b.String()
}

// ErrorType is the error's OpenTelemetry error.type: "AADSTS<code>"
// ("AADSTS700016"), or "http_<status>" when Entra gave no AADSTS code. It
// comes from the typed fields Code and StatusCode, never from the text
// (which quotes the tenant the caller asked for).
func (e *AuthError) ErrorType() string {
	switch {
	case e.Code > 0:
		return "AADSTS" + strconv.Itoa(e.Code)
	case e.StatusCode != 0:
		return "http_" + strconv.Itoa(e.StatusCode)
	}
	return ""
}

// InputError is input that kvassert, keyvault or assertion refused before
// any network call: a malformed vault URL or key ID, an invalid name,
// thumbprint or algorithm, unreadable certificate data. Read it with
// errors.As and format it yourself: Input names what was refused and Reason
// says why (without the package name, quoting the offending value only in a
// safe, truncated form); Error returns "package: reason".
//
//	var ie *kvassert.InputError
//	if errors.As(err, &ie) {
//		fmt.Printf("--vault: %s\n", ie.Reason)
//	}
type InputError = inputerr.Error

// PanicError is the error callers get when the work they waited for
// panicked: a Source, a SharedCache, a Source's feedback hook, the vault's
// credential, or a dependency such as MSAL. The credential and the
// certificate cache recover such panics in the goroutines they start, so
// the process lives and the next call runs the work again. Its message
// names what panicked but not the panic value, whose text may hold anything;
// Value and Stack are there for debugging (the credential logs them at
// debug level).
type PanicError = flight.PanicError

// inputErr is the InputError of this package.
func inputErr(input, format string, args ...any) error {
	return inputerr.New("kvassert", input, format, args...)
}

// hints for the AADSTS codes seen with certificate and federated credentials.
var hints = map[int]string{
	700016:  "the app is not registered or not consented in this tenant (never consented, or the customer removed it): an administrator of the tenant must grant admin consent ({consent})",
	700027:  "the certificate is not registered on the app, or the assertion's key is not the certificate's: upload this certificate to the app registration (kvassert cert export)",
	7000274: "the assertion's signature is invalid: it was not made with the registered certificate's key",
	700024:  "the assertion is outside its valid time range: check this machine's clock",
	7000214: "the certificate has been revoked: create a new certificate version and register it on the app",
	7000277: "the certificate has been revoked: create a new certificate version and register it on the app",
	1000502: "the certificate is outside its validity period: renew it and register the new version on the app",
	90002:   "the tenant does not exist (or was deleted): check the tenant ID or domain",
	900023:  "the tenant ID or domain is not valid: check it (a tenant ID is a GUID, a domain such as contoso.onmicrosoft.com)",
	53003:   "a Conditional Access policy for workload identities in this tenant blocks the app (by location or risk): an administrator of the tenant must exclude the app or allow where it runs",
	7000229: "the app has no service principal in its home tenant: create it there (az ad sp create --id {client}), then an administrator of this tenant grants admin consent ({consent})",
	500011:  "the resource of the scope has no service principal in this tenant (the tenant lacks that API, or its consent does not cover it): check the scope, or an administrator of the tenant grants admin consent for it ({consent})",
	700236:  "the federated credential belongs to another app or tenant: use the app registered in the managed identity's tenant",
	70021:   "no federated credential on the app matches the managed identity's token: check issuer, subject and audience",
	7000215: "the client secret is wrong or expired",
	700211:  "no federated credential on the app matches the token's issuer",
	700212:  "no federated credential on the app matches the token's audience",
	700213:  "no federated credential on the app matches the token's subject",
	7000112: "the app is disabled in this tenant: an administrator of the tenant must enable it again (Enterprise applications, Properties, Enabled for users to sign in) or remove it and grant admin consent again ({consent})",
	50034:   "the tenant or account does not exist",
	1002012: "app-only tokens need a scope that ends in /.default",
	700021:  "the assertion's iss/sub do not match the client ID",
}

// rotationCodes are the answers a rotated certificate explains: they are
// reported to the source (feedback.refused), and the request is retried (at most twice)
// when the source then signs with another version (Microsoft.Identity.Web
// reloads certificates on the same set).
var rotationCodes = map[int]bool{700027: true, 7000274: true, 7000214: true, 7000277: true, 1000502: true}

// descriptions word the AADSTS codes kvassert recognises (an AuthError's
// Description); other codes get a generic wording.
var descriptions = map[int]string{
	700016:  "the application was not found in the tenant",
	700027:  "the client assertion's key is not registered on the application, or the signature is invalid",
	7000274: "the client assertion's signature is invalid",
	700024:  "the client assertion is not within its valid time range",
	7000214: "the certificate has been revoked",
	7000277: "the certificate has been revoked",
	1000502: "the certificate is outside its validity period",
	90002:   "the tenant was not found",
	700236:  "the federated credential is not valid for this application or tenant",
	70021:   "no federated identity credential of the application matches the assertion",
	7000215: "the client secret is invalid",
	700211:  "no federated identity credential of the application matches the token's issuer",
	700212:  "no federated identity credential of the application matches the token's audience",
	700213:  "no federated identity credential of the application matches the token's subject",
	7000112: "the application is disabled",
	50034:   "the account or tenant does not exist",
	1002012: "the scope is not valid for an app-only token",
	700021:  "the client assertion's issuer or subject is not the client ID",
	900023:  "the tenant identifier is not valid",
	53003:   "access was blocked by a Conditional Access policy",
	7000229: "the application has no service principal in the tenant",
	500011:  "the resource was not found in the tenant",
	9001023: "the grant type is not supported on the common or consumers endpoint",
	50059:   "the request names no tenant",
	50049:   "the authority is unknown or invalid",
}

// oauthErrors are the OAuth "error" values kept in an AuthError (RFC 6749
// section 5.2, and the ones Entra adds); any other text is dropped.
var oauthErrors = map[string]bool{
	"invalid_request": true, "invalid_client": true, "invalid_grant": true, "unauthorized_client": true,
	"unsupported_grant_type": true, "invalid_scope": true, "access_denied": true, "server_error": true,
	"temporarily_unavailable": true, "interaction_required": true, "invalid_resource": true,
	"consent_required": true, "login_required": true, "invalid_instance": true, "unsupported_response_type": true,
}

// newAuthError interprets an MSAL error; ok is false when it is not an
// answer from the token endpoint (a transport error, a cancelled context,
// a source failure). The AuthError keeps numbers and identifiers parsed
// from the answer, never its text, and not MSAL's error (whose message
// holds the whole body).
func newAuthError(tenant, clientID string, err error) (*AuthError, bool) {
	var call msalerrors.CallErr
	if !errors.As(err, &call) {
		return nil, false
	}
	ae := &AuthError{Tenant: tenant}
	if call.Resp != nil {
		ae.StatusCode = call.Resp.StatusCode
	}
	// MSAL puts the response body after the first line of its message.
	var body map[string]json.RawMessage
	if call.Err != nil {
		if _, rest, ok := strings.Cut(call.Err.Error(), "\n"); ok {
			if json.Unmarshal([]byte(rest), &body) != nil {
				body = nil
			}
		}
	}
	var oauthErr, desc, traceID, corrID string
	var codes []int
	field := func(name string, v any) {
		if raw, ok := body[name]; ok {
			_ = json.Unmarshal(raw, v) // a field of another type is ignored
		}
	}
	field("error", &oauthErr)
	field("error_codes", &codes)
	field("error_description", &desc)
	field("trace_id", &traceID)
	field("correlation_id", &corrID)
	if oauthErrors[oauthErr] {
		ae.ErrorCode = oauthErr
	}
	if len(codes) > 0 && codes[0] > 0 {
		ae.Code = codes[0]
	} else if code, ok := aadstsCode(strings.TrimSpace(desc)); ok {
		ae.Code = code
	}
	if entraid.ValidClientID(traceID) {
		ae.TraceID = strings.ToLower(traceID)
	}
	if entraid.ValidClientID(corrID) {
		ae.CorrelationID = strings.ToLower(corrID)
	}
	switch _, known := descriptions[ae.Code]; {
	case known:
		ae.Description = describeCode(ae.Code)
	case ae.Code != 0 && ae.ErrorCode != "":
		ae.Description = "AADSTS" + strconv.Itoa(ae.Code) + ": Entra refused the token request (" + ae.ErrorCode + ")"
	case ae.Code != 0:
		ae.Description = "AADSTS" + strconv.Itoa(ae.Code) + ": Entra refused the token request"
	case ae.ErrorCode != "":
		ae.Description = "Entra refused the token request (" + ae.ErrorCode + ")"
	default:
		ae.Description = "the token endpoint's answer holds no Entra error"
		if call.Resp != nil {
			ae.Description += " (" + describeBody(call.Resp.Header.Get("Content-Type"), -1) + ")"
		}
	}
	ae.Hint = hintText(ae.Code, tenant, clientID, "")
	return ae, true
}

// describeCode is the Description of an AuthError with code and no answer
// (a refusal another replica saw).
func describeCode(code int) string {
	if d, ok := descriptions[code]; ok {
		return "AADSTS" + strconv.Itoa(code) + ": " + d
	}
	return "AADSTS" + strconv.Itoa(code) + ": Entra refused the token request"
}

// defaultAuthority is the public cloud's authority host, for hints worded
// without a credential.
const defaultAuthority = "https://login.microsoftonline.com/"

// hintText is the hint for code, with the tenant, the client ID and the
// admin-consent URL of the credential's cloud (host, with scheme and
// trailing slash; empty for the public cloud) filled in.
func hintText(code int, tenant, clientID, host string) string {
	h, ok := hints[code]
	if !ok {
		return ""
	}
	if strings.Contains(h, "{consent}") {
		h = strings.ReplaceAll(h, "{consent}", adminConsentURL(host, tenant, clientID))
	}
	h = strings.ReplaceAll(h, "{tenant}", tenant)
	return strings.ReplaceAll(h, "{client}", clientID)
}

// adminConsentURL is the admin-consent link for tenant an administrator
// opens: https://{host}/{tenant}/adminconsent?client_id={app} (Microsoft
// Entra, "Grant tenant-wide admin consent to an application"). The
// credential does not know the app's redirect URIs, and the v2 endpoint
// requires one, so this is the link that needs none: Entra consents to
// every permission the app lists and then sends the administrator to the
// app's default redirect URI. A SaaS sends the link of
// tenants.Handler.ConsentURL instead, which lands on its handler.
func adminConsentURL(host, tenant, clientID string) string {
	if host == "" {
		host = defaultAuthority
	}
	if tenant == "" {
		tenant = "organizations"
	}
	return host + url.PathEscape(tenant) + "/adminconsent?client_id=" + url.QueryEscape(clientID)
}

func aadstsCode(desc string) (int, bool) {
	rest, ok := strings.CutPrefix(desc, "AADSTS")
	if !ok {
		return 0, false
	}
	end := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' })
	if end <= 0 {
		return 0, false
	}
	n, err := strconv.Atoi(rest[:end])
	return n, err == nil
}

// errTenantNotAllowed is returned before any network call.
func errTenantNotAllowed(tenant string) error {
	return inputErr("tenant", "this credential is not configured for tenant %q; add it to AdditionallyAllowedTenants (or \"*\" for any tenant)", tenant)
}
