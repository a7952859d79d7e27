package keyvault_test

import (
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/kvassert/kvassert/internal/certcache"
	"github.com/kvassert/kvassert/internal/kvclient"
	"github.com/kvassert/kvassert/internal/testcert"
	"github.com/kvassert/kvassert/internal/testfixture"
	"github.com/kvassert/kvassert/keyvault"
	"github.com/kvassert/kvassert/telemetry"
)

// The leak tests: a vault and a token endpoint (an in-process transport)
// answer with a marker in their bodies; the marker must never appear in an
// error of this package, nor in the certificate cache's logs.

const (
	leakMarker = "LEAKMARKER"
	leakVault  = "leak.vault.azure.net"
	leakTenant = "11111111-2222-3333-4444-555555555555"
	leakClient = "66666666-7777-8888-9999-000000000000"
)

// leakAnswer is one answer of the fake vault or token endpoint.
type leakAnswer struct {
	status      int
	contentType string
	body        string
	header      http.Header
}

// leakTransport plays Key Vault (challenge, then the answer set) and the
// Entra token endpoint for azidentity.
type leakTransport struct {
	mu    sync.Mutex
	vault func(*http.Request) leakAnswer
	token leakAnswer
}

func (l *leakTransport) set(vault func(*http.Request) leakAnswer) {
	l.mu.Lock()
	l.vault = vault
	l.mu.Unlock()
}

func (l *leakTransport) Do(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		_, _ = io.Copy(io.Discard, req.Body)
	}
	var a leakAnswer
	switch {
	case req.URL.Host == leakVault && req.Header.Get("Authorization") == "":
		a = leakAnswer{status: 401, header: http.Header{"Www-Authenticate": {`Bearer authorization="https://login.microsoftonline.com/` + leakTenant + `", resource="https://vault.azure.net"`}}}
	case req.URL.Host == leakVault:
		l.mu.Lock()
		a = l.vault(req)
		l.mu.Unlock()
	case strings.HasSuffix(req.URL.Path, "/.well-known/openid-configuration"):
		base := "https://login.microsoftonline.com/" + leakTenant
		a = leakAnswer{status: 200, contentType: "application/json", body: `{"token_endpoint":"` + base + `/oauth2/v2.0/token","authorization_endpoint":"` + base + `/oauth2/v2.0/authorize","issuer":"https://login.microsoftonline.com/` + leakTenant + `/v2.0"}`}
	case strings.Contains(req.URL.Path, "discovery/instance"):
		a = leakAnswer{status: 200, contentType: "application/json", body: `{"tenant_discovery_endpoint":"https://login.microsoftonline.com/` + leakTenant + `/v2.0/.well-known/openid-configuration","metadata":[]}`}
	case strings.HasSuffix(req.URL.Path, "/token"):
		a = l.token
	default:
		a = leakAnswer{status: 404, body: "not here"}
	}
	resp := &http.Response{StatusCode: a.status, Status: fmt.Sprintf("%d %s", a.status, leakMarker), Header: http.Header{}, Request: req,
		Body: io.NopCloser(strings.NewReader(a.body)), ContentLength: int64(len(a.body))}
	for k, v := range a.header {
		resp.Header[k] = v
	}
	if a.contentType != "" {
		resp.Header.Set("Content-Type", a.contentType)
	}
	return resp, nil
}

// staticCredential hands out a fixed Key Vault token.
type staticCredential struct{}

func (staticCredential) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: "kv-token", ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// vaultError is a Key Vault error document whose message (and, in the
// hostile cases, code) carries the marker.
func vaultError(status int, code, inner, message string) func(*http.Request) leakAnswer {
	doc := map[string]any{"error": map[string]any{"code": code, "message": message, "innererror": map[string]any{"code": inner}}}
	b, _ := json.Marshal(doc)
	return func(*http.Request) leakAnswer {
		return leakAnswer{status: status, contentType: "application/json; charset=utf-8", body: string(b), header: http.Header{"X-Ms-Request-Id": {"abc-" + leakMarker}}}
	}
}

