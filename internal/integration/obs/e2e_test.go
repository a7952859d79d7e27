package obs_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/assertion"
	"github.com/kvassert/kvassert/internal/certcache"
	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/internal/integration/obstest"
	"github.com/kvassert/kvassert/internal/obs"
	"github.com/kvassert/kvassert/internal/testfixture"
	"github.com/kvassert/kvassert/keyvault"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// world is the demo scenario plus a Managed HSM used only for throttling,
// so that its process-wide throttling gate stays shut for no other test.
func world() *scenario.Scenario {
	return testfixture.WithHSM("kvassert-obs-throttled", scenario.VaultKey{Name: "rsa", Kty: "RSA-HSM"})
}

// throttlePolicy calls the test's own KeyVault.Throttled for each 429, as
// the signer's status policy does for the instruments of its
// Options.Telemetry (tested through the real credential in the root
// package's otel_e2e_test.go).
type throttlePolicy struct{ k *obs.KeyVault }

func (p throttlePolicy) Do(req *policy.Request) (*http.Response, error) {
	resp, err := req.Next()
	if resp != nil && resp.StatusCode == http.StatusTooManyRequests {
		p.k.Throttled()
	}
	return resp, err
}

// TestColdAcquisitionSpansNest runs the steps of a cold acquisition through
// the hooks, with the real azcertificates/azkeys clients and an azcore
// pipeline against the emulator, all given the recorder's TracerProvider
// through AzureTracingProvider: the Azure SDK's spans must nest under ours,
// and nothing secret may reach any attribute.
func TestColdAcquisitionSpansNest(t *testing.T) {
	e := kvasserttest.NewTB(t, world(), nil)
	r := obstest.New(t)
	co := e.ClientOptions()
	co.TracingProvider = obs.AzureTracingProvider(r.Options)
	vaultCred := testfixture.VaultCredential(t, e)
	certs, err := certcache.New(e.VaultURL(scenario.DemoVault), scenario.DemoCertificate, vaultCred,
		&certcache.Options{ClientOptions: co})
	if err != nil {
		t.Fatal(err)
	}
	host := strings.TrimSuffix(strings.TrimPrefix(e.VaultURL(scenario.DemoVault), "https://"), "/")
	kv := obs.NewKeyVault(r.Options, host)
	cred := obs.NewCredential(r.Options)
	tenant := scenario.DemoContosoTenant
	endpoint := emuhook.TokenEndpoint(tenant)

	ctx, endAcquire := cred.StartAcquire(context.Background(), tenant, graph)
	// The assertion: certificate read, then one Key Vault sign.
	rctx, endRead := kv.StartCertificateRead(ctx, scenario.DemoCertificate)
	c, err := certs.Certificate(rctx)
	endRead(err)
	if err != nil {
		t.Fatal(err)
	}
	b, err := assertion.New(c.Certificate, c.Signer, nil)
	if err != nil {
		t.Fatal(err)
	}
	sctx, endSign := kv.StartSign(ctx)
	jwt, err := b.Build(sctx, scenario.DemoAppClientID, endpoint)
	endSign(err)
	if err != nil {
		t.Fatal(err)
	}
	// The token request, through an azcore pipeline as the credential sends it.
	tctx, endRequest := cred.StartTokenRequest(ctx)
	token, err := postToken(tctx, co, endpoint, jwt)
	endRequest(err)
	endAcquire(err)
	if err != nil {
		t.Fatal(err)
	}

	byName := map[string]sdktrace.ReadOnlySpan{}
	var names []string
	for _, s := range r.Spans.Ended() {
		names = append(names, s.Name())
		if _, seen := byName[s.Name()]; !seen {
			byName[s.Name()] = s
		}
	}
	t.Logf("spans: %v", names)
	acquire := byName[obs.SpanAcquireToken]
	if acquire == nil || acquire.Parent().IsValid() {
		t.Fatalf("no root %s span among %v", obs.SpanAcquireToken, names)
	}
	childOf := func(child, parent sdktrace.ReadOnlySpan) bool {
		return child != nil && parent != nil && child.Parent().SpanID() == parent.SpanContext().SpanID() && child.SpanContext().TraceID() == acquire.SpanContext().TraceID()
	}
	read, sign, request := byName[obs.SpanReadCertificate], byName[obs.SpanSign], byName[obs.SpanTokenRequest]
	for _, s := range []sdktrace.ReadOnlySpan{read, sign, request} {
		if !childOf(s, acquire) {
			t.Errorf("span %v is not a child of %s", s, obs.SpanAcquireToken)
		}
	}
	if g := byName["Client.GetCertificate"]; !childOf(g, read) {
		t.Errorf("azcertificates' Client.GetCertificate is not a child of %s (spans %v)", obs.SpanReadCertificate, names)
	}
	azSign := byName["Client.Sign"]
	if !childOf(azSign, sign) {
		t.Errorf("azkeys' Client.Sign is not a child of %s (spans %v)", obs.SpanSign, names)
	}
	// azcore's HTTP spans: the sign's POSTs under Client.Sign, the token POST
	// under kvassert.token_request.
	var signHTTP, tokenHTTP int
	for _, s := range r.Spans.Ended() {
		if s.Name() != "HTTP POST" {
			continue
		}
		switch {
		case childOf(s, azSign):
			signHTTP++
		case childOf(s, request):
			tokenHTTP++
			if !hasAttr(s.Attributes(), "http.status_code", "200") {
				t.Errorf("token POST span attributes %v, want status 200", s.Attributes())
			}
		}
	}
	if signHTTP == 0 || tokenHTTP != 1 {
		t.Errorf("HTTP POST spans: %d under Client.Sign (want >= 1), %d under %s (want 1)", signHTTP, tokenHTTP, obs.SpanTokenRequest)
	}
	for _, s := range r.Spans.Ended() {
		if s.Status().Code == codes.Error && !strings.HasPrefix(s.Name(), "HTTP ") { // the vault's 401 challenges are HTTP errors
			t.Errorf("span %s has status Error: %s", s.Name(), s.Status().Description)
		}
	}

	rm := r.Collect(t)
	if v, ok := sumOf(rm, obs.MetricSignDuration, "server.address="+host); !ok || v != 1 {
		t.Errorf("signs:%s", dump(rm, obs.MetricSignDuration))
	}
	if v, ok := sumOf(rm, obs.MetricCertificateReads, "kvassert.certificate.name="+scenario.DemoCertificate+",server.address="+host); !ok || v != 1 {
		t.Errorf("certificate reads:%s", dump(rm, obs.MetricCertificateReads))
	}
	if v, ok := sumOf(rm, obs.MetricTokenAcquireDuration, ""); !ok || v != 1 {
		t.Errorf("acquisitions:%s", dump(rm, obs.MetricTokenAcquireDuration))
	}

	// No token, assertion or secret anywhere; the scan itself is tested in obstest.
	if leaks := obstest.Leaks(rm, r.Spans.Ended(), token, jwt, emuhook.DemoWorkloadSecret); len(leaks) != 0 {
		t.Errorf("secrets in telemetry: %v", leaks)
	}
}

