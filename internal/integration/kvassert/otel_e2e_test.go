package kvassert_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/internal/credclock"
	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/internal/holdoff"
	"github.com/kvassert/kvassert/internal/integration/obstest"
	"github.com/kvassert/kvassert/internal/obs"
	"github.com/kvassert/kvassert/internal/rootaccess"
	"github.com/kvassert/kvassert/internal/testcert"
	"github.com/kvassert/kvassert/internal/testfixture"
	"github.com/kvassert/kvassert/keyvault"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// These tests run the real credential and Key Vault certificate source
// against the emulator with an SDK MeterProvider (ManualReader) and
// TracerProvider (span recorder) in their options, and check what an
// operator would see.

// otelEnv is the demo world with telemetry recorded.
type otelEnv struct {
	emu  *kvasserttest.Emulator
	rec  *obstest.Recorder
	src  *recordingSource
	cred *kvassert.Credential
	host string // the vault's host (server.address)
}

// recordingSource remembers every assertion it made, for the leak scan.
type recordingSource struct {
	*kvassert.KeyVaultCertificateSource
	mu         sync.Mutex
	assertions []string
}

func (s *recordingSource) Assertion(ctx context.Context, clientID, endpoint string) (string, error) {
	a, err := s.KeyVaultCertificateSource.Assertion(ctx, clientID, endpoint)
	if a != "" {
		s.mu.Lock()
		s.assertions = append(s.assertions, a)
		s.mu.Unlock()
	}
	return a, err
}

// newOTelEnv builds the env; kv adjusts the source's Key Vault options
// (each env has its own throttling gate, so that no other test waits).
func newOTelEnv(t *testing.T, kv func(*keyvault.SignerOptions)) *otelEnv {
	t.Helper()
	e := kvasserttest.NewTB(t, scenario.Demo(), nil)
	r := obstest.New(t)
	src := testfixture.NewSource(t, e, scenario.DemoCertificate, func(o *kvassert.KeyVaultCertificateOptions) {
		ko := keyvault.SignerOptions{ClientOptions: o.ClientOptions, Throttle: holdoff.New(), Telemetry: r.Options}
		if kv != nil {
			kv(&ko)
		}
		o.ClientOptions, o.Throttle, o.MaxThrottleWait, o.Telemetry = ko.ClientOptions, ko.Throttle, ko.MaxThrottleWait, ko.Telemetry
	})
	rs := &recordingSource{KeyVaultCertificateSource: src}
	cred := testfixture.NewCredential(t, e, rs, func(o *kvassert.CredentialOptions) { o.Telemetry = r.Options })
	host := strings.TrimSuffix(strings.TrimPrefix(e.VaultURL(scenario.DemoVault), "https://"), "/")
	return &otelEnv{emu: e, rec: r, src: rs, cred: cred, host: host}
}

func (v *otelEnv) get(tenant string) (string, error) {
	tok, err := v.cred.GetToken(context.Background(), policy.TokenRequestOptions{TenantID: tenant, Scopes: []string{graph}})
	return tok.Token, err
}

// noLeaks scans everything recorded for the tokens given, every assertion
// the source made and the vault credential's secret.
func (v *otelEnv) noLeaks(t *testing.T, rm metricdata.ResourceMetrics, tokens ...string) {
	t.Helper()
	v.src.mu.Lock()
	forbidden := append(append([]string{emuhook.DemoWorkloadSecret}, tokens...), v.src.assertions...)
	v.src.mu.Unlock()
	if len(forbidden) < 2 {
		t.Fatal("nothing to scan for: no token or assertion was recorded")
	}
	if leaks := obstest.Leaks(rm, v.rec.Spans.Ended(), forbidden...); len(leaks) != 0 {
		t.Errorf("secrets in telemetry: %v", leaks)
	}
}

// point returns the value of metric name's point whose attributes render
// as attrs ("k=v,k=v", sorted).
func point(rm metricdata.ResourceMetrics, name, attrs string) (float64, bool) {
	for _, p := range obstest.Points(rm, name) {
		if obstest.Attrs(p.Attrs) == attrs {
			return p.Value, true
		}
	}
	return 0, false
}

// wantPoint fails the test with msg and the metric's points unless name
// has a point with attrs whose value is want.
func wantPoint(t *testing.T, rm metricdata.ResourceMetrics, name, attrs string, want float64, msg string) {
	t.Helper()
	if n, ok := point(rm, name, attrs); !ok || n != want {
		t.Errorf("%s:%s", msg, points(rm, name))
	}
}

