package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/internal/textutil"
)

// problem is an RFC 9457 problem details object, the body of every error
// answer (Content-Type application/problem+json). It never holds a token, an
// assertion or the secret.
type problem struct {
	// Type is a URN naming the kind of problem, e.g. "urn:kvassert:problem:validation".
	Type string `json:"type"`
	// Title is a short summary of the kind of problem.
	Title string `json:"title"`
	// Status is the HTTP status code.
	Status int `json:"status"`
	// Detail explains this occurrence.
	Detail string `json:"detail,omitempty"`
	// Errors lists the fields of the request that were refused.
	Errors []fieldError `json:"errors,omitempty"`
	// Code is the AADSTS number when Entra ID refused the token request.
	Code int `json:"aadsts,omitempty"`
	// Hint says what usually fixes the problem.
	Hint string `json:"hint,omitempty"`
	// ConsentURL is the admin-consent link for the tenant and app of the
	// request, when Entra's answer says the app is not consented there
	// (AADSTS700016, 7000229): built by the proxy from the validated
	// request and the cloud's login host, never taken from a server's text.
	ConsentURL string `json:"consentUrl,omitempty"`
}

// fieldError is one refused field of a request: its name as it appears in
// the request (JSON member, query parameter, form field or path segment)
// and why it was refused.
type fieldError struct {
	// Field names the refused field; "body" stands for the whole body.
	Field string `json:"field"`
	// Message says why it was refused and what is expected.
	Message string `json:"message"`
}

// Problem types.
const (
	problemValidation   = "urn:kvassert:problem:validation"
	problemUnauthorized = "urn:kvassert:problem:unauthorized"
	problemForbidden    = "urn:kvassert:problem:forbidden-origin"
	problemHost         = "urn:kvassert:problem:host-not-allowed"
	problemNotFound     = "urn:kvassert:problem:not-found"
	problemMethod       = "urn:kvassert:problem:method-not-allowed"
	problemTooLarge     = "urn:kvassert:problem:body-too-large"
	problemMediaType    = "urn:kvassert:problem:unsupported-media-type"
	problemEntra        = "urn:kvassert:problem:entra-refused"
	problemVault        = "urn:kvassert:problem:key-vault"
	problemUpstream     = "urn:kvassert:problem:upstream"
	problemTimeout      = "urn:kvassert:problem:timeout"
	problemNotConfig    = "urn:kvassert:problem:not-configured"
	problemInternal     = "urn:kvassert:problem:internal"
)

