package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/internal/redact"
	"github.com/kvassert/kvassert/internal/textutil"
)

// otelProviders are the SDK providers the CLI exports with; a nil one is a
// signal left off.
type otelProviders struct {
	traces  *sdktrace.TracerProvider
	metrics *sdkmetric.MeterProvider
}

// shutdown flushes and stops the providers.
func (p otelProviders) shutdown(ctx context.Context) error {
	var errs []error
	if p.traces != nil {
		errs = append(errs, p.traces.Shutdown(ctx))
	}
	if p.metrics != nil {
		errs = append(errs, p.metrics.Shutdown(ctx))
	}
	return errors.Join(errs...)
}

// setupOTel exports kvassert's traces and metrics over OTLP/HTTP when the
// environment names an endpoint (OTEL_EXPORTER_OTLP_ENDPOINT, or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT / _METRICS_ENDPOINT for one signal):
// it installs the SDK providers as OpenTelemetry's global ones, which the
// library uses by default, and returns the func that flushes them (call it
// before exiting). With no endpoint set, or OTEL_SDK_DISABLED=true, it
// starts nothing and returns a no-op.
//
// The exporters read the standard variables themselves (headers, timeout,
// compression, certificates, OTEL_METRIC_EXPORT_INTERVAL, OTEL_BSP_*), and
// the resource takes OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
// (service.name defaults to "kvassert"). Like the SDK, it reads the
// process environment.
func setupOTel(ctx context.Context) (shutdown func(context.Context) error, err error) {
	p, err := newOTelProviders(ctx)
	if err != nil {
		return nil, err
	}
	if p.traces != nil {
		otel.SetTracerProvider(p.traces)
		otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	}
	if p.metrics != nil {
		otel.SetMeterProvider(p.metrics)
	}
	return p.shutdown, nil
}

// newOTelProviders builds the providers the environment asks for.
func newOTelProviders(ctx context.Context) (otelProviders, error) {
	var p otelProviders
	if strings.EqualFold(strings.TrimSpace(os.Getenv("OTEL_SDK_DISABLED")), "true") {
		return p, nil
	}
	traces, err := otlpSignal("TRACES")
	if err != nil {
		return p, err
	}
	metrics, err := otlpSignal("METRICS")
	if err != nil {
		return p, err
	}
	if !traces && !metrics {
		return p, nil
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", "kvassert"), attribute.String("service.version", kvassert.Version)),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win
	)
	if err != nil {
		return p, fmt.Errorf("kvassert: OpenTelemetry resource (OTEL_RESOURCE_ATTRIBUTES, OTEL_SERVICE_NAME): %w", err)
	}
	if traces {
		exp, err := otlptracehttp.New(ctx)
		if err != nil {
			return p, fmt.Errorf("kvassert: OTLP trace exporter: %w", err)
		}
		p.traces = sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	}
	if metrics {
		exp, err := otlpmetrichttp.New(ctx)
		if err != nil {
			_ = p.shutdown(ctx)
			return otelProviders{}, fmt.Errorf("kvassert: OTLP metric exporter: %w", err)
		}
		p.metrics = sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp)), sdkmetric.WithResource(res))
	}
	return p, nil
}

