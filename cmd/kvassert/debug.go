package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	azlog "github.com/Azure/azure-sdk-for-go/sdk/azcore/log"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/kvassert/kvassert/internal/textutil"
)

// --debug: one line per HTTP request and one per response (or failure) of
// every client the CLI builds, written to the redacting stderr, and
// azidentity's authentication events (which credential of
// DefaultAzureCredential reached the vault).
//
// What a line holds: the method, the scheme, host and path (never the query
// string, which may carry a resource, a client ID or an api-version only, but
// is left out whole), the status and the duration, and the correlation
// headers listed in debugHeaders. Never a body, never another header (so no
// Authorization, cookie, client_assertion or token), and a transport error
// only by its kind (Go's *url.Error quotes the URL with its query string).

// debugHeaders are the request and response headers a --debug line shows:
// request IDs Azure support asks for.
var debugHeaders = []string{
	"x-ms-client-request-id",
	"client-request-id",
	"x-ms-request-id",
	"x-ms-correlation-id",
	"x-ms-keyvault-service-version",
}

// debugPrefix starts every --debug line.
const debugPrefix = "debug: "

// withDebug returns o with, under --debug, the trace policy (per retry, so
// that every attempt is shown) and an x-ms-client-request-id on every
// request (the services log it; the trace shows it).
func (a *App) withDebug(o policy.ClientOptions) policy.ClientOptions {
	if !a.Debug {
		return o
	}
	o.PerCallPolicies = append(slices.Clip(o.PerCallPolicies), runtime.NewRequestIDPolicy())
	o.PerRetryPolicies = append(slices.Clip(o.PerRetryPolicies), debugPolicy{w: a.Stderr})
	return o
}

// debugPolicy is the per-retry azcore policy that ClientOptions adds with
// --debug: it sees every attempt, retries included.
type debugPolicy struct{ w io.Writer }

// Do implements policy.Policy.
func (p debugPolicy) Do(req *policy.Request) (*http.Response, error) {
	raw := req.Raw()
	start := time.Now()
	writeDebugRequest(p.w, raw)
	resp, err := req.Next()
	writeDebugResponse(p.w, raw, resp, err, time.Since(start))
	return resp, err
}

// debugTransport is debugPolicy for a plain http.Client (HTTPClient).
type debugTransport struct {
	w    io.Writer
	next http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (t debugTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	writeDebugRequest(t.w, r)
	resp, err := t.next.RoundTrip(r)
	writeDebugResponse(t.w, r, resp, err, time.Since(start))
	return resp, err
}

// debugURL is the request's URL without user info, query or fragment.
func debugURL(r *http.Request) string {
	if r == nil || r.URL == nil {
		return "?"
	}
	return r.URL.Scheme + "://" + r.URL.Host + r.URL.EscapedPath()
}

// debugHeaderText is " name=value" for each debugHeaders header h holds.
func debugHeaderText(h http.Header) string {
	var b strings.Builder
	for _, name := range debugHeaders {
		v := h.Get(name)
		if v == "" {
			continue
		}
		b.WriteString(" " + name + "=" + debugValue(v))
	}
	return b.String()
}

// debugValue keeps a header value printable and short: IDs are GUIDs and
// version strings, anything else is cut.
func debugValue(v string) string { return debugClean(v, '_', 80) }

func writeDebugRequest(w io.Writer, r *http.Request) {
	fmt.Fprintf(w, "%sHTTP request  %s %s%s\n", debugPrefix, r.Method, debugURL(r), debugHeaderText(r.Header))
}

func writeDebugResponse(w io.Writer, r *http.Request, resp *http.Response, err error, d time.Duration) {
	d = d.Round(time.Millisecond)
	if resp == nil || err != nil {
		fmt.Fprintf(w, "%sHTTP response %s %s: no response (%s) after %v\n", debugPrefix, r.Method, debugURL(r), transportErrorKind(err), d)
		return
	}
	fmt.Fprintf(w, "%sHTTP response %s %s: %d after %v%s\n", debugPrefix, r.Method, debugURL(r), resp.StatusCode, d, debugHeaderText(resp.Header))
}

// transportErrorKind names a transport failure without its text.
func transportErrorKind(err error) string {
	var ne net.Error
	var dns *net.DNSError
	var op *net.OpError
	switch {
	case err == nil:
		return "no error and no response"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded):
		return "timed out"
	case errors.As(err, &dns):
		return "host not found"
	case errors.As(err, new(*tls.CertificateVerificationError)):
		return "TLS certificate not trusted"
	case errors.As(err, &op) && op.Op == "dial":
		return "connection refused or unreachable"
	case errors.As(err, &ne) && ne.Timeout():
		return "timed out"
	}
	return "transport error"
}

// azidentityDebugEvents are the azcore log events --debug shows: azidentity's
// authentication lines ("DefaultAzureCredential authenticated with
// ManagedIdentityCredential", "... acquired a token for scope ...").
var azidentityDebugEvents = []azlog.Event{azidentity.EventAuthentication}

// startAzureDebugLog sends azidentity's authentication events to w (the
// redacting stderr), each line prefixed and cut to a printable length. The
// listener is process-wide, as azcore's log is.
func startAzureDebugLog(w io.Writer) {
	azlog.SetEvents(azidentityDebugEvents...)
	azlog.SetListener(func(ev azlog.Event, msg string) {
		for _, line := range strings.Split(msg, "\n") {
			line = strings.TrimSpace(line)
			if line == "" {
				continue
			}
			fmt.Fprintf(w, "%sazidentity: %s\n", debugPrefix, debugValueLong(line))
		}
	})
}

// stopAzureDebugLog removes the listener.
func stopAzureDebugLog() { azlog.SetListener(nil) }

// debugValueLong is debugValue for a log line.
func debugValueLong(v string) string { return debugClean(v, ' ', 400) }

// debugClean replaces terminal controls in v with repl and cuts it to limit.
func debugClean(v string, repl rune, limit int) string {
	v = strings.Map(func(r rune) rune {
		if terminalControl(r) {
			return repl
		}
		return r
	}, v)
	return textutil.Truncate(v, limit)
}
