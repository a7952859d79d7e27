package kvclient

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
)

// ServiceError is an error answer of Key Vault (or of another Azure
// service reached with the vault's clients), worded by kvassert: no text of
// the answer's body reaches it, only values that match strict patterns.
//
// Its Unwrap returns an *azcore.ResponseError with the same status and
// error code whose response has no body and only the Retry-After and
// x-ms-request-id headers, so that errors.As(err, &*azcore.ResponseError)
// keeps working for code that reads the status.
type ServiceError struct {
	// Method and Host, Path of the request (no query).
	Method, Host, Path string
	// StatusCode of the answer.
	StatusCode int
	// ErrorCode is the service's error code (for example "Forbidden",
	// "CertificateNotFound"), empty unless it matches
	// ^[A-Za-z][A-Za-z0-9_.]{0,63}$.
	ErrorCode string
	// InnerCode is the inner error's code ("ForbiddenByRbac"), with the
	// same rule.
	InnerCode string
	// Action is the data action an RBAC refusal (403) names, for example
	// "Microsoft.KeyVault/vaults/keys/sign/action"; empty unless it has
	// that form.
	Action string
	// Caller is the application (client) ID an RBAC refusal names, when it
	// is a GUID.
	Caller string

	re *azcore.ResponseError
}

var (
	serviceCodeRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.]{0,63}$`)
	rbacActionRE  = regexp.MustCompile(`Action: '(Microsoft\.KeyVault/[A-Za-z]+(?:/[A-Za-z]+){1,6})'`)
	rbacCallerRE  = regexp.MustCompile(`Caller: appid=([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})[;\r\n]`)
	requestIDRE   = regexp.MustCompile(`^[0-9a-fA-F-]{1,64}$`)
)

// Error describes the answer in kvassert's words.
func (e *ServiceError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s https://%s%s: Key Vault answered %d", e.Method, e.Host, e.Path, e.StatusCode)
	if t := http.StatusText(e.StatusCode); t != "" {
		b.WriteString(" " + t)
	}
	if e.ErrorCode != "" {
		b.WriteString(" (" + e.ErrorCode)
		if e.InnerCode != "" {
			b.WriteString("/" + e.InnerCode)
		}
		b.WriteString(")")
	}
	if e.Action != "" {
		b.WriteString("; action " + e.Action)
	}
	if e.Caller != "" {
		b.WriteString("; caller appid=" + e.Caller)
	}
	return b.String()
}

// Unwrap returns the body-less *azcore.ResponseError.
func (e *ServiceError) Unwrap() error { return e.re }

// ErrorType is the error code, or http_<status> (see internal/obs).
func (e *ServiceError) ErrorType() string {
	if e.StatusCode == http.StatusTooManyRequests {
		return "throttled"
	}
	if e.ErrorCode != "" {
		return e.ErrorCode
	}
	return "http_" + strconv.Itoa(e.StatusCode)
}

// AsServiceError returns the ServiceError in err's chain, else one made
// from the *azcore.ResponseError in it, else nil. The values are read as
// ServiceError documents; nothing else of the answer is kept.
func AsServiceError(err error) *ServiceError {
	var se *ServiceError
	if errors.As(err, &se) {
		return se
	}
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		return nil
	}
	se = &ServiceError{StatusCode: re.StatusCode}
	if serviceCodeRE.MatchString(re.ErrorCode) {
		se.ErrorCode = re.ErrorCode
	}
	clean := &http.Response{StatusCode: re.StatusCode, Status: strconv.Itoa(re.StatusCode) + " " + http.StatusText(re.StatusCode),
		Header: http.Header{}, Body: http.NoBody, ContentLength: 0}
	if r := re.RawResponse; r != nil {
		if r.Request != nil && r.Request.URL != nil {
			se.Method, se.Host, se.Path = r.Request.Method, r.Request.URL.Host, r.Request.URL.EscapedPath()
			if !validMethod(se.Method) {
				se.Method = "?"
			}
			clean.Request = &http.Request{Method: se.Method, URL: &url.URL{Scheme: r.Request.URL.Scheme, Host: se.Host, Path: r.Request.URL.Path, RawPath: r.Request.URL.RawPath}, Header: http.Header{}}
		}
		if v := r.Header.Get("Retry-After"); v != "" && isDigits(v) && len(v) <= 6 {
			clean.Header.Set("Retry-After", v)
		}
		if v := r.Header.Get("x-ms-request-id"); requestIDRE.MatchString(v) {
			clean.Header.Set("x-ms-request-id", v)
		}
		body, _ := runtime.Payload(r)
		var doc struct {
			Error struct {
				Code       string `json:"code"`
				Message    string `json:"message"`
				InnerError *struct {
					Code string `json:"code"`
				} `json:"innererror"`
			} `json:"error"`
		}
		if json.Unmarshal(body, &doc) == nil {
			if ie := doc.Error.InnerError; ie != nil && serviceCodeRE.MatchString(ie.Code) {
				se.InnerCode = ie.Code
			}
			if re.StatusCode == http.StatusForbidden {
				if m := rbacActionRE.FindStringSubmatch(doc.Error.Message); m != nil {
					se.Action = m[1]
				}
				if m := rbacCallerRE.FindStringSubmatch(doc.Error.Message + "\n"); m != nil {
					se.Caller = strings.ToLower(m[1])
				}
			}
		}
	}
	se.re = &azcore.ResponseError{ErrorCode: se.ErrorCode, StatusCode: re.StatusCode, RawResponse: clean}
	return se
}

// Sanitize returns a ServiceError in place of an error that carries an
// *azcore.ResponseError (whose text holds the whole answer, and whatever
// wraps it may quote that text); other errors, nil included, are returned
// unchanged. Wrap errors of Azure SDK clients with it before they reach an
// error message or a log.
func Sanitize(err error) error {
	if se := AsServiceError(err); se != nil {
		return se
	}
	return err
}

func validMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodHead:
		return true
	}
	return false
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}
