package kvassert

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"

	msalerrors "github.com/AzureAD/microsoft-authentication-library-for-go/apps/errors"

	"github.com/kvassert/kvassert/internal/inputerr"
)

// AuthError is a token request that Entra ID refused. Its message names the
// tenant, the AADSTS code, Entra's one-line description and a hint; it never
// holds an assertion or a token.
type AuthError struct {
	// Tenant the token was requested for.
	Tenant string
	// Code is the AADSTS number (e.g. 700016), 0 when Entra gave none.
	Code int
	// ErrorCode is the OAuth error ("invalid_client", "unauthorized_client", ...).
	ErrorCode string
	// Description is the first line of Entra's error_description.
	Description string
	// StatusCode is the HTTP status of the token response.
	StatusCode int
	// Hint says in one line what usually fixes it.
	Hint string
	err  error
}

// Error returns the tenant, HTTP status, Entra's one-line description and a
// hint line; never an assertion or a token.
func (e *AuthError) Error() string {
	s := "kvassert: " + e.reason(false)
	if e.Hint != "" {
		s += "\nhint: " + e.Hint
	}
	return s
}

// Reason is the one-line message without the package name and the hint:
// the tenant, the HTTP status and Entra's description, for a program that
// formats the error and the Hint itself.
func (e *AuthError) Reason() string { return e.reason(true) }

// reason is Reason, cut to its first line when oneLine is set.
func (e *AuthError) reason(oneLine bool) string {
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
		b.WriteString(e.Description)
	case e.ErrorCode != "":
		b.WriteString(e.ErrorCode)
	case oneLine:
		msg, _, _ := strings.Cut(e.err.Error(), "\n")
		b.WriteString(msg)
	default:
		b.WriteString(e.err.Error())
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

// Unwrap returns the underlying MSAL error.
func (e *AuthError) Unwrap() error { return e.err }

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

// ErrNoPrivateKey is wrapped by the error of ParseCertificateData and
// LoadCertificateFiles when the data holds a certificate but no usable
// private key (the key is usually in a separate file).
var ErrNoPrivateKey = errors.New("kvassert: no private key")

// inputErr is the InputError of this package.
func inputErr(input, format string, args ...any) error {
	return inputerr.New("kvassert", input, format, args...)
}

// hints for the AADSTS codes seen with certificate and federated credentials.
var hints = map[int]string{
	700016:  "the app is not registered or not consented in this tenant: an administrator of the tenant must grant admin consent (https://login.microsoftonline.com/{tenant}/adminconsent?client_id={client})",
	700027:  "the certificate is not registered on the app, or the assertion's key is not the certificate's: upload this certificate to the app registration (kvassert cert export)",
	7000274: "the assertion's signature is invalid: it was not made with the registered certificate's key",
	700024:  "the assertion is outside its valid time range: check this machine's clock",
	7000214: "the certificate has been revoked: create a new certificate version and register it on the app",
	7000277: "the certificate has been revoked: create a new certificate version and register it on the app",
	1000502: "the certificate is outside its validity period: renew it and register the new version on the app",
	90002:   "the tenant does not exist: check the tenant ID or domain",
	700236:  "the federated credential belongs to another app or tenant: use the app registered in the managed identity's tenant",
	70021:   "no federated credential on the app matches the managed identity's token: check issuer, subject and audience",
	7000215: "the client secret is wrong or expired",
	700211:  "no federated credential on the app matches the token's issuer",
	700212:  "no federated credential on the app matches the token's audience",
	700213:  "no federated credential on the app matches the token's subject",
	7000112: "the app is disabled in this tenant",
	50034:   "the tenant or account does not exist",
	1002012: "app-only tokens need a scope that ends in /.default",
	700021:  "the assertion's iss/sub do not match the client ID",
}

// rotationCodes are the answers a rotated certificate explains: they are
// reported to the source (Feedback.Refused), and the request is retried once
// when the source then signs with another version (Microsoft.Identity.Web
// reloads certificates on the same set).
var rotationCodes = map[int]bool{700027: true, 7000274: true, 7000214: true, 7000277: true, 1000502: true}

// entraBody is the error body of the token endpoint.
type entraBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
	Codes       []int  `json:"error_codes"`
}

// newAuthError interprets an MSAL error; ok is false when it is not an
// answer from the token endpoint (a transport error, a cancelled context,
// a source failure).
func newAuthError(tenant, clientID string, err error) (*AuthError, bool) {
	var call msalerrors.CallErr
	if !errors.As(err, &call) {
		return nil, false
	}
	ae := &AuthError{Tenant: tenant, err: err}
	if call.Resp != nil {
		ae.StatusCode = call.Resp.StatusCode
	}
	// MSAL puts the response body after the first line of its message.
	msg := call.Err.Error()
	if i := strings.IndexByte(msg, '{'); i >= 0 {
		var body entraBody
		if json.Unmarshal([]byte(msg[i:]), &body) == nil {
			ae.ErrorCode = body.Error
			ae.Description, _, _ = strings.Cut(strings.TrimSpace(body.Description), "\n")
			ae.Description = strings.TrimSpace(ae.Description)
			if len(body.Codes) > 0 {
				ae.Code = body.Codes[0]
			} else if code, ok := aadstsCode(ae.Description); ok {
				ae.Code = code
			}
		}
	}
	if h, ok := hints[ae.Code]; ok {
		h = strings.ReplaceAll(h, "{tenant}", tenant)
		ae.Hint = strings.ReplaceAll(h, "{client}", clientID)
	}
	return ae, true
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
