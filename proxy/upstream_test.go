package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/kvassert/kvassert"

	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// marker is text only a hostile or broken server sends: it must never reach
// a problem document or a log line.
const marker = "upstream-marker-4711"

// answer is a canned HTTP answer.
type answer struct {
	status int
	body   string
}

// hostileTransport answers token requests (by their scope) and keys/sign
// requests (when sign is set) itself; everything else goes to the emulator.
type hostileTransport struct {
	next   policy.Transporter
	tokens map[string]answer // scope -> answer
	sign   *answer
}

func (h *hostileTransport) Do(req *http.Request) (*http.Response, error) {
	var a *answer
	switch {
	case req.Method == "POST" && strings.HasSuffix(req.URL.Path, "/oauth2/v2.0/token"):
		body, _ := io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(body))
		form, _ := url.ParseQuery(string(body))
		for _, sc := range strings.Fields(form.Get("scope")) {
			if x, ok := h.tokens[sc]; ok {
				a = &x
			}
		}
	case req.Method == "POST" && strings.HasSuffix(req.URL.Path, "/sign") && h.sign != nil:
		a = h.sign
	}
	if a == nil {
		return h.next.Do(req)
	}
	return &http.Response{
		StatusCode: a.status, Status: strconv.Itoa(a.status) + " " + http.StatusText(a.status),
		Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(strings.NewReader(a.body)),
		Request: req, ProtoMajor: 1, ProtoMinor: 1, ContentLength: int64(len(a.body)),
	}, nil
}

// Issue 18, defect 5: a token response Entra never sends (a malformed 200,
// an error whose text is the server's) becomes a problem in the proxy's
// own words: no text of the response reaches the problem or the log.
func TestProblemCarriesNoUpstreamText(t *testing.T) {
	t.Parallel()
	shapes := []answer{
		{200, `{"token_type":"Bearer","expires_in":"soon","access_token":"` + marker + `"}`},
		{200, `{"token_type":"Bearer","expires_in":3600,"access_token":{"x":"` + marker + `"}}`},
		{200, `{"token_type":"Bearer","expires_in":3600,"ext_expires_in":"` + marker + `","access_token":"` + marker + `"}`},
		{200, `{"token_type":"Bearer","access_token":"` + marker + `"`},
		{200, marker + ` is not JSON`},
		{200, `{"error":"` + marker + `","error_description":"AADSTS50000: ` + marker + `"}`},
		{400, `{"error":"invalid_client","error_description":"AADSTS7000215: ` + marker + `","error_codes":[7000215]}`},
		{400, `{"error":"` + marker + `","error_description":"` + marker + `"}`},
		{500, `{"error":"server_error","error_description":"` + marker + `"}`},
		{503, marker},
	}
	tokens := map[string]answer{}
	for i, a := range shapes {
		tokens["api://hostile-"+strconv.Itoa(i)+"/.default"] = a
	}
	env := newEnv(t, func(c *Options, e *kvasserttest.Emulator) {
		c.ClientOptions.Transport = &hostileTransport{next: c.ClientOptions.Transport, tokens: tokens}
		c.ClientOptions.Retry.MaxRetries = -1 // the 5xx shapes: no back-off
	})
	check := func(what string, resp *http.Response) {
		t.Helper()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode == 200 {
			t.Errorf("%s: answered 200", what)
			return
		}
		if strings.Contains(string(body), marker) {
			t.Errorf("%s: the problem carries the server's text: %.300s", what, body)
		}
	}
	for i := range shapes {
		scope := "api://hostile-" + strconv.Itoa(i) + "/.default"
		b := kvCertBody(scenario.DemoContosoTenant)
		b["scopes"] = []string{scope}
		check("token API, shape "+strconv.Itoa(i), env.api("kv-certificate", b))
		vars, err := env.s.AppServiceEnv(env.url, Target{Tenant: emuhook.DemoFabrikamTenant, ClientID: scenario.DemoAppClientID, Vault: scenario.DemoVault, Certificate: scenario.DemoCertificate})
		if err != nil {
			t.Fatal(err)
		}
		resp := env.do("GET", strings.TrimPrefix(envValue(vars, "IDENTITY_ENDPOINT"), env.url)+"?api-version=2019-08-01&resource="+url.QueryEscape(strings.TrimSuffix(scope, "/.default")),
			"", nil, "X-IDENTITY-HEADER", envValue(vars, "IDENTITY_HEADER"))
		check("managed identity route, shape "+strconv.Itoa(i), resp)
	}
	if logs := env.logs.String(); strings.Contains(logs, marker) {
		t.Errorf("the server's text reached the log:\n%s", logs)
	}
}

