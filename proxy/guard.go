package proxy

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"time"
)

// secretEqual compares a presented secret with the per-run secret in
// constant time. Both are hashed first so that neither length nor content
// leaks through timing.
func (s *Server) secretEqual(got string) bool {
	if got == "" {
		return false
	}
	sum := sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(sum[:], s.secretSum[:]) == 1
}

// identityKey names the identity of a managed identity route: the same
// string for every spelling of its path (tenant, client ID, vault and
// certificate names are case-insensitive).
func identityKey(kind targetKind, tenant, clientID, vault, cert, file string) string {
	switch kind {
	case targetKV:
		return "kv\x00" + strings.ToLower(tenant) + "\x00" + strings.ToLower(clientID) + "\x00" + strings.ToLower(vault) + "\x00" + strings.ToLower(cert)
	case targetFile:
		return "file\x00" + strings.ToLower(tenant) + "\x00" + strings.ToLower(clientID) + "\x00" + file
	}
	return "forward"
}

// identitySecret is the secret of one emulated identity on one protocol:
// HMAC-SHA256 under a random per-run key of the identity's name, 256 bits
// in base64url. Each identity (and each protocol of it, since the Cloud
// Shell secret travels in a URL path) has its own secret, which can be
// neither guessed nor derived from another one or from the API secret.
func (s *Server) identitySecret(p protocol, id string) string {
	return base64.RawURLEncoding.EncodeToString(s.identityMAC(p, id))
}

func (s *Server) identityMAC(p protocol, id string) []byte {
	m := hmac.New(sha256.New, s.idKey)
	m.Write([]byte("kvassert-proxy-identity\x00"))
	if p == cloudShell {
		m.Write([]byte("cloudshell\x00"))
	} else {
		m.Write([]byte("appservice\x00"))
	}
	m.Write([]byte(id))
	return m.Sum(nil)
}

// identitySecretEqual compares a presented secret with the identity's in
// constant time.
func (s *Server) identitySecretEqual(got string, p protocol, id string) bool {
	if got == "" {
		return false
	}
	want := sha256.Sum256([]byte(s.identitySecret(p, id)))
	sum := sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(sum[:], want[:]) == 1
}

// apiSecret returns the secret a token API request presents, from
// "Authorization: Bearer <secret>" or "X-Kvassert-Secret: <secret>".
func apiSecret(r *http.Request) string {
	if v := r.Header.Get("X-Kvassert-Secret"); v != "" {
		return v
	}
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if ok && strings.EqualFold(scheme, "Bearer") {
		return strings.TrimSpace(tok)
	}
	return ""
}

var errUnauthorized = &problem{
	Type: problemUnauthorized, Title: "Missing or wrong secret", Status: http.StatusUnauthorized,
	Detail: "Every request needs its secret, printed by kvassert proxy at start: the API secret as " +
		"\"Authorization: Bearer <secret>\" or \"X-Kvassert-Secret: <secret>\" for the token API; " +
		"each managed identity route has its own secret, the IDENTITY_HEADER printed with its IDENTITY_ENDPOINT " +
		"(App Service) or the path segment after /cloudshell/ in its MSI_ENDPOINT (Cloud Shell).",
}

var errPlainHTTP = &problem{
	Type: problemForbidden, Title: "TLS required", Status: http.StatusForbidden,
	Detail: "With --allow-remote (Options.AllowRemote) the proxy answers over TLS only: use https and pin the certificate fingerprint printed at start.",
}

var errForwardOff = &problem{
	Type: problemNotConfig, Title: "Forwarding is off", Status: http.StatusForbidden,
	Detail: "The proxy hands out tokens of your own identity only when started with --allow-forward (Options.AllowForward).",
}

// allowedHost reports whether the Host header names this machine: a
// loopback address or "localhost" (the DNS-rebinding guard: a page of
// another site that resolves its own name to 127.0.0.1 sends that name as
// Host). With AllowRemote, any IP address literal is allowed as well; a
// name never is, so DNS rebinding stays impossible.
func (s *Server) allowedHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	} else if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	}
	if host == "" {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return false
	}
	return ip.IsLoopback() || s.cfg.AllowRemote
}

// crossSite reports whether a browser sent the request from another origin.
// Browsers send Sec-Fetch-Site (all current ones) and Origin (on every
// non-GET request and on cross-origin GETs from scripts); tools such as curl
// and the Azure SDKs send neither. Only "same-origin" and "none" (the user
// typed the address or opened a bookmark) are accepted: "same-site" would
// let any other port on localhost in. No CORS headers are ever sent, so
// preflight requests fail too.
func crossSite(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return true
	}
	origin, ok := r.Header["Origin"]
	if !ok {
		return false
	}
	if len(origin) != 1 {
		return true
	}
	scheme := "http://"
	if r.TLS != nil {
		scheme = "https://"
	}
	return !strings.EqualFold(origin[0], scheme+r.Host)
}

var (
	errHost = &problem{
		Type: problemHost, Title: "Host not allowed", Status: http.StatusMisdirectedRequest,
		Detail: "kvassert proxy answers only requests addressed to 127.0.0.1, [::1] or localhost (DNS-rebinding protection).",
	}
	errCrossSite = &problem{
		Type: problemForbidden, Title: "Cross-site request refused", Status: http.StatusForbidden,
		Detail: "kvassert proxy refuses requests made by web pages of other origins.",
	}
)

// requestInfo is filled by handlers for the request log line.
type requestInfo struct {
	tenant, clientID string
}

type infoKey struct{}

func info(ctx context.Context) *requestInfo {
	if ri, ok := ctx.Value(infoKey{}).(*requestInfo); ok {
		return ri
	}
	return &requestInfo{}
}

// statusWriter records the status code for the log line.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// guard wraps the router: security headers, the Host and cross-site checks,
// and one log line per request. The line names the route pattern (never the
// path, which holds the secret on Cloud Shell routes), tenant, client ID,
// status and duration; never a header, query, body or token.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ri := &requestInfo{}
		r = r.WithContext(context.WithValue(r.Context(), infoKey{}, ri))
		sw := &statusWriter{ResponseWriter: w}
		h := sw.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		defer func() {
			route := r.Pattern
			if route == "" {
				route = "unmatched"
			}
			status := sw.status
			if status == 0 {
				status = http.StatusOK
			}
			s.log.Log(r.Context(), s.requestLevel, "request", "method", r.Method, "route", route, "tenant", ri.tenant, "client_id", ri.clientID,
				"status", status, "duration", time.Since(start).Round(time.Microsecond))
		}()
		defer func() {
			// A panic in a handler (a credential or source with a bug)
			// costs its request a 500, never the process or a stack trace
			// with values in it; the panic's value is not logged.
			p := recover()
			if p == nil {
				return
			}
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.log.Debug("kvassert proxy: recovered a panic", "route", r.Pattern, "panic_type", fmt.Sprintf("%T", p), "stack", string(debug.Stack()))
			if sw.status == 0 {
				writeProblem(sw, upstreamProblem(errPanic))
			}
		}()
		switch {
		case s.cfg.AllowRemote && r.TLS == nil:
			// Reachable from other machines: secrets and tokens travel over
			// TLS only, whoever serves Handler.
			writeProblem(sw, errPlainHTTP)
		case !s.allowedHost(r.Host):
			writeProblem(sw, errHost)
		case crossSite(r):
			writeProblem(sw, errCrossSite)
		default:
			next.ServeHTTP(sw, r)
		}
	})
}
