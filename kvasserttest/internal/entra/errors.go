package entra

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// The errors the emulated token service answers with. Each has the OAuth
// "error" string, the AADSTS code and the HTTP status real Entra ID uses for
// the same failure; the wording of the descriptions follows real responses
// (recorded in public issue threads and the Entra error-code reference).
//
//	case                                          error                   AADSTS   HTTP
//	--------------------------------------------  ----------------------  -------  ----
//	tenant not found (path segment)               invalid_tenant          90002    400
//	not POST on the token endpoint                invalid_request         900561   400
//	grant_type / client_id / scope missing        invalid_request         900144   400
//	client_id not a GUID                          unauthorized_client     700016   400
//	grant_type other than client_credentials      unsupported_grant_type  70003    400
//	client_credentials on /common or /consumers   invalid_request         9001023  400
//	client_credentials on /organizations          invalid_request         50059    400
//	scope without "/.default"                     invalid_scope           1002012  400
//	scope naming several (or no) resources        invalid_scope           70011    400
//	app unknown, or no service principal in the   unauthorized_client     700016   400
//	  tenant (single-tenant app elsewhere, multi-
//	  tenant app without consent)
//	no client_secret and no client_assertion      invalid_client          7000216  401
//	both, or client_assertion_type not jwt-bearer invalid_request         9002313  400
//	wrong client_secret                           invalid_client          7000215  401
//	assertion not a JWS compact JWT / bad base64  invalid_request         50027    400
//	  or JSON
//	assertion alg not RS256/PS256, or the         invalid_request         5002730  400
//	  certificate key is not RSA
//	assertion without jti                         invalid_request         90014    400
//	assertion iss != sub                          invalid_client          50048    401
//	assertion iss/sub != client_id                invalid_client          700021   401
//	assertion aud not this tenant's token         invalid_client          700023   401
//	  endpoint
//	assertion exp missing or past, nbf future     invalid_client          700024   401
//	  (5 minutes of skew)
//	no registered certificate with the x5t /      invalid_client          700027   401
//	  x5t#S256 thumbprint (or it does not decode,
//	  or it was added through Graph's addKey and
//	  has not propagated yet)
//	signature does not verify with the key found  invalid_client          7000274  401
//	certificate revoked (RevokeCertificate)       invalid_client          7000277  401
//	certificate outside NotBefore..NotAfter       invalid_client          1000502  401
//	jti already used by this app (replay)         invalid_client          50013    401
//	federated: token of this emulator with a bad  invalid_request         50027    400
//	  signature
//	federated: token issued to a user (idtyp not  invalid_request         700229   400
//	  "app")
//	federated: Entra token of another tenant than invalid_request         700236   400
//	  the app's home tenant
//	federated: no FIC with that issuer (an        invalid_request         700211   400
//	  assertion without x5t / x5t#S256 is taken
//	  as a federated one, as Entra does)
//	federated: token of another issuer that a FIC invalid_request         50027    400
//	  names (the emulator can only verify its own)
//	federated: issuer matches, subject does not   invalid_request         700213   400
//	federated: issuer+subject match, audience not invalid_request         700212   400
//
// Notes on the choices that real Entra does not pin down publicly:
//   - Entra ID does not document rejecting a replayed client-assertion jti
//     (MSAL.NET even caches and reuses its signed assertion for a few minutes).
//     The emulator is stricter, as RFC 7523 allows, and uses AADSTS50013
//     ("InvalidAssertion"), which clients do not treat as a certificate problem;
//     SetReplayProtection(false) restores Entra's lenient behaviour.
//     Federated (managed identity) assertions are never replay-checked: they
//     are bearer tokens meant to be reused until they expire.
//   - 7000214 ("CertificateHasBeenRevoked") and 7000277 ("CertificateWasRevoked")
//     both exist; RevokeCertificate produces 7000277.
type oauthError struct {
	status int
	err    string // OAuth "error"
	code   int    // AADSTS code
	msg    string // description without the "AADSTS<code>: " prefix
}

func (e *oauthError) Error() string { return fmt.Sprintf("AADSTS%d: %s", e.code, e.msg) }

func newErr(status int, errName string, code int, format string, args ...any) *oauthError {
	return &oauthError{status: status, err: errName, code: code, msg: fmt.Sprintf(format, args...)}
}

// certDocs is the link Entra appends to client-assertion errors.
const certDocs = "Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials ."

const ficDocs = "Please check your federated identity credential Subject, Audience and Issuer against the presented assertion. https://learn.microsoft.com/entra/workload-id/workload-identity-federation"

// errorBody is Entra's error JSON, field order as Entra sends it.
type errorBody struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
	ErrorCodes       []int  `json:"error_codes"`
	Timestamp        string `json:"timestamp"`
	TraceID          string `json:"trace_id"`
	CorrelationID    string `json:"correlation_id"`
	ErrorURI         string `json:"error_uri"`
}

// writeOAuthError writes e in Entra's shape: the description ends with the
// "Trace ID / Correlation ID / Timestamp" lines, separated by CRLF as Entra
// does. It never includes request parameters beyond what e.msg holds.
func (s *Entra) writeOAuthError(w http.ResponseWriter, r *http.Request, e *oauthError) {
	now := s.now().UTC()
	trace := newGUID()
	corr := correlationID(r)
	ts := now.Format("2006-01-02 15:04:05Z")
	body := errorBody{
		Error: e.err,
		ErrorDescription: fmt.Sprintf("AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s",
			e.code, e.msg, trace, corr, ts),
		ErrorCodes:    []int{e.code},
		Timestamp:     ts,
		TraceID:       trace,
		CorrelationID: corr,
		ErrorURI:      "https://login.microsoftonline.com/error?code=" + strconv.Itoa(e.code),
	}
	h := w.Header()
	h.Set("x-ms-request-id", trace)
	h.Set("client-request-id", corr)
	writeJSON(w, e.status, body)
}

// faultWriter answers injected faults with an Entra-shaped error.
func (s *Entra) faultWriter(r *http.Request) func(http.ResponseWriter, int) {
	return func(w http.ResponseWriter, status int) {
		var e *oauthError
		switch {
		case status == http.StatusTooManyRequests:
			e = newErr(status, "temporarily_unavailable", 90055, "TenantThrottlingError - There are too many incoming requests. Try again later.")
		case status >= 500:
			e = newErr(status, "temporarily_unavailable", 90033, "A transient error has occurred. Please try again.")
		default:
			e = newErr(status, "invalid_request", 90023, "Invalid request.")
		}
		s.writeOAuthError(w, r, e)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store, no-cache")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// correlationID echoes the client's client-request-id when it is a GUID, as
// Entra does, and makes one up otherwise.
func correlationID(r *http.Request) string {
	if id := r.Header.Get("client-request-id"); isGUID(id) {
		return id
	}
	return newGUID()
}

func newGUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return formatGUID(b, 4)
}

// formatGUID sets the RFC 9562 version and variant bits and formats b.
func formatGUID(b [16]byte, version byte) string {
	b[6] = b[6]&0x0f | version<<4
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// isoTime formats t the way Entra prints times in AADSTS700024.
func isoTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.0000000Z") }