func rawBody(status int, body string) func(*http.Request) leakAnswer {
	return func(*http.Request) leakAnswer {
		return leakAnswer{status: status, contentType: "text/plain", body: body}
	}
}

const rbacMessage = "Caller is not authorized to perform action on resource. " + leakMarker + "\r\n" +
	"Caller: appid=" + leakClient + ";oid=x;iss=https://sts.windows.net/" + leakTenant + "/\r\n" +
	"Action: 'Microsoft.KeyVault/vaults/keys/sign/action'\r\n" +
	"Resource: '/subscriptions/x/" + leakMarker + "'\r\n"

var leakVaultAnswers = []struct {
	name   string
	answer func(*http.Request) leakAnswer
	status int
}{
	{"403 rbac", vaultError(403, "Forbidden", "ForbiddenByRbac", rbacMessage), 403},
	{"404 json", vaultError(404, "CertificateNotFound", "", "A certificate with (name/id) "+leakMarker+" was not found"), 404},
	{"429 json", vaultError(429, "Throttled", "", "Request was not processed because too many requests "+leakMarker), 429},
	{"500 json", vaultError(500, "InternalError", "", leakMarker+" stack trace"), 500},
	{"400 hostile code", vaultError(400, leakMarker+" code with spaces", leakMarker+" inner", leakMarker), 400},
	{"403 hostile rbac", vaultError(403, "Forbidden", "ForbiddenByRbac", "Caller: appid="+leakMarker+"\r\nAction: '"+leakMarker+"'"), 403},
	{"403 text", rawBody(403, leakMarker+" forbidden"), 403},
	{"404 text", rawBody(404, leakMarker), 404},
	{"429 text", rawBody(429, leakMarker), 429},
	{"500 html", rawBody(500, "<html>"+leakMarker+"</html>"), 500},
}

func leakOptions(tr *leakTransport) keyvault.SignerOptions {
	return keyvault.SignerOptions{
		ClientOptions: policy.ClientOptions{Transport: tr, Retry: policy.RetryOptions{MaxRetries: -1}},
		Throttle:      &oneShotThrottle{},
	}
}

// oneShotThrottle lets signs go until the first 429, then holds them off
// for good: a throttled sign ends at once, with the 429 as its last answer.
type oneShotThrottle struct {
	mu        sync.Mutex
	throttled bool
}

func (o *oneShotThrottle) Wait(context.Context) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.throttled {
		return errors.New("held off by the test's throttle")
	}
	return nil
}

func (o *oneShotThrottle) Throttled(time.Duration) {
	o.mu.Lock()
	o.throttled = true
	o.mu.Unlock()
}

func noMarker(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error", what)
		return
	}
	if s := fmt.Sprintf("%v %+v %#v", err, err, err); strings.Contains(s, leakMarker) {
		t.Errorf("%s: the answer's body reaches the error: %v", what, err)
	}
	for e := err; e != nil; e = errors.Unwrap(e) {
		if strings.Contains(e.Error(), leakMarker) {
			t.Errorf("%s: an error in the chain (%T) holds the answer's body", what, e)
		}
	}
	var re *azcore.ResponseError
	if errors.As(err, &re) && strings.Contains(re.Error(), leakMarker) {
		t.Errorf("%s: the *azcore.ResponseError in the chain holds the answer's body: %s", what, re.Error())
	}
}