// otlpSignal reports whether signal ("TRACES" or "METRICS") is to be
// exported: an endpoint is set for it and OTEL_<signal>_EXPORTER is not
// "none". Only OTLP over HTTP is built in.
func otlpSignal(signal string) (bool, error) {
	env := func(k string) string { return strings.TrimSpace(os.Getenv(k)) }
	if env("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && env("OTEL_EXPORTER_OTLP_"+signal+"_ENDPOINT") == "" {
		return false, nil
	}
	switch exp := strings.ToLower(env("OTEL_" + signal + "_EXPORTER")); exp {
	case "none":
		return false, nil
	case "", "otlp":
	default:
		return false, fmt.Errorf("kvassert: OTEL_%s_EXPORTER=%q is not supported; kvassert exports with otlp (or none)", signal, truncateValue(exp))
	}
	proto := env("OTEL_EXPORTER_OTLP_" + signal + "_PROTOCOL")
	if proto == "" {
		proto = env("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	if proto != "" && proto != "http/protobuf" {
		return false, fmt.Errorf("kvassert: OTLP protocol %q is not supported; kvassert exports with http/protobuf (unset OTEL_EXPORTER_OTLP_PROTOCOL, or point it at the collector's HTTP port, usually 4318)", truncateValue(proto))
	}
	return true, nil
}

// truncateValue keeps an echoed environment value short (whole UTF-8
// characters only).
func truncateValue(s string) string { return textutil.Truncate(s, 40) }

// otlpHeaderVars are the variables whose values the OTLP exporters send as
// HTTP headers: API keys and Authorization values.
var otlpHeaderVars = []string{"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_METRICS_HEADERS"}

// addOTLPHeaderSecrets registers every OTLP header value with the
// redactor, in every spelling the exporter may echo: the whole variable,
// each entry, each value raw and unescaped, and, for an entry written
// without "=" (a colon instead), everything after the name and each word of
// it.
func addOTLPHeaderSecrets(getenv func(string) string, r *redact.Writer) {
	for _, name := range otlpHeaderVars {
		v := getenv(name)
		if v == "" {
			continue
		}
		r.AddSecret(v)
		for _, entry := range strings.Split(v, ",") {
			entry = strings.TrimSpace(entry)
			r.AddSecret(entry)
			_, value, ok := strings.Cut(entry, "=")
			if !ok {
				_, value, _ = strings.Cut(entry, ":")
			}
			for _, x := range append([]string{value, strings.TrimSpace(value)}, strings.Fields(value)...) {
				r.AddSecret(x)
				if u, err := url.PathUnescape(x); err == nil {
					r.AddSecret(u)
				}
				if u, err := url.QueryUnescape(x); err == nil {
					r.AddSecret(u)
				}
			}
		}
	}
}

// otelValueKeys are the attributes OpenTelemetry's own log lines use for
// the text they could not parse: never printed, whatever they hold.
var otelValueKeys = map[string]bool{"input": true, "value": true, "header": true, "headers": true}

// routeOTelLogging sends OpenTelemetry's own diagnostics (its global logr
// logger and its error handler, which by default write straight to the
// process's stderr) through the CLI's redacting stderr: the values it
// could not parse are left out, every attribute is redacted before it is
// formatted, and OTLP header values are registered as secrets first. level
// is the CLI's log level (warnings; debug with --verbose).
func (a *App) routeOTelLogging(level slog.Leveler) {
	addOTLPHeaderSecrets(os.Getenv, a.redactor)
	red := a.redactor
	h := slog.NewTextHandler(a.Stderr, &slog.HandlerOptions{Level: level, ReplaceAttr: func(_ []string, at slog.Attr) slog.Attr {
		if at.Key == slog.TimeKey || at.Key == slog.LevelKey || at.Key == slog.MessageKey {
			return at
		}
		if otelValueKeys[strings.ToLower(at.Key)] {
			return slog.String(at.Key, redact.Secret)
		}
		return slog.String(at.Key, truncate(red.String(at.Value.String()), 300))
	}})
	logger := slog.New(h).With("component", "opentelemetry")
	otel.SetLogger(logr.FromSlogHandler(logger.Handler()))
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		if err != nil {
			logger.Error("OpenTelemetry", "error", err)
		}
	}))
}

// startOTel runs setupOTel for a command (kvassert token, kvassert proxy)
// and returns the func to defer: it flushes what is left to export, within
// a few seconds even after Ctrl+C, and reports a failed flush on stderr.
func startOTel(ctx context.Context, a *App) (flush func(), err error) {
	shutdown, err := setupOTel(ctx)
	if err != nil {
		return nil, &exitError{code: exitUsage, msg: "OpenTelemetry export (OTEL_* variables)", err: err}
	}
	return func() {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), otelFlushTimeout)
		defer cancel()
		if err := shutdown(fctx); err != nil {
			fmt.Fprintf(a.Stderr, "kvassert: exporting telemetry failed: %v\n", err)
		}
	}, nil
}

// otelFlushTimeout bounds the flush on exit.
const otelFlushTimeout = 5 * time.Second
