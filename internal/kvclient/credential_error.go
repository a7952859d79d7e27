package kvclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/kvassert/kvassert/internal/flight"
)

// CredentialError is a failure of the vault's credential (the
// azcore.TokenCredential given to this package), worded by kvassert. The
// credential's own error is not kept: azidentity's and MSAL's messages
// quote the token endpoint's answer, which for a malformed 200 holds a Key
// Vault access token. What callers need is in the fields; errors.Is still
// finds context.Canceled and context.DeadlineExceeded, and errors.As a
// panic of the credential (*flight.PanicError, kvassert.PanicError).
type CredentialError struct {
	// Credential names the credential: its CredentialName() when it has
	// one (see CredentialNamer), else its Go type
	// ("*azidentity.ClientSecretCredential").
	Credential string
	// AuthenticationFailed is set when the credential's error was an
	// *azidentity.AuthenticationFailedError: it reached its token
	// endpoint, which refused or answered unusably.
	AuthenticationFailed bool
	// StatusCode of the token endpoint's answer, when known (else 0).
	StatusCode int
	// Code is the AADSTS code the failure names (7000215 for AADSTS7000215),
	// else 0.
	Code int
	// Hint is kvassert's advice for Code, if it has one.
	Hint string

	kept error // a context error or a *flight.PanicError, else nil
}

// CredentialNamer is implemented by a vault credential that names itself
// in a CredentialError ("DefaultAzureCredential"); others are named by
// their Go type.
type CredentialNamer interface {
	CredentialName() string
}

// aadstsCodeRE is the only thing read from the credential's error text.
var aadstsCodeRE = regexp.MustCompile(`AADSTS([0-9]{1,9})`)

// Error describes the failure without the credential's text.
func (e *CredentialError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "the vault's credential (%s) could not get a token", e.Credential)
	var detail []string
	if e.StatusCode != 0 {
		detail = append(detail, "HTTP "+strconv.Itoa(e.StatusCode))
	}
	if e.Code != 0 {
		detail = append(detail, "AADSTS"+strconv.Itoa(e.Code))
	}
	if len(detail) > 0 {
		b.WriteString(" (" + strings.Join(detail, ", ") + ")")
	}
	switch {
	case e.kept != nil:
		b.WriteString(": " + e.kept.Error())
	case e.AuthenticationFailed && e.StatusCode == 0 && e.Code == 0:
		b.WriteString(": its token endpoint's answer was refused or unusable")
	case !e.AuthenticationFailed:
		b.WriteString(": it did not reach a token endpoint or found no identity to use")
	}
	if e.Hint != "" {
		b.WriteString("; " + e.Hint)
	}
	return b.String()
}

// Unwrap returns the context error or the panic that ended the
// credential's GetToken, else nil.
func (e *CredentialError) Unwrap() error { return e.kept }

// ErrorType is "AADSTS<code>", else a low-cardinality kind (see internal/obs).
func (e *CredentialError) ErrorType() string {
	switch {
	case errors.Is(e.kept, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(e.kept, context.Canceled):
		return "canceled"
	case e.kept != nil:
		return "panic"
	case e.Code != 0:
		return "AADSTS" + strconv.Itoa(e.Code)
	}
	return "credential"
}

// credentialHint is kvassert's advice for an AADSTS code.
func credentialHint(code int) string {
	switch code {
	case 7000215, 7000222:
		return "the client secret is wrong or expired: create a new one for the client ID"
	case 700016:
		return "the client ID is not an app registered in the tenant"
	case 90002:
		return "the tenant does not exist"
	case 700027:
		return "the certificate is not registered on the app"
	case 7000112, 7000113:
		return "the application is disabled"
	}
	return ""
}

// newCredentialError rewords err, a failure of cred's GetToken.
func newCredentialError(cred azcore.TokenCredential, err error) *CredentialError {
	ce := &CredentialError{Credential: fmt.Sprintf("%T", cred)}
	if n, ok := cred.(CredentialNamer); ok {
		if name := n.CredentialName(); len(name) > 0 && len(name) <= 64 {
			ce.Credential = name
		}
	}
	var pe *flight.PanicError
	switch {
	case errors.As(err, &pe):
		ce.kept = pe
	case errors.Is(err, context.DeadlineExceeded):
		ce.kept = context.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		ce.kept = context.Canceled
	}
	var afe *azidentity.AuthenticationFailedError
	if errors.As(err, &afe) {
		ce.AuthenticationFailed = true
		if r := afe.RawResponse; r != nil {
			ce.StatusCode = r.StatusCode
			if body, _ := runtime.Payload(r); len(body) > 0 {
				var doc struct {
					ErrorCodes []int `json:"error_codes"`
				}
				if json.Unmarshal(body, &doc) == nil && len(doc.ErrorCodes) > 0 && doc.ErrorCodes[0] > 0 && doc.ErrorCodes[0] < 1e9 {
					ce.Code = doc.ErrorCodes[0]
				}
			}
		}
	}
	if ce.Code == 0 && ce.kept == nil {
		if m := aadstsCodeRE.FindStringSubmatch(err.Error()); m != nil {
			ce.Code, _ = strconv.Atoi(m[1])
		}
	}
	ce.Hint = credentialHint(ce.Code)
	return ce
}