func TestVaultErrorsHoldNoBodyText(t *testing.T) {
	tr := &leakTransport{}
	key := testcert.RSAKey(t, 0)
	ctx := context.Background()
	digest := sha256.Sum256([]byte("x"))
	for _, c := range leakVaultAnswers {
		tr.set(c.answer)
		opts := leakOptions(tr) // a Throttle of its own: the 429 cases hold it off
		_, err := keyvault.NewSigner(ctx, "https://"+leakVault+"/keys/k/0123456789abcdef0123456789abcdef", staticCredential{}, &opts)
		noMarker(t, c.name+": reading the key", err)
		s, err := keyvault.NewSigner(ctx, "https://"+leakVault+"/keys/k/0123456789abcdef0123456789abcdef", staticCredential{}, withPublicKey(&opts, &key.PublicKey))
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.SignContext(ctx, digest[:], crypto.SHA256)
		noMarker(t, c.name+": signing", err)
		var re *azcore.ResponseError
		if !errors.As(err, &re) || re.StatusCode != c.status {
			t.Errorf("%s: signing: no *azcore.ResponseError with status %d in the chain: %v", c.name, c.status, err)
		}
		cache, err := certcache.New("https://"+leakVault+"/", "c", staticCredential{}, (&certcache.Options{}).WithSigner(opts))
		if err != nil {
			t.Fatal(err)
		}
		_, err = cache.Certificate(ctx)
		noMarker(t, c.name+": reading the certificate", err)
		_, err = cache.Versions(ctx)
		noMarker(t, c.name+": listing versions", err)
	}
}

func TestVaultRBACRefusalTypedFields(t *testing.T) {
	tr := &leakTransport{}
	tr.set(leakVaultAnswers[0].answer)
	opts := leakOptions(tr)
	_, err := keyvault.NewSigner(context.Background(), "https://"+leakVault+"/keys/k/0123456789abcdef0123456789abcdef", staticCredential{}, &opts)
	se := kvclient.AsServiceError(err)
	if se == nil || se.StatusCode != 403 || se.ErrorCode != "Forbidden" || se.InnerCode != "ForbiddenByRbac" ||
		se.Action != "Microsoft.KeyVault/vaults/keys/sign/action" || se.Caller != leakClient || se.Host != leakVault || se.Method != "GET" {
		t.Errorf("typed fields: %+v (%v)", se, err)
	}
	// Hostile values are left out.
	tr.set(leakVaultAnswers[5].answer)
	_, err = keyvault.NewSigner(context.Background(), "https://"+leakVault+"/keys/k/0123456789abcdef0123456789abcdef", staticCredential{}, &opts)
	if se := kvclient.AsServiceError(err); se == nil || se.Action != "" || se.Caller != "" {
		t.Errorf("hostile RBAC message: %+v", se)
	}
}

// testCertificate answers a certificate read with a usable certificate.
func testCertificate(t *testing.T) func(*http.Request) leakAnswer {
	der := testcert.New(t, &testcert.Options{CommonName: "c"}).DER()
	const v = "0123456789abcdef0123456789abcdef"
	body := `{"id":"https://` + leakVault + `/certificates/c/` + v + `","kid":"https://` + leakVault + `/keys/c/` + v + `","cer":"` + base64.StdEncoding.EncodeToString(der) + `","attributes":{"enabled":true}}`
	return func(*http.Request) leakAnswer {
		return leakAnswer{status: 200, contentType: "application/json", body: body}
	}
}