// Issue 18, defect 5 (sibling): a Key Vault error message is the vault's
// text too; the problem names the status and the operation, in our words.
func TestVaultProblemCarriesNoServerText(t *testing.T) {
	t.Parallel()
	env := newEnv(t, func(c *Options, e *kvasserttest.Emulator) {
		c.ClientOptions.Transport = &hostileTransport{next: c.ClientOptions.Transport,
			sign: &answer{403, `{"error":{"code":"Forbidden ` + marker + `","message":"` + marker + `\nsecond line"}}`}}
	})
	resp := env.api("kv-certificate", kvCertBody(scenario.DemoContosoTenant))
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusForbidden || strings.Contains(string(body), marker) {
		t.Errorf("status %d, problem %s", resp.StatusCode, body)
	}
	if logs := env.logs.String(); strings.Contains(logs, marker) {
		t.Errorf("the server's text reached the log:\n%s", logs)
	}
}

// Issue 18, defect 5 (sibling): the logger the proxy hands to the library
// (which logs background refresh and certificate re-read failures with
// their error) rewords every error from its type: an error quoting a token
// response leaves no text in the proxy's log.
func TestLibraryLoggerRewordsErrors(t *testing.T) {
	var buf bytes.Buffer
	l := libraryLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	quoting := fmt.Errorf("kvassert: token for tenant x: json decode error\nraw message was: {\"access_token\":%q}", marker)
	l.Warn("kvassert: background token refresh failed", "tenant", "t", "error", quoting)
	l.With("error", quoting).Info("with")
	l.WithGroup("g").Error("grouped", slog.Group("inner", "err", quoting))
	if strings.Contains(buf.String(), marker) || strings.Count(buf.String(), "Getting the token failed") != 3 {
		t.Errorf("log:\n%s", buf.String())
	}
}

// Issue 18, defect 5: whatever text a typed error carries from a server
// (Entra's description and error code, a vault's error code and body, a
// wrapped message), upstreamProblem words the problem itself.
func TestUpstreamProblemWordsItself(t *testing.T) {
	body := `{"error":{"code":"` + marker + `","message":"` + marker + `"}}`
	raw := &http.Response{StatusCode: 403, Body: io.NopCloser(strings.NewReader(body)),
		Request: &http.Request{Method: "POST", URL: &url.URL{Scheme: "https", Host: "v.vault.azure.net", Path: "/keys/k/1/sign", RawQuery: "x=" + marker}}}
	for i, err := range []error{
		&kvassert.AuthError{Tenant: marker, Code: 7000215, ErrorCode: marker, Description: marker, StatusCode: 400},
		&kvassert.AuthError{Tenant: "contoso.onmicrosoft.com", ErrorCode: "invalid " + marker, Description: "AADSTS1: " + marker, StatusCode: 500},
		fmt.Errorf("kvassert: signing: %w", &azcore.ResponseError{StatusCode: 403, ErrorCode: marker, RawResponse: raw}),
		&azcore.ResponseError{StatusCode: 500, ErrorCode: "Forbidden " + marker},
		fmt.Errorf("json decode error: %s: %w", marker, context.DeadlineExceeded),
		fmt.Errorf("%s: %w", marker, context.Canceled),
		errors.New("raw message was: " + marker),
	} {
		p := upstreamProblem(err)
		data, _ := json.Marshal(p)
		if strings.Contains(string(data), marker) || p.Status < 400 {
			t.Errorf("error %d: problem %s", i, data)
		}
	}
}
