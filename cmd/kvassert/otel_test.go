package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// collector stands in for an OpenTelemetry collector's OTLP/HTTP receiver:
// it counts the POSTs per path and keeps the last API key header.
type collector struct {
	*httptest.Server
	mu     sync.Mutex
	posts  map[string]int
	apiKey string
}

func newCollector(t *testing.T) *collector {
	c := &collector{posts: map[string]int{}}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		if r.Method == http.MethodPost && r.Header.Get("Content-Type") == "application/x-protobuf" {
			c.posts[r.URL.Path]++
		}
		c.apiKey = r.Header.Get("Api-Key")
		c.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(c.Close)
	return c
}

func (c *collector) count(path string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.posts[path]
}

// clearOTelEnv makes the test independent of the shell's OTEL_* variables.
func clearOTelEnv(t *testing.T) {
	for _, k := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
		"OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER", "OTEL_EXPORTER_OTLP_PROTOCOL",
		"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "OTEL_EXPORTER_OTLP_HEADERS"} {
		t.Setenv(k, "")
	}
}

// emit makes one span and one measurement.
func emit(p otelProviders) {
	if p.traces != nil {
		_, s := p.traces.Tracer("test").Start(context.Background(), "kvassert.acquire_token")
		s.End()
	}
	if p.metrics != nil {
		c, _ := p.metrics.Meter("test").Int64Counter("kvassert.token.requests")
		c.Add(context.Background(), 1, metric.WithAttributes())
	}
}

func TestOTelExportsToTheOTLPEndpoint(t *testing.T) {
	clearOTelEnv(t)
	c := newCollector(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", c.URL)
	t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "api-key=collector-key")
	ctx := context.Background()
	p, err := newOTelProviders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if p.traces == nil || p.metrics == nil {
		t.Fatalf("providers: traces %v, metrics %v; want both", p.traces, p.metrics)
	}
	emit(p)
	if err := p.shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if c.count("/v1/traces") != 1 || c.count("/v1/metrics") != 1 {
		t.Fatalf("POSTs: %v, want one to /v1/traces and one to /v1/metrics", c.posts)
	}
	if c.apiKey != "collector-key" {
		t.Errorf("OTEL_EXPORTER_OTLP_HEADERS not honoured: api-key %q", c.apiKey)
	}
}

func TestOTelSignalSpecificEndpoint(t *testing.T) {
	clearOTelEnv(t)
	c := newCollector(t)
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", c.URL+"/custom/traces")
	ctx := context.Background()
	p, err := newOTelProviders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if p.traces == nil || p.metrics != nil {
		t.Fatalf("providers: traces %v, metrics %v; want traces only", p.traces, p.metrics)
	}
	emit(p)
	if err := p.shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if c.count("/custom/traces") != 1 || len(c.posts) != 1 {
		t.Fatalf("POSTs: %v, want one to /custom/traces", c.posts)
	}

	// OTEL_TRACES_EXPORTER=none turns that signal off again.
	t.Setenv("OTEL_TRACES_EXPORTER", "none")
	if p, err := newOTelProviders(ctx); err != nil || p.traces != nil || p.metrics != nil {
		t.Fatalf("with OTEL_TRACES_EXPORTER=none: %v, %v", p, err)
	}
}

func TestOTelOffWhenUnset(t *testing.T) {
	clearOTelEnv(t)
	tp, mp := otel.GetTracerProvider(), otel.GetMeterProvider()
	shutdown, err := setupOTel(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if otel.GetTracerProvider() != tp || otel.GetMeterProvider() != mp {
		t.Fatal("setupOTel replaced the global providers with no endpoint set")
	}
	// OTEL_SDK_DISABLED wins over an endpoint.
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
	t.Setenv("OTEL_SDK_DISABLED", "true")
	if p, err := newOTelProviders(context.Background()); err != nil || p.traces != nil || p.metrics != nil {
		t.Fatalf("with OTEL_SDK_DISABLED=true: %v, %v", p, err)
	}
}

func TestOTelRefusesWhatItCannotExport(t *testing.T) {
	for _, tc := range []struct{ key, value, want string }{
		{"OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", "http/protobuf"},
		{"OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "grpc", "4318"},
		{"OTEL_TRACES_EXPORTER", "zipkin", "otlp (or none)"},
	} {
		clearOTelEnv(t)
		t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
		t.Setenv(tc.key, tc.value)
		_, err := newOTelProviders(context.Background())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s=%s: err = %v, want it to mention %q", tc.key, tc.value, err, tc.want)
		}
	}
}

// TestSetupOTelInstallsGlobals: the library takes the global providers by
// default, so the CLI only has to install them.
func TestSetupOTelInstallsGlobals(t *testing.T) {
	clearOTelEnv(t)
	c := newCollector(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", c.URL)
	t.Cleanup(func() {
		otel.SetTracerProvider(tracenoop.NewTracerProvider())
		otel.SetMeterProvider(metricnoop.NewMeterProvider())
	})
	shutdown, err := setupOTel(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	_, tpOK := otel.GetTracerProvider().(*sdktrace.TracerProvider)
	_, mpOK := otel.GetMeterProvider().(*sdkmetric.MeterProvider)
	if !tpOK || !mpOK {
		t.Fatalf("globals: %T, %T; want the SDK providers", otel.GetTracerProvider(), otel.GetMeterProvider())
	}
	_, s := otel.Tracer("test").Start(context.Background(), "span")
	s.End()
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if c.count("/v1/traces") != 1 {
		t.Fatalf("POSTs: %v, want the global span flushed to /v1/traces", c.posts)
	}
}

// Issue 18, defect 12 (sibling): an echoed OTEL_* value is cut on a
// character boundary, never inside a UTF-8 sequence.
func TestTruncateValueKeepsUTF8(t *testing.T) {
	v := "a" + strings.Repeat("é", 30)
	got := truncateValue(v)
	if !utf8.ValidString(got) || len(got) > 44 {
		t.Errorf("truncateValue(%q) = %q: not valid UTF-8 or too long", v, got)
	}
	// The error that echoes such a value stays valid text.
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
	t.Setenv("OTEL_TRACES_EXPORTER", v)
	if _, err := otlpSignal("TRACES"); err == nil || !utf8.ValidString(err.Error()) {
		t.Errorf("otlpSignal: %v, want an error in valid UTF-8", err)
	}
}