// TestCertificateCacheLogsHoldNoBodyText: a failed background re-read is
// logged (WARN) without the vault's answer, at every level.
func TestCertificateCacheLogsHoldNoBodyText(t *testing.T) {
	tr := &leakTransport{}
	tr.set(testCertificate(t))
	logs := &safeBuffer{}
	clock := testfixture.NewClock(time.Now())
	cache, err := certcache.New("https://"+leakVault+"/", "c", staticCredential{}, (&certcache.Options{TTL: time.Minute, Now: clock.Now, Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}).WithSigner(leakOptions(tr)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cache.Certificate(context.Background()); err != nil {
		t.Fatal(err)
	}
	tr.set(leakVaultAnswers[0].answer)
	clock.Add(2 * time.Minute)
	if _, err := cache.Certificate(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() bool { return strings.Contains(logs.String(), "reading the certificate failed") })
	if strings.Contains(logs.String(), leakMarker) {
		t.Errorf("the vault's answer reaches the log:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "403") {
		t.Errorf("the log does not name the status:\n%s", logs.String())
	}
}

// malformedTokenAnswers are token endpoint answers whose bodies carry the
// marker: 200s MSAL cannot decode or use, and refusals.
var malformedTokenAnswers = []struct {
	name string
	a    leakAnswer
	code int
}{
	{"200 expires_in string", leakAnswer{status: 200, contentType: "application/json", body: `{"token_type":"Bearer","expires_in":"soon","access_token":"` + leakMarker + `"}`}, 0},
	{"200 token number", leakAnswer{status: 200, contentType: "application/json", body: `{"token_type":"Bearer","expires_in":3600,"access_token":1,"x":"` + leakMarker + `"}`}, 0},
	{"200 not json", leakAnswer{status: 200, contentType: "text/html", body: "<html>" + leakMarker + "</html>"}, 0},
	{"200 truncated", leakAnswer{status: 200, contentType: "application/json", body: `{"access_token":"` + leakMarker}, 0},
	{"400 refusal", leakAnswer{status: 400, contentType: "application/json", body: `{"error":"invalid_client","error_description":"AADSTS7000215: ` + leakMarker + `","error_codes":[7000215]}`}, 7000215},
	{"401 text", leakAnswer{status: 401, contentType: "text/plain", body: leakMarker}, 0},
	{"500 text", leakAnswer{status: 500, contentType: "text/plain", body: leakMarker}, 0},
}

// TestVaultCredentialErrorsHoldNoTokenText: the vault's credential (a
// real azidentity ClientSecretCredential) gets malformed answers from its
// token endpoint; no text of them (a Key Vault access token, for a
// malformed 200) reaches this package's errors.
func TestVaultCredentialErrorsHoldNoTokenText(t *testing.T) {
	digest := sha256.Sum256([]byte("x"))
	key := testcert.RSAKey(t, 0)
	for _, c := range malformedTokenAnswers {
		tr := &leakTransport{token: c.a}
		tr.set(testCertificate(t))
		cred, err := azidentity.NewClientSecretCredential(leakTenant, leakClient, "secret", &azidentity.ClientSecretCredentialOptions{
			ClientOptions: policy.ClientOptions{Transport: tr, Retry: policy.RetryOptions{MaxRetries: -1}}, DisableInstanceDiscovery: true,
		})
		if err != nil {
			t.Fatal(err)
		}
		opts := leakOptions(tr)
		s, err := keyvault.NewSigner(context.Background(), "https://"+leakVault+"/keys/k/0123456789abcdef0123456789abcdef", cred, withPublicKey(&opts, &key.PublicKey))
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.SignContext(context.Background(), digest[:], crypto.SHA256)
		noMarker(t, c.name+": signing", err)
		var ce *keyvault.CredentialError
		if !errors.As(err, &ce) || !ce.AuthenticationFailed || ce.Credential != "*azidentity.ClientSecretCredential" || ce.Code != c.code {
			t.Errorf("%s: %#v (%v)", c.name, ce, err)
		}
		var afe *azidentity.AuthenticationFailedError
		if errors.As(err, &afe) {
			t.Errorf("%s: azidentity's error (its text quotes the answer) is still in the chain", c.name)
		}
		cache, err := certcache.New("https://"+leakVault+"/", "c", cred, (&certcache.Options{}).WithSigner(opts))
		if err != nil {
			t.Fatal(err)
		}
		_, err = cache.Certificate(context.Background())
		noMarker(t, c.name+": reading the certificate", err)
	}
}

// TestVaultCredentialContextErrors: a cancelled credential call is still
// context.Canceled for errors.Is.
func TestVaultCredentialContextErrors(t *testing.T) {
	tr := &leakTransport{}
	tr.set(testCertificate(t))
	cache, err := certcache.New("https://"+leakVault+"/", "c", ctxCredential{}, (&certcache.Options{}).WithSigner(leakOptions(tr)))
	if err != nil {
		t.Fatal(err)
	}
	_, err = cache.Certificate(context.Background())
	if !errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), leakMarker) {
		t.Errorf("got %v", err)
	}
}

type ctxCredential struct{}

func (ctxCredential) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{}, fmt.Errorf("%s: %w", leakMarker, context.DeadlineExceeded)
}

