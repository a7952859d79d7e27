package vault

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
)

// apiError is an error answer of the data plane:
// {"error":{"code":"…","message":"…","innererror":{"code":"…"}}}.
type apiError struct {
	status  int
	code    string
	message string
	inner   string
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func errf(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

func badParameter(format string, args ...any) *apiError {
	return errf(http.StatusBadRequest, "BadParameter", format, args...)
}

// notFoundMessage is the service's wording for a missing key, certificate or
// secret; id is the name, or "name/version" for a versioned lookup.
func notFound(kind, code, id string) *apiError {
	return errf(http.StatusNotFound, code,
		"A %s with (name/id) %s was not found in this key vault. If you recently deleted this %s you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182",
		kind, id, kind)
}

func keyNotFound(id string) *apiError  { return notFound("key", "KeyNotFound", id) }
func certNotFound(id string) *apiError { return notFound("certificate", "CertificateNotFound", id) }
func secretNotFound(id string) *apiError {
	return notFound("secret", "SecretNotFound", id)
}

// throttledMessage is the real service's 429 message (Key Vault service limits).
const throttledMessage = "Request was not processed because too many requests were received. Reason: VaultRequestTypeLimitReached"

// faultError writes the body of an injected fault's status (emu.ErrorWriter).
func (v *Vault) faultError(w http.ResponseWriter, status int) {
	var e *apiError
	switch status {
	case http.StatusTooManyRequests:
		e = errf(status, "Throttled", throttledMessage)
	case http.StatusUnauthorized:
		v.setChallenge(w)
		e = errf(status, "Unauthorized", "AKV10000: Request is missing a Bearer or PoP token.")
	case http.StatusForbidden:
		e = errf(status, "Forbidden", "Caller is not authorized to perform action on resource.")
	case http.StatusNotFound:
		e = errf(status, "NotFound", "The requested resource was not found.")
	case http.StatusInternalServerError:
		e = errf(status, "InternalServerError", "An unexpected error occurred.")
	case http.StatusServiceUnavailable:
		e = errf(status, "ServiceUnavailable", "The service is temporarily unavailable. Please retry.")
	default:
		e = errf(status, http.StatusText(status), "The request failed with status %d.", status)
	}
	v.writeError(w, e)
}

// writeError writes an error answer. Managed HSM messages carry an activity
// ID, as the real Managed HSM's do.
func (v *Vault) writeError(w http.ResponseWriter, e *apiError) {
	msg := e.message
	if v.hsm {
		msg += " (Activity ID: " + newActivityID() + ")"
	}
	body := map[string]any{"code": e.code, "message": msg}
	if e.inner != "" {
		body["innererror"] = map[string]string{"code": e.inner}
	}
	v.writeJSON(w, e.status, map[string]any{"error": body})
}

// writeJSON writes a JSON body with the service's standard headers.
func (v *Vault) writeJSON(w http.ResponseWriter, status int, body any) {
	data, err := json.Marshal(body)
	if err != nil { // every body is built from marshalable types
		data = []byte(`{"error":{"code":"InternalServerError","message":"response encoding failed"}}`)
		status = http.StatusInternalServerError
	}
	v.standardHeaders(w)
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(status)
	w.Write(data) //nolint:errcheck // the client may be gone
}

// standardHeaders sets the headers every Key Vault answer carries.
func (v *Vault) standardHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Cache-Control", "no-cache")
	h.Set("Pragma", "no-cache")
	h.Set("Expires", "-1")
	h.Set("Strict-Transport-Security", "max-age=31536000;includeSubDomains")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("x-ms-request-id", newActivityID())
	h.Set("x-ms-keyvault-region", "kvasserttest")
	if !v.hsm {
		h.Set("x-ms-keyvault-service-version", "1.9.0.0")
	}
}

func newActivityID() string {
	b := make([]byte, 16)
	rand.Read(b) //nolint:errcheck // crypto/rand never fails
	s := hex.EncodeToString(b)
	return s[0:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:]
}

// newVersion returns a fresh object version: 32 lower-case hex characters.
func newVersion() string {
	b := make([]byte, 16)
	rand.Read(b) //nolint:errcheck // crypto/rand never fails
	return hex.EncodeToString(b)
}
