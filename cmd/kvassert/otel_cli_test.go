package main

import (
	"strings"
	"testing"
)

// TestTokenExportsTelemetry: kvassert token with OTEL_EXPORTER_OTLP_ENDPOINT
// set sends its traces and metrics to the collector before it exits.
func TestTokenExportsTelemetry(t *testing.T) {
	t.Parallel()
	env := newCLIEnv(t)
	c := newCollector(t)
	r := env.run([]string{"token", "--tenant", "contoso.onmicrosoft.com"}, "OTEL_EXPORTER_OTLP_ENDPOINT="+c.URL)
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stdout, "accessToken") {
		t.Fatalf("no token printed:\n%s", r.stdout)
	}
	if n, m := c.count("/v1/traces"), c.count("/v1/metrics"); n == 0 || m == 0 {
		t.Fatalf("collector got %d trace and %d metric exports, want at least one of each", n, m)
	}
}

// TestTokenRefusesGRPCExport: an OTLP protocol the CLI cannot speak is a
// usage error before any token request, naming the variable.
func TestTokenRefusesGRPCExport(t *testing.T) {
	t.Parallel()
	env := newCLIEnv(t)
	c := newCollector(t)
	r := env.run([]string{"token", "--tenant", "contoso.onmicrosoft.com"}, "OTEL_EXPORTER_OTLP_ENDPOINT="+c.URL, "OTEL_EXPORTER_OTLP_PROTOCOL=grpc")
	wantError(t, r, exitUsage, "OpenTelemetry", "")
	if !strings.Contains(r.stderr, "OTEL_EXPORTER_OTLP_PROTOCOL") {
		t.Errorf("the error does not name the variable:\n%s", r.stderr)
	}
	if r.stdout != "" || c.count("/v1/traces")+c.count("/v1/metrics") != 0 {
		t.Errorf("stdout %q, exports %d", r.stdout, c.count("/v1/traces")+c.count("/v1/metrics"))
	}
}
