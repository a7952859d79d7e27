package kvassert

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/kvassert/kvassert/internal/testlog"
)

// marker stands for a token (or any text) in a token response body: it
// must never reach an error or a log.
const marker = "SECRETMARKER"

// bodyEndpoint is a token endpoint (a real TLS server, reached for
// login.microsoftonline.com) that answers every POST with the body and
// status set last, and a content type.
type bodyEndpoint struct {
	srv    *httptest.Server
	client *http.Client // to srv, for every host
	mu     sync.Mutex

	status      int
	contentType string
	body        []byte
}

func newBodyEndpoint(t testing.TB) *bodyEndpoint {
	t.Helper()
	b := &bodyEndpoint{}
	b.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		status, ct, body := b.status, b.contentType, b.body
		b.mu.Unlock()
		if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/oauth2/v2.0/token") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", ct)
		w.WriteHeader(status)
		w.Write(body) //nolint:errcheck // the client may give up
	}))
	t.Cleanup(b.srv.Close)
	b.client = b.transport()
	t.Cleanup(b.client.CloseIdleConnections)
	return b
}

func (b *bodyEndpoint) serve(status int, contentType string, body []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.status, b.contentType, b.body = status, contentType, body
}

// transport dials every host to the server and trusts its certificate
// (httptest's, issued for example.com).
func (b *bodyEndpoint) transport() *http.Client {
	tr := b.srv.Client().Transport.(*http.Transport).Clone()
	tr.TLSClientConfig = tr.TLSClientConfig.Clone()
	tr.TLSClientConfig.ServerName = "example.com"
	tr.TLSClientConfig.MinVersion = tls.VersionTLS12
	addr := b.srv.Listener.Addr().String()
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	return &http.Client{Transport: tr}
}

// get makes a fresh credential (no cached token), asks it for a token
// once, and returns the error and everything it logged at debug level.
func (b *bodyEndpoint) get(t testing.TB) (error, string) {
	t.Helper()
	var logs testlog.Buffer
	c, err := NewCredential(testHome, testClient, &switchSource{}, &CredentialOptions{
		ClientOptions: policy.ClientOptions{Transport: b.client, Retry: policy.RetryOptions{MaxRetries: -1}},
		Logger:        slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{testScope}})
	return err, logs.String()
}

// leaks reports the first piece of body (a 9-byte window, not all digits)
// that text holds and that is not kvassert's own wording.
func leaks(body []byte, text string) (string, bool) {
	const w = 9
	for i := 0; i+w <= len(body); i++ {
		piece := string(body[i : i+w])
		if !strings.Contains(text, piece) || strings.Trim(piece, "ADST0123456789: ") == "" || strings.Contains(ownWording, piece) {
			continue
		}
		return piece, true
	}
	return "", false
}

// ownWording is every fixed text kvassert's errors are made of, and the
// test's tenant and client, which it names.
var ownWording = func() string {
	var b strings.Builder
	for _, h := range hints {
		b.WriteString(h + "\n")
	}
	for _, d := range descriptions {
		b.WriteString(d + "\n")
	}
	for e := range oauthErrors {
		b.WriteString(e + "\n")
	}
	b.WriteString(testHome + "\n" + testClient + "\n" + testScope + "\napplication/json\ntext/html\ntext/plain\n")
	return b.String()
}()

// checkResponse fails t when err or logs show body text, or err is a
// recovered panic.
func checkResponse(t testing.TB, body []byte, err error, logs string) {
	t.Helper()
	var pe *PanicError
	if errors.As(err, &pe) {
		t.Fatalf("a panic while reading the response: %v\n%s", pe.Value, pe.Stack)
	}
	if err == nil {
		return
	}
	if strings.Contains(err.Error(), marker) || strings.Contains(logs, marker) {
		t.Fatalf("the response body reached the error or the log:\nerror: %v\nlog: %s", err, logs)
	}
	if piece, ok := leaks(body, err.Error()); ok {
		t.Fatalf("the error quotes the response body (%q):\n%v", piece, err)
	}
}