// points renders metric name's points for failure messages.
func points(rm metricdata.ResourceMetrics, name string) string {
	var b strings.Builder
	for _, p := range obstest.Points(rm, name) {
		fmt.Fprintf(&b, "\n  %s {%s} = %v (sum %v)", name, obstest.Attrs(p.Attrs), p.Value, p.Sum)
	}
	if b.Len() == 0 {
		return "\n  " + name + ": no points"
	}
	return b.String()
}

func spanNames(spans []sdktrace.ReadOnlySpan) []string {
	var names []string
	for _, s := range spans {
		names = append(names, s.Name())
	}
	return names
}

func childOf(child, parent sdktrace.ReadOnlySpan) bool {
	return child != nil && parent != nil && child.Parent().SpanID() == parent.SpanContext().SpanID() &&
		child.SpanContext().TraceID() == parent.SpanContext().TraceID()
}

func attrOf(s sdktrace.ReadOnlySpan, key string) string {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value.Emit()
		}
	}
	return ""
}

// TestTelemetryCacheHit: hits are counted as cache_hit and make no span.
func TestTelemetryCacheHit(t *testing.T) {
	v := newOTelEnv(t, nil)
	tok, err := v.get(scenario.DemoContosoTenant)
	if err != nil {
		t.Fatal(err)
	}
	spans := len(v.rec.Spans.Ended())
	for range 5 {
		if _, err := v.get(scenario.DemoContosoTenant); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(v.rec.Spans.Ended()); n != spans {
		t.Errorf("5 cache hits made %d spans: %v", n-spans, spanNames(v.rec.Spans.Ended()[spans:]))
	}
	rm := v.rec.Collect(t)
	wantPoint(t, rm, obs.MetricTokenRequests, "kvassert.token.outcome=cache_hit", 5, "want 5 cache hits")
	wantPoint(t, rm, obs.MetricTokenRequests, "kvassert.token.outcome=acquired", 1, "want 1 acquired")
	wantPoint(t, rm, obs.MetricTokenCachedCount, "", 1, "want 1 cached token")
	wantPoint(t, rm, obs.MetricTokenAcquireDuration, "", 1, "want 1 acquisition")
	v.noLeaks(t, rm, tok)
}

// TestTelemetryColdAcquisitionNests: one trace per acquisition, ours ->
// Key Vault sign (azkeys' and azcore's spans under it) and token request
// (azcore's HTTP span under it); the vault's metrics are recorded.
func TestTelemetryColdAcquisitionNests(t *testing.T) {
	v := newOTelEnv(t, nil)
	tok, err := v.get(scenario.DemoContosoTenant)
	if err != nil {
		t.Fatal(err)
	}
	ended := v.rec.Spans.Ended()
	names := spanNames(ended)
	t.Logf("spans: %v", names)
	acquire := v.rec.Span(obs.SpanAcquireToken)
	if len(acquire) != 1 || acquire[0].Parent().IsValid() {
		t.Fatalf("want one root %s span, spans %v", obs.SpanAcquireToken, names)
	}
	root := acquire[0]
	if attrOf(root, obs.AttrTenantID) != scenario.DemoContosoTenant || attrOf(root, obs.AttrTokenScope) != graph || root.Status().Code == codes.Error {
		t.Errorf("acquire span attributes %v, status %v", root.Attributes(), root.Status())
	}
	one := func(name string) sdktrace.ReadOnlySpan {
		s := v.rec.Span(name)
		if len(s) != 1 {
			t.Fatalf("%d %s spans, want 1 (spans %v)", len(s), name, names)
		}
		return s[0]
	}
	read, sign, request := one(obs.SpanReadCertificate), one(obs.SpanSign), one(obs.SpanTokenRequest)
	for _, s := range []sdktrace.ReadOnlySpan{read, sign, request} {
		if !childOf(s, root) {
			t.Errorf("%s is not a child of %s", s.Name(), obs.SpanAcquireToken)
		}
	}
	if attrOf(sign, obs.AttrServerAddress) != v.host {
		t.Errorf("sign span attributes %v, want server.address %s", sign.Attributes(), v.host)
	}
	if !childOf(one("Client.GetCertificate"), read) {
		t.Errorf("azcertificates' Client.GetCertificate is not under %s", obs.SpanReadCertificate)
	}
	azSign := one("Client.Sign")
	if !childOf(azSign, sign) {
		t.Errorf("azkeys' Client.Sign is not under %s", obs.SpanSign)
	}
	var signHTTP, tokenHTTP int
	for _, s := range ended {
		switch {
		case s.Name() != "HTTP POST":
		case childOf(s, azSign):
			signHTTP++
		case childOf(s, request):
			tokenHTTP++
		}
	}
	if signHTTP == 0 || tokenHTTP != 1 {
		t.Errorf("HTTP POST spans: %d under Client.Sign (want >= 1), %d under %s (want 1)", signHTTP, tokenHTTP, obs.SpanTokenRequest)
	}
	for _, s := range ended {
		if s.SpanContext().TraceID() != root.SpanContext().TraceID() {
			t.Errorf("span %s is in another trace", s.Name())
		}
	}

	rm := v.rec.Collect(t)
	wantPoint(t, rm, obs.MetricSignDuration, "server.address="+v.host, 1, "want 1 sign")
	wantPoint(t, rm, obs.MetricThrottleWaitDuration, "server.address="+v.host, 1, "want 1 wait at the gate")
	wantPoint(t, rm, obs.MetricCertificateReads, "kvassert.certificate.name="+scenario.DemoCertificate+",server.address="+v.host, 1, "want 1 certificate read")
	wantPoint(t, rm, obs.MetricTokenRequests, "kvassert.token.outcome=acquired", 1, "want 1 acquired")
	if p := obstest.Points(rm, obs.MetricThrottledResponses); len(p) != 0 {
		t.Errorf("429s counted without throttling:%s", points(rm, obs.MetricThrottledResponses))
	}
	v.noLeaks(t, rm, tok)
}

// TestTelemetryThrottledSign: a 429 that is waited out is counted and its
// wait recorded; a hold-off longer than the sign's budget fails the sign,
// the acquisition and GetToken with error.type "throttled".
func TestTelemetryThrottledSign(t *testing.T) {
	v := newOTelEnv(t, func(o *keyvault.SignerOptions) { o.MaxThrottleWait = 3 * time.Second })
	// Warm the certificate so that the faults below hit only signs.
	if _, err := rootaccess.Cache(v.src.KeyVaultCertificateSource).Certificate(context.Background()); err != nil {
		t.Fatal(err)
	}
	v.emu.InjectFault(kvasserttest.OpKeySign, kvasserttest.Fault{Status: 429, RetryAfter: time.Second, Times: 1})
	tok, err := v.get(scenario.DemoContosoTenant)
	if err != nil {
		t.Fatalf("a 1 s hold-off within a 3 s budget: %v", err)
	}
	rm := v.rec.Collect(t)
	wantPoint(t, rm, obs.MetricThrottledResponses, "server.address="+v.host, 1, "want one 429")
	for _, p := range obstest.Points(rm, obs.MetricThrottleWaitDuration) {
		// The gate stays shut for the answer's Retry-After (1 s).
		if p.Value != 2 || p.Sum < 0.9 {
			t.Errorf("want 2 waits at the gate, one of the 1 s hold-off:%s", points(rm, obs.MetricThrottleWaitDuration))
		}
	}
	if ev := v.rec.Span(obs.SpanSign); len(ev) != 1 || len(ev[0].Events()) != 2 || ev[0].Events()[1].Name != obs.EventThrottleWait {
		t.Errorf("sign spans %v: want one with two %s events", ev, obs.EventThrottleWait)
	}

	v.emu.InjectFault(kvasserttest.OpKeySign, kvasserttest.Fault{Status: 429, RetryAfter: 30 * time.Second, Times: 1})
	_, err = v.get(emuhook.DemoFabrikamTenant)
	if err == nil {
		t.Fatal("a 30 s hold-off past the 3 s budget: no error")
	}
	rm = v.rec.Collect(t)
	wantPoint(t, rm, obs.MetricSignDuration, "error.type=throttled,server.address="+v.host, 1, "want one sign with error.type=throttled")
	wantPoint(t, rm, obs.MetricTokenRequests, "error.type=throttled,kvassert.token.outcome=error", 1, "want one GetToken error throttled")
	wantPoint(t, rm, obs.MetricThrottledResponses, "server.address="+v.host, 2, "want two 429s in all")
	for _, name := range []string{obs.SpanSign, obs.SpanAcquireToken} {
		s := v.rec.Span(name)
		if last := s[len(s)-1]; last.Status().Code != codes.Error || last.Status().Description != "throttled" || attrOf(last, obs.AttrErrorType) != "throttled" {
			t.Errorf("last %s span: status %v, attributes %v; want Error \"throttled\"", name, last.Status(), last.Attributes())
		}
	}
	v.noLeaks(t, rm, tok)
}

// TestTelemetryAADSTSRefusal: Entra refuses a tenant that never consented;
// error.type AADSTS700016 on the request count, the acquisition and the
// token request, whose span status is Error.
func TestTelemetryAADSTSRefusal(t *testing.T) {
	v := newOTelEnv(t, nil)
	_, err := v.get(emuhook.DemoWingtipTenant)
	var ae *kvassert.AuthError
	if !errors.As(err, &ae) || ae.Code != 700016 {
		t.Fatalf("err = %v, want an AuthError AADSTS700016", err)
	}
	rm := v.rec.Collect(t)
	wantPoint(t, rm, obs.MetricTokenRequests, "error.type=AADSTS700016,kvassert.token.outcome=error", 1, "want one refusal")
	wantPoint(t, rm, obs.MetricTokenAcquireDuration, "error.type=AADSTS700016", 1, "want one failed acquisition")
	for _, name := range []string{obs.SpanAcquireToken, obs.SpanTokenRequest} {
		s := v.rec.Span(name)
		if len(s) == 0 {
			t.Fatalf("no %s span (spans %v)", name, spanNames(v.rec.Spans.Ended()))
		}
		if s[0].Status().Code != codes.Error || s[0].Status().Description != "AADSTS700016" || attrOf(s[0], obs.AttrErrorType) != "AADSTS700016" {
			t.Errorf("%s span: status %v, attributes %v; want Error AADSTS700016", name, s[0].Status(), s[0].Attributes())
		}
	}
	v.noLeaks(t, rm)
}

// TestTelemetryFailedBackgroundRefresh: a refresh that fails (the vault
// refuses the sign) is counted with its error.type while the cached token
// is still served.
func TestTelemetryFailedBackgroundRefresh(t *testing.T) {
	v := newOTelEnv(t, nil)
	tok, err := v.get(scenario.DemoContosoTenant)
	if err != nil {
		t.Fatal(err)
	}
	var offset time.Duration
	var mu sync.Mutex
	credclock.Set(v.cred, func() time.Time { mu.Lock(); defer mu.Unlock(); return time.Now().Add(offset) })
	mu.Lock()
	offset = 56 * time.Minute // past the refresh time of the emulator's 1 h token, before its end
	mu.Unlock()
	v.emu.InjectFault(kvasserttest.OpKeySign, kvasserttest.Fault{Status: 403})
	if got, err := v.get(scenario.DemoContosoTenant); err != nil || got != tok {
		t.Fatalf("during the refresh: err %v, same token %v", err, got == tok)
	}
	var rm metricdata.ResourceMetrics
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		rm = v.rec.Collect(t)
		if len(obstest.Points(rm, obs.MetricTokenRefreshes)) > 0 || time.Now().After(deadline) {
			break
		}
	}
	wantPoint(t, rm, obs.MetricTokenRefreshes, "error.type=Forbidden", 1, "want one failed refresh with error.type=Forbidden")
	wantPoint(t, rm, obs.MetricTokenRequests, "kvassert.token.outcome=cache_hit", 1, "the call during the refresh is a cache hit")
	v.noLeaks(t, rm, tok)
}

