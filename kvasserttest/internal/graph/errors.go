package graph

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// graphError is an error answer: HTTP status, Graph error code and message.
type graphError struct {
	status  int
	code    string
	message string
}

func errf(status int, code, format string, args ...any) *graphError {
	return &graphError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) *graphError {
	return errf(http.StatusBadRequest, "Request_BadRequest", format, args...)
}

func invalidToken(msg string) *graphError {
	return errf(http.StatusUnauthorized, "InvalidAuthenticationToken", "%s", msg)
}

func badProof(format string, args ...any) *graphError {
	return errf(http.StatusUnauthorized, "Authentication_MissingOrMalformed", "Invalid proof: "+format, args...)
}

func denied() *graphError {
	return errf(http.StatusForbidden, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
}

func notFound(id string) *graphError {
	return errf(http.StatusNotFound, "Request_ResourceNotFound",
		"Resource '%s' does not exist or one of its queried reference-property objects are not present.", truncate(id))
}

func methodNotAllowed(method string) *graphError {
	return errf(http.StatusMethodNotAllowed, "Request_BadRequest", "Specified HTTP method is not allowed for the request target: %s.", truncate(method))
}

func unknownSegment(segs []string) *graphError {
	s := ""
	if len(segs) > 0 {
		s = segs[0]
	}
	return errf(http.StatusBadRequest, "BadRequest", "Resource not found for the segment '%s'.", truncate(s))
}

// truncate keeps echoed request values short.
func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// responder writes answers with Graph's headers: request-id,
// client-request-id (echoed when the client sent a GUID) and Date.
type responder struct {
	w         http.ResponseWriter
	requestID string
	clientID  string
	now       time.Time
}

var guidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

func newResponder(w http.ResponseWriter, r *http.Request, now time.Time) *responder {
	rw := &responder{w: w, requestID: newGUID(), now: now.UTC()}
	rw.clientID = rw.requestID
	if id := r.Header.Get("client-request-id"); guidRE.MatchString(id) {
		rw.clientID = id
	}
	h := w.Header()
	h.Set("request-id", rw.requestID)
	h.Set("client-request-id", rw.clientID)
	return rw
}

// errorBody is Graph's error shape.
type errorBody struct {
	Error struct {
		Code       string `json:"code"`
		Message    string `json:"message"`
		InnerError struct {
			Date            string `json:"date"`
			RequestID       string `json:"request-id"`
			ClientRequestID string `json:"client-request-id"`
		} `json:"innerError"`
	} `json:"error"`
}

func (rw *responder) fail(e *graphError) {
	var b errorBody
	b.Error.Code, b.Error.Message = e.code, e.message
	b.Error.InnerError.Date = rw.now.Format("2006-01-02T15:04:05")
	b.Error.InnerError.RequestID, b.Error.InnerError.ClientRequestID = rw.requestID, rw.clientID
	if e.status == http.StatusUnauthorized {
		rw.w.Header().Set("WWW-Authenticate", `Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"`)
	}
	rw.json(e.status, b)
}

// faultWriter answers an injected fault in Graph's shape.
func (rw *responder) faultWriter(_ http.ResponseWriter, status int) {
	switch {
	case status == http.StatusTooManyRequests:
		rw.fail(errf(status, "Request_ThrottledTemporarily", "Your request is throttled temporarily. Please try after the time specified in the Retry-After header."))
	case status == http.StatusForbidden:
		rw.fail(denied())
	case status == http.StatusUnauthorized:
		rw.fail(invalidToken("Access token validation failure."))
	case status >= 500:
		rw.fail(errf(status, "Service_ServiceUnavailable", "Service is temporarily unavailable. Please retry."))
	default:
		rw.fail(errf(status, "Request_BadRequest", "Invalid request."))
	}
}

func (rw *responder) json(status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(rw.w, "internal error", http.StatusInternalServerError)
		return
	}
	h := rw.w.Header()
	h.Set("Content-Type", "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	rw.w.WriteHeader(status)
	_, _ = rw.w.Write(b)
}

func (rw *responder) noContent() {
	rw.w.Header().Set("Cache-Control", "no-cache")
	rw.w.WriteHeader(http.StatusNoContent)
}

func newGUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func isGUID(s string) bool { return guidRE.MatchString(s) }

// hostOf strips the port from a Host header.
func hostOf(h string) string {
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.Contains(h[i:], "]") {
		return h[:i]
	}
	return h
}