// malformedBodies are token responses MSAL cannot use: fields of the wrong
// type, truncated or non-JSON bodies, nulls, a huge body. Each holds the
// marker where a token or Entra's text would be.
var malformedBodies = map[string]string{
	"expires_in string":          `{"token_type":"Bearer","access_token":"SECRETMARKER.eyJ","expires_in":"x"}`,
	"expires_in object":          `{"token_type":"Bearer","access_token":"SECRETMARKER","expires_in":{"a":1}}`,
	"access_token number":        `{"token_type":"Bearer","access_token":12345678901234,"expires_in":3600,"x":"SECRETMARKER"}`,
	"access_token null":          `{"token_type":"Bearer","access_token":null,"expires_in":3600,"refresh_token":"SECRETMARKER"}`,
	"access_token object":        `{"token_type":"Bearer","access_token":{"v":"SECRETMARKER"},"expires_in":3600}`,
	"missing access_token":       `{"token_type":"Bearer","expires_in":3600,"id_token":"SECRETMARKER"}`,
	"truncated":                  `{"token_type":"Bearer","access_token":"SECRETMARKER.eyJhbGciOi`,
	"html":                       `<html><body>SECRETMARKER sign-in page</body></html>`,
	"plain text":                 `SECRETMARKER`,
	"null":                       `null`,
	"array":                      `["SECRETMARKER"]`,
	"string":                     `"SECRETMARKER"`,
	"expires_on string":          `{"token_type":"Bearer","access_token":"SECRETMARKER","expires_on":"soon"}`,
	"refresh_in string":          `{"token_type":"Bearer","access_token":"SECRETMARKER","expires_in":3600,"refresh_in":"later"}`,
	"token_type number":          `{"token_type":7,"access_token":"SECRETMARKER","expires_in":3600}`,
	"client_info garbage":        `{"token_type":"Bearer","access_token":"SECRETMARKER","expires_in":3600,"client_info":"!!!"}`,
	"id_token garbage":           `{"token_type":"Bearer","access_token":"SECRETMARKER","expires_in":3600,"id_token":"a.b.c"}`,
	"scope number":               `{"token_type":"Bearer","access_token":"SECRETMARKER","expires_in":3600,"scope":5}`,
	"expires_in negative":        `{"token_type":"Bearer","access_token":"SECRETMARKER","expires_in":-5}`,
	"expires_in huge":            `{"token_type":"Bearer","access_token":"SECRETMARKER","expires_in":1e400}`,
	"duplicate keys":             `{"access_token":"SECRETMARKER","access_token":5,"expires_in":3600}`,
	"access_token empty":         `{"token_type":"Bearer","access_token":"","expires_in":3600,"x":"SECRETMARKER"}`,
	"expires_in zero":            `{"token_type":"Bearer","access_token":"SECRETMARKER","expires_in":0}`,
	"expires_on past":            `{"token_type":"Bearer","access_token":"SECRETMARKER","expires_on":1000}`,
	"huge":                       `{"token_type":"Bearer","access_token":"SECRETMARKER` + strings.Repeat("A", 2<<20) + `","expires_in":"x"}`,
	"deep":                       `{"x":` + strings.Repeat("[", 20000) + `"SECRETMARKER"` + strings.Repeat("]", 20000) + `}`,
	"invalid utf-8":              "{\"access_token\":\"SECRETMARKER\xff\",\"expires_in\":\"x\"}",
	"entra error in a 200":       `{"error":"invalid_client","error_description":"AADSTS700027: SECRETMARKER","error_codes":[700027]}`,
	"error_description not text": `{"error":"invalid_client","error_description":{"SECRETMARKER":1},"error_codes":["x"]}`,
}

// A token response MSAL cannot decode put its whole body, the access token
// included, into MSAL's error ("raw message was: ..."), which kvassert
// wrapped unchanged into GetToken's error and the refresh warning. Now the
// error is worded from the status, the content type and the length only;
// the same bodies with an error status give an AuthError without body text.
func TestMalformedTokenResponsesLeakNoBodyText(t *testing.T) {
	b := newBodyEndpoint(t)
	for name, body := range malformedBodies {
		for _, status := range []int{http.StatusOK, http.StatusBadRequest} {
			b.serve(status, "application/json", []byte(body))
			err, logs := b.get(t)
			if err == nil {
				t.Errorf("%s (HTTP %d): a token came back", name, status)
				continue
			}
			t.Run(name, func(t *testing.T) { checkResponse(t, []byte(body), err, logs) })
		}
	}
}

// Entra's refusals carry text (error_description, with names, IDs, and
// anything a hostile endpoint puts there): the AuthError keeps the AADSTS
// code, the OAuth error when it is a known one, the trace and correlation
// IDs when they are GUIDs, and words the rest itself.
func TestAuthErrorHoldsNoEntraText(t *testing.T) {
	body := `{"error":"unauthorized_client","error_description":"AADSTS700016: Application with identifier 'SECRETMARKER' was not found in the directory 'Wingtip'.\r\nTrace ID: 0c1d2e3f-0000-4000-8000-000000000001\r\nCorrelation ID: 0c1d2e3f-0000-4000-8000-000000000002\r\nTimestamp: 2026-11-27 10:00:00Z","error_codes":[700016],"trace_id":"0c1d2e3f-0000-4000-8000-000000000001","correlation_id":"0c1d2e3f-0000-4000-8000-000000000002"}`
	ae, ok := newAuthError(testOther, testClient, callErr(400, body))
	if !ok {
		t.Fatal("not recognised as an Entra answer")
	}
	if ae.Code != 700016 || ae.StatusCode != 400 || ae.ErrorCode != "unauthorized_client" ||
		ae.TraceID != "0c1d2e3f-0000-4000-8000-000000000001" || ae.CorrelationID != "0c1d2e3f-0000-4000-8000-000000000002" {
		t.Fatalf("parsed %+v", ae)
	}
	if strings.Contains(ae.Error(), marker) || strings.Contains(ae.Description, marker) || strings.Contains(ae.Error(), "Wingtip") {
		t.Fatalf("the AuthError quotes Entra's text: %v", ae)
	}
	if errors.Unwrap(ae) != nil {
		t.Fatalf("the AuthError unwraps to MSAL's error, whose text holds the body: %v", errors.Unwrap(ae))
	}
	// IDs that are not GUIDs, and unknown OAuth errors, are dropped.
	ae, _ = newAuthError(testOther, testClient, callErr(401, `{"error":"SECRETMARKER","error_codes":[7000999],"trace_id":"SECRETMARKER","correlation_id":"x"}`))
	if ae.Code != 7000999 || ae.ErrorCode != "" || ae.TraceID != "" || ae.CorrelationID != "" || strings.Contains(ae.Error(), marker) {
		t.Fatalf("parsed %+v: %v", ae, ae)
	}
}