// TestTelemetryExpiringCertificate: the time-left gauge is the active
// certificate's notAfter, counted from now, and no rotation is pending.
func TestTelemetryExpiringCertificate(t *testing.T) {
	v := newOTelEnv(t, nil)
	ctx := context.Background()
	notAfter := time.Now().Add(10 * 24 * time.Hour).Truncate(time.Second)
	testfixture.Import(t, v.emu, "expiring", testcert.New(t, &testcert.Options{Serial: 8, CommonName: "expiring", NotAfter: notAfter}))
	src := testfixture.NewSource(t, v.emu, "expiring", func(o *kvassert.KeyVaultCertificateOptions) { o.Telemetry = v.rec.Options })
	if p := obstest.Points(v.rec.Collect(t), obs.MetricCertificateTimeLeft); len(p) != 0 {
		t.Fatalf("a time left before any read:%v", p)
	}
	c, err := rootaccess.Cache(src).Certificate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rm := v.rec.Collect(t)
	attrs := "kvassert.certificate.name=expiring,kvassert.certificate.version=" + c.Version + ",server.address=" + v.host
	left, ok := point(rm, obs.MetricCertificateTimeLeft, attrs)
	want := time.Until(notAfter).Seconds()
	if !ok || left > want+1 || left < want-300 {
		t.Errorf("time left %v s (found %v), want about %v s:%s", left, ok, want, points(rm, obs.MetricCertificateTimeLeft))
	}
	pending := "kvassert.certificate.name=expiring,kvassert.certificate.newest_version=" + c.Version + ",kvassert.certificate.version=" + c.Version + ",server.address=" + v.host
	wantPoint(t, rm, obs.MetricCertificateRotationPending, pending, 0, "rotation pending")
	runtime.KeepAlive(src) // the gauges report for as long as the source lives
}