// TestVaultSpansHoldNoBodyText: the Azure SDK's own spans (azkeys,
// azcertificates: the client span and the HTTP span, given kvassert's
// TracerProvider) carry no text of the vault's answer; azcore sets their
// status description to the error's text and to the status line.
func TestVaultSpansHoldNoBodyText(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	tr := &leakTransport{}
	key := testcert.RSAKey(t, 0)
	digest := sha256.Sum256([]byte("x"))
	for _, c := range leakVaultAnswers {
		tr.set(c.answer)
		opts := leakOptions(tr)
		opts.Telemetry = telemetry.Options{TracerProvider: tp}
		s, err := keyvault.NewSigner(context.Background(), "https://"+leakVault+"/keys/k/0123456789abcdef0123456789abcdef", staticCredential{}, withPublicKey(&opts, &key.PublicKey))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = s.SignContext(context.Background(), digest[:], crypto.SHA256)
		cache, err := certcache.New("https://"+leakVault+"/", "c", staticCredential{}, (&certcache.Options{}).WithSigner(opts))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = cache.Certificate(context.Background())
	}
	spans := rec.Ended()
	if len(spans) == 0 {
		t.Fatal("no spans recorded")
	}
	errored := 0
	for _, sp := range spans {
		if sp.Status().Code == codes.Error {
			errored++
		}
		text := sp.Name() + " " + sp.Status().Description + fmt.Sprint(sp.Attributes())
		for _, ev := range sp.Events() {
			text += ev.Name + fmt.Sprint(ev.Attributes)
		}
		if strings.Contains(text, leakMarker) {
			t.Errorf("span %q holds the vault's answer: %s", sp.Name(), text)
		}
	}
	if errored == 0 {
		t.Error("no span has an error status")
	}
}

// TestVaultMalformedSuccessHoldsNoBodyText: a 200 whose body the SDK cannot
// decode (a field of the wrong type) is an error without the body's text.
// (A guard: the SDK's decoding errors name types, not values.)
func TestVaultMalformedSuccessHoldsNoBodyText(t *testing.T) {
	key := testcert.RSAKey(t, 0)
	digest := sha256.Sum256([]byte("x"))
	bodies := []string{
		`{"kid":"https://` + leakVault + `/keys/k/0123456789abcdef0123456789abcdef","value":"` + leakMarker + `!","attributes":{"created":"` + leakMarker + `"}}`,
		`{"id":"` + leakMarker + `","attributes":{"created":"` + leakMarker + `","enabled":"` + leakMarker + `"}}`,
		`{"value":[{"id":"x","attributes":{"created":"` + leakMarker + `"}}],"nextLink":5}`,
		`{"kid":` + leakMarker + `}`,
		leakMarker,
		`{"key":{"kty":"RSA","n":"` + leakMarker + `","e":"AQAB"},"attributes":{"created":"` + leakMarker + `"}}`,
	}
	for i, b := range bodies {
		tr := &leakTransport{}
		tr.set(func(*http.Request) leakAnswer {
			return leakAnswer{status: 200, contentType: "application/json", body: b}
		})
		opts := leakOptions(tr)
		_, err := keyvault.NewSigner(context.Background(), "https://"+leakVault+"/keys/k/0123456789abcdef0123456789abcdef", staticCredential{}, &opts)
		noMarker(t, fmt.Sprintf("body %d: reading the key", i), err)
		s, err := keyvault.NewSigner(context.Background(), "https://"+leakVault+"/keys/k/0123456789abcdef0123456789abcdef", staticCredential{}, withPublicKey(&opts, &key.PublicKey))
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.SignContext(context.Background(), digest[:], crypto.SHA256)
		noMarker(t, fmt.Sprintf("body %d: signing", i), err)
		cache, err := certcache.New("https://"+leakVault+"/", "c", staticCredential{}, (&certcache.Options{}).WithSigner(opts))
		if err != nil {
			t.Fatal(err)
		}
		_, err = cache.Certificate(context.Background())
		noMarker(t, fmt.Sprintf("body %d: reading the certificate", i), err)
		if _, err = cache.Versions(context.Background()); err != nil { // some bodies are a valid (empty) list
			noMarker(t, fmt.Sprintf("body %d: listing versions", i), err)
		}
	}
}