// postToken sends a client-credentials request with the assertion through
// an azcore pipeline and returns the access token.
func postToken(ctx context.Context, co policy.ClientOptions, endpoint, jwt string) (string, error) {
	client, err := azcore.NewClient("kvassert", "v0.0.1", runtime.PipelineOptions{}, &co)
	if err != nil {
		return "", err
	}
	req, err := runtime.NewRequest(ctx, http.MethodPost, endpoint)
	if err != nil {
		return "", err
	}
	form := url.Values{
		"grant_type":            {"client_credentials"},
		"client_id":             {scenario.DemoAppClientID},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion":      {jwt},
		"scope":                 {graph},
	}
	if err := req.SetBody(streaming.NopCloser(bytes.NewReader([]byte(form.Encode()))), "application/x-www-form-urlencoded"); err != nil {
		return "", err
	}
	resp, err := client.Pipeline().Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", errors.New("token endpoint answered " + resp.Status)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(body, &tok); err != nil || tok.AccessToken == "" {
		return "", errors.New("no access token in the answer")
	}
	return tok.AccessToken, nil
}

// TestThrottledSign: a sign the vault throttles past the caller's deadline
// ends its span and duration with error.type "throttled", and its 429 is
// counted.
func TestThrottledSign(t *testing.T) {
	e := kvasserttest.NewTB(t, world(), nil)
	r := obstest.New(t)
	const host = "kvassert-obs-throttled.managedhsm.azure.net"
	kv := obs.NewKeyVault(r.Options, host)
	co := e.ClientOptions()
	co.TracingProvider = obs.AzureTracingProvider(r.Options)
	co.PerRetryPolicies = []policy.Policy{throttlePolicy{kv}}
	vaultCred := testfixture.VaultCredential(t, e)
	ctx := context.Background()
	s, err := keyvault.NewSigner(ctx, "https://"+host+"/keys/rsa", vaultCred, &keyvault.SignerOptions{ClientOptions: co})
	if err != nil {
		t.Fatal(err)
	}
	e.InjectFault(kvasserttest.OpKeySign, kvasserttest.Fault{Status: 429, RetryAfter: 30 * time.Second, Times: 1})
	t.Cleanup(func() { e.ClearFaults() })
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	d := sha256.Sum256([]byte("x"))
	sctx, end := kv.StartSign(short)
	_, err = s.SignContext(sctx, d[:], crypto.SHA256)
	end(err)
	if err == nil {
		t.Fatal("the sign succeeded; the fault did not apply")
	}
	rm := r.Collect(t)
	if v, ok := sumOf(rm, obs.MetricSignDuration, "error.type=throttled,server.address="+host); !ok || v != 1 {
		t.Errorf("sign durations:%s; want one with error.type=throttled", dump(rm, obs.MetricSignDuration))
	}
	if v, ok := sumOf(rm, obs.MetricThrottledResponses, "server.address="+host); !ok || v != 1 {
		t.Errorf("429s:%s; want 1", dump(rm, obs.MetricThrottledResponses))
	}
	spans := r.Span(obs.SpanSign)
	if len(spans) != 1 || spans[0].Status().Code != codes.Error || spans[0].Status().Description != "throttled" {
		t.Fatalf("sign spans %v, want one with status Error \"throttled\"", spans)
	}
}