// FuzzTokenResponseBody serves the fuzzed body as the token endpoint's
// answer (200, or an error status) to a fresh credential: no panic, and
// no piece of the body in the error or the log.
func FuzzTokenResponseBody(f *testing.F) {
	for _, body := range malformedBodies {
		if len(body) < 4096 {
			f.Add([]byte(body), uint8(0))
		}
	}
	f.Add([]byte(`{"token_type":"Bearer","access_token":"SECRETMARKER","expires_in":3600}`), uint8(0))
	f.Add([]byte(`{"error":"invalid_client","error_description":"AADSTS7000274: SECRETMARKER","error_codes":[7000274]}`), uint8(1))
	b := newBodyEndpoint(f)
	statuses := []int{http.StatusOK, http.StatusBadRequest, http.StatusUnauthorized, http.StatusInternalServerError}
	f.Fuzz(func(t *testing.T, body []byte, status uint8) {
		b.serve(statuses[int(status)%len(statuses)], "application/json", body)
		err, logs := b.get(t)
		checkResponse(t, body, err, logs)
	})
}

// The managed identity endpoint's answer is a token response too: its body
// (the token, or an error that quotes it) reached the Source's error
// through azidentity's AuthenticationFailedError, which prints the body of
// a refusal and quotes values of a 200 it cannot parse. Now the error names
// the status and content type only.
func TestManagedIdentityAnswersLeakNoBodyText(t *testing.T) {
	var mu sync.Mutex
	var status int
	var body string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write([]byte(body)) //nolint:errcheck // the client may give up
	}))
	defer srv.Close()
	t.Setenv("IDENTITY_ENDPOINT", srv.URL+"/msi/token")
	t.Setenv("IDENTITY_HEADER", "test-header")
	bodies := []string{
		`{"access_token":"SECRETMARKER","expires_on":"SECRETMARKER","resource":"api://AzureADTokenExchange","token_type":"Bearer"}`,
		`{"access_token":5,"expires_on":"1999999999","x":"SECRETMARKER"}`,
		`{"access_token":"SECRETMARKER`,
		`<html>SECRETMARKER</html>`,
		`{"error":"invalid_request","error_description":"SECRETMARKER"}`,
	}
	for _, b := range bodies {
		for _, st := range []int{http.StatusOK, http.StatusBadRequest, http.StatusInternalServerError} {
			mu.Lock()
			status, body = st, b
			mu.Unlock()
			s, err := NewManagedIdentitySource(&ManagedIdentityOptions{ClientOptions: policy.ClientOptions{Retry: policy.RetryOptions{MaxRetries: -1}}})
			if err != nil {
				t.Fatal(err)
			}
			_, err = s.Assertion(context.Background(), testClient, "https://login.microsoftonline.com/x/oauth2/v2.0/token")
			if err == nil {
				t.Fatalf("HTTP %d %s: no error", st, b)
			}
			if strings.Contains(err.Error(), marker) {
				t.Fatalf("HTTP %d: the managed identity answer reached the error:\n%v", st, err)
			}
			if !strings.Contains(err.Error(), "managed identity") {
				t.Fatalf("HTTP %d: %v", st, err)
			}
		}
	}
}

// A background refresh that gets a 200 MSAL cannot decode logged MSAL's
// error, with the body and so the new access token, in its WARN record.
func TestFailedRefreshWarningHoldsNoBodyText(t *testing.T) {
	v := newLifecycleEnv(t, 24*3600, 1)
	v.want(t, testOther, "tok-1", "first token")
	v.pastRefreshTime()
	v.entra.set(func(f *fakeEntra) {
		f.raw = `{"token_type":"Bearer","access_token":"SECRETMARKER.eyJ0eXAiOiJKV1QifQ","expires_in":"x"}`
	})
	if tok := v.get(t, testOther); tok != "tok-1" { // starts the refresh, which fails
		t.Fatalf("during the failed refresh got %q", tok)
	}
	warns, logs := v.log.warnings()
	if warns != 1 || !strings.Contains(logs, "background token refresh failed") {
		t.Fatalf("%d warnings:\n%s", warns, logs)
	}
	if strings.Contains(logs, marker) {
		t.Fatalf("the refresh warning holds the token response:\n%s", logs)
	}
	if !strings.Contains(logs, "HTTP 200") {
		t.Fatalf("the warning does not say what came back:\n%s", logs)
	}
}