func writeProblem(w http.ResponseWriter, p *problem) {
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	h.Del("Content-Length")
	if p.Status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer realm="kvassert proxy"`)
	}
	w.WriteHeader(p.Status)
	encode(w, p)
}

func validationProblem(errs []fieldError) *problem {
	return &problem{
		Type: problemValidation, Title: "The request is not valid", Status: http.StatusBadRequest,
		Detail: "Fix the fields listed in errors and send the request again.", Errors: errs,
	}
}

// fieldErrors collects field-level errors in the order they are found.
type fieldErrors []fieldError

func (f *fieldErrors) add(field, msg string) { *f = append(*f, fieldError{Field: field, Message: msg}) }

func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	encode(w, v)
}

// encode writes v as JSON without HTML escaping (the answers are JSON, sent
// with nosniff, never HTML).
func encode(w http.ResponseWriter, v any) {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// errPanic is what a recovered panic becomes: a bug in a credential, a
// source or the proxy, never worded from the panic's value.
var errPanic = errors.New("proxy: internal error")

// upstreamProblem describes a failure to get a token or read a
// certificate. Entra ID and Key Vault refusals that retrying cannot fix get
// a 4xx status (so SDK clients of the managed identity routes do not retry
// them); transient failures get 502/503/504.
//
// The problem is worded by the proxy alone, keyed on the error's type and
// codes (kvassert.AuthError, kvassert.InputError, azcore.ResponseError):
// no text of an error, whose message may quote a token response, a vault
// answer or a panic, ever reaches it.
func upstreamProblem(err error) *problem {
	var ae *kvassert.AuthError
	var re *azcore.ResponseError
	var ie *kvassert.InputError
	var pe *kvassert.PanicError
	switch {
	case errors.Is(err, errPanic), errors.As(err, &pe):
		return &problem{Type: problemInternal, Title: "Internal error", Status: http.StatusInternalServerError,
			Detail: "Getting the token failed on an internal error of the proxy or its credential; the proxy keeps serving."}
	case errors.As(err, &ae):
		p := &problem{Type: problemEntra, Title: "Entra ID refused the token request", Status: http.StatusBadRequest,
			Detail: entraDetail(ae), Code: ae.Code, Hint: ae.Hint}
		if ae.StatusCode == http.StatusTooManyRequests || ae.StatusCode >= 500 {
			p.Status, p.Title = http.StatusBadGateway, "Entra ID failed"
		}
		return p
	case errors.As(err, &re):
		p := &problem{Type: problemVault, Title: "Key Vault refused the request", Detail: vaultDetail(re)}
		switch {
		case re.StatusCode == http.StatusUnauthorized || re.StatusCode == http.StatusForbidden:
			p.Status = http.StatusForbidden
			p.Hint = "the proxy's identity (az login / DefaultAzureCredential) needs certificates/get and keys/sign on the vault (RBAC: Key Vault Crypto User and Key Vault Certificate User)"
		case re.StatusCode == http.StatusNotFound:
			p.Status, p.Title = http.StatusNotFound, "Not found in Key Vault"
		case re.StatusCode == http.StatusTooManyRequests:
			p.Status, p.Title = http.StatusServiceUnavailable, "Key Vault is throttling"
		default:
			p.Status, p.Title = http.StatusBadGateway, "Key Vault failed"
		}
		return p
	case errors.As(err, &ie):
		// The library refused a value of the request: its reason is
		// kvassert's own wording about the caller's input.
		return &problem{Type: problemValidation, Title: "The request is not valid", Status: http.StatusBadRequest,
			Detail: textutil.Truncate(ie.Reason, 500)}
	case errors.Is(err, errNoVaultCredential):
		return &problem{Type: problemNotConfig, Title: "No Key Vault credential", Status: http.StatusNotImplemented,
			Detail: "The proxy was started without a credential for Key Vault."}
	case errors.Is(err, errNoForwardCredential):
		return &problem{Type: problemNotConfig, Title: "No forward credential", Status: http.StatusNotImplemented,
			Detail: "The proxy was started without a credential to forward to."}
	case errors.Is(err, context.DeadlineExceeded):
		return &problem{Type: problemTimeout, Title: "Timed out", Status: http.StatusGatewayTimeout,
			Detail: "Getting the token took longer than " + requestTimeout.String() + " (Key Vault or Entra ID did not answer in time)."}
	case errors.Is(err, context.Canceled):
		return &problem{Type: problemTimeout, Title: "Canceled", Status: http.StatusServiceUnavailable,
			Detail: "The request was canceled before the token arrived."}
	}
	return &problem{Type: problemUpstream, Title: "Getting the token failed", Status: http.StatusBadGateway,
		Detail: "Key Vault, Entra ID or the credential failed with an error the proxy does not pass on (it may quote a server's answer); run the same request with 'kvassert token --verbose' to diagnose it."}
}

// entraDetail words an Entra refusal from its codes: the HTTP status, the
// AADSTS number and the OAuth error code when it is one (a word of
// lower-case letters and underscores).
// Entra's description is server text and is not passed on; Hint, in
// kvassert's words, says what to do.
func entraDetail(ae *kvassert.AuthError) string {
	d := "Entra ID refused the token request"
	var codes []string
	if ae.StatusCode != 0 {
		codes = append(codes, "HTTP "+strconv.Itoa(ae.StatusCode))
	}
	if ae.Code != 0 {
		codes = append(codes, "AADSTS"+strconv.Itoa(ae.Code))
	}
	if isCodeWord(ae.ErrorCode, false) {
		codes = append(codes, ae.ErrorCode)
	}
	if len(codes) > 0 {
		d += " (" + strings.Join(codes, ", ") + ")"
	}
	return d + "."
}

// isCodeWord reports whether s looks like a protocol error code (1-64
// letters, digits or underscores; upper-case letters only when upper is
// set), so that a server's free text never passes for one.
func isCodeWord(s string, upper bool) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || upper && 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

// vaultDetail summarises a Key Vault error answer in one line, in the
// proxy's words: the status, the error code when it is one, and the
// operation (the method and the URL the proxy itself built, without query).
// The vault's message is server text and is not passed on.
func vaultDetail(re *azcore.ResponseError) string {
	d := "Key Vault answered " + strconv.Itoa(re.StatusCode)
	if t := http.StatusText(re.StatusCode); t != "" {
		d += " " + t
	}
	if isCodeWord(re.ErrorCode, true) {
		d += " (" + re.ErrorCode + ")"
	}
	if r := re.RawResponse; r != nil && r.Request != nil && r.Request.URL != nil {
		d += " to " + r.Request.Method + " https://" + r.Request.URL.Host + r.Request.URL.Path
	}
	return textutil.Truncate(d, 1000)
}
