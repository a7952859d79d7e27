package main

import (
	"strings"
	"testing"
	"time"
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

// TestProxyExportsTelemetry: kvassert proxy with OTEL_EXPORTER_OTLP_ENDPOINT
// set exports the telemetry of the tokens it served, flushed when it stops
// on Ctrl+C.
func TestProxyExportsTelemetry(t *testing.T) {
	t.Parallel()
	env := newCLIEnv(t)
	c := newCollector(t)
	vars := map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": c.URL}
	for k, v := range env.vars {
		vars[k] = v
	}
	p := startProxy(t, vars, "--listen", "127.0.0.1:0", "--tenant", "contoso.onmicrosoft.com")
	m := proxyRequest(t, "GET", p.export("IDENTITY_ENDPOINT", 0)+"?api-version=2019-08-01&resource=https://vault.azure.net", "", "", "X-IDENTITY-HEADER", p.export("IDENTITY_HEADER", 0))
	if m["access_token"] == nil {
		t.Fatalf("no token from the proxy: %v", m["error"])
	}
	interruptProxy(t, p, 20*time.Second, true)
	if n, m := c.count("/v1/traces"), c.count("/v1/metrics"); n == 0 || m == 0 {
		t.Fatalf("collector got %d trace and %d metric exports, want at least one of each\nstderr:\n%s", n, m, p.stderrText())
	}
}

// Issue 18, defect 12: an OTLP header entry written with a colon instead of
// "=" makes the exporter log the entry through OpenTelemetry's own logger;
// the CLI's logger and error handler go through the redactor, and every
// OTLP header value is a secret: the raw value never reaches stderr.
func TestOTLPHeaderValuesNeverPrinted(t *testing.T) {
	t.Parallel()
	env := newCLIEnv(t)
	c := newCollector(t)
	const secret = "otlp-header-secret-0123456789"
	for _, name := range []string{"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_METRICS_HEADERS"} {
		for _, value := range []string{
			"Authorization:Bearer " + secret,                    // colon instead of =
			"api-key=" + secret + ",Authorization:" + secret,    // one good, one bad
			"x-token=" + strings.ReplaceAll(secret, "-", "%ZZ"), // a bad escape
			"bad key=" + secret,
		} {
			r := env.run([]string{"token", "--tenant", "contoso.onmicrosoft.com"}, "OTEL_EXPORTER_OTLP_ENDPOINT="+c.URL, name+"="+value)
			if r.code != 0 {
				t.Errorf("%s=%q: exit %d\n%s", name, value, r.code, r.stderr)
			}
			for _, leak := range []string{secret, strings.ReplaceAll(secret, "-", "%ZZ")} {
				if strings.Contains(r.stderr, leak) {
					t.Errorf("%s=%q: stderr holds the header value:\n%s", name, value, r.stderr)
				}
			}
		}
	}
}