// TestAADSTSRefusal: Entra refuses a tenant where the app is not consented;
// the real kvassert.AuthError becomes error.type AADSTS700016 on the span,
// the duration and the request count.
func TestAADSTSRefusal(t *testing.T) {
	w := testfixture.NewWorld(t, &testfixture.WorldOptions{Scenario: world()})
	kc := w.Cred
	r := obstest.New(t)
	cred := obs.NewCredential(r.Options)
	tenant := emuhook.DemoWingtipTenant // never consented
	ctx, end := cred.StartAcquire(context.Background(), tenant, graph)
	_, err := kc.GetToken(ctx, policy.TokenRequestOptions{TenantID: tenant, Scopes: []string{graph}})
	end(err)
	cred.Served(tenant, err)
	var ae *kvassert.AuthError
	if !errors.As(err, &ae) || ae.Code != 700016 {
		t.Fatalf("err = %v, want an AuthError AADSTS700016", err)
	}
	rm := r.Collect(t)
	if v, ok := sumOf(rm, obs.MetricTokenRequests, "error.type=AADSTS700016,kvassert.token.outcome=error"); !ok || v != 1 {
		t.Errorf("requests:%s", dump(rm, obs.MetricTokenRequests))
	}
	if v, ok := sumOf(rm, obs.MetricTokenAcquireDuration, "error.type=AADSTS700016"); !ok || v != 1 {
		t.Errorf("acquisitions:%s", dump(rm, obs.MetricTokenAcquireDuration))
	}
	s := r.Span(obs.SpanAcquireToken)
	if len(s) != 1 || s[0].Status().Code != codes.Error || s[0].Status().Description != "AADSTS700016" {
		t.Fatalf("acquire spans %v, want status Error AADSTS700016", s)
	}
	if leaks := obstest.Leaks(rm, r.Spans.Ended(), emuhook.DemoWorkloadSecret); len(leaks) != 0 {
		t.Errorf("secret in telemetry: %v", leaks)
	}
}
