// Package azotel bridges azcore's tracing abstraction to the OpenTelemetry
// trace API, so that the spans of the Azure SDK clients kvassert creates
// (azkeys, azcertificates, the token request's pipeline) are recorded by the
// application's TracerProvider and nest under kvassert's own spans.
//
// The Azure SDK ships such a bridge as a module of its own
// (sdk/tracing/azotel), but that module's go.mod requires the OpenTelemetry
// SDK and exporters for its examples, which would put them into every
// kvassert user's module graph. This package depends on the OpenTelemetry
// API only. Applications that want their own Azure clients in the same
// traces may use either bridge.
package azotel

import (
	"context"
	"fmt"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/tracing"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// NewTracingProvider returns the azcore tracing.Provider backed by tp: each
// azcore Tracer is an OpenTelemetry Tracer of the same name and version.
func NewTracingProvider(tp trace.TracerProvider) tracing.Provider {
	return tracing.NewProvider(func(name, version string) tracing.Tracer {
		otelTracer := tp.Tracer(name, trace.WithInstrumentationVersion(version))
		start := func(ctx context.Context, spanName string, opts *tracing.SpanOptions) (context.Context, tracing.Span) {
			var startOpts []trace.SpanStartOption
			if opts != nil {
				startOpts = append(startOpts, trace.WithSpanKind(spanKind(opts.Kind)), trace.WithAttributes(attributes(opts.Attributes)...))
			}
			ctx, span := otelTracer.Start(ctx, spanName, startOpts...)
			return ctx, bridge(span)
		}
		return tracing.NewTracer(start, &tracing.TracerOptions{
			SpanFromContext: func(ctx context.Context) tracing.Span { return bridge(trace.SpanFromContext(ctx)) },
		})
	}, nil)
}

// bridge exposes an OpenTelemetry span as an azcore span.
func bridge(span trace.Span) tracing.Span {
	return tracing.NewSpan(tracing.SpanImpl{
		End:           func() { span.End() },
		SetAttributes: func(attrs ...tracing.Attribute) { span.SetAttributes(attributes(attrs)...) },
		AddEvent: func(name string, attrs ...tracing.Attribute) {
			span.AddEvent(name, trace.WithAttributes(attributes(attrs)...))
		},
		SetStatus: func(status tracing.SpanStatus, description string) {
			span.SetStatus(statusCode(status), description)
		},
	})
}

// attributes converts azcore attributes; a value of a type OpenTelemetry has
// no attribute for is recorded as its fmt rendering.
func attributes(in []tracing.Attribute) []attribute.KeyValue {
	out := make([]attribute.KeyValue, 0, len(in))
	for _, a := range in {
		switch v := a.Value.(type) {
		case string:
			out = append(out, attribute.String(a.Key, v))
		case bool:
			out = append(out, attribute.Bool(a.Key, v))
		case int:
			out = append(out, attribute.Int(a.Key, v))
		case int64:
			out = append(out, attribute.Int64(a.Key, v))
		case float64:
			out = append(out, attribute.Float64(a.Key, v))
		case []string:
			out = append(out, attribute.StringSlice(a.Key, v))
		default:
			out = append(out, attribute.String(a.Key, fmt.Sprint(v)))
		}
	}
	return out
}

// spanKinds and statusCodes map azcore's values to OpenTelemetry's; any
// other kind is internal, any other status unset.
var (
	spanKinds = map[tracing.SpanKind]trace.SpanKind{
		tracing.SpanKindClient: trace.SpanKindClient, tracing.SpanKindServer: trace.SpanKindServer,
		tracing.SpanKindProducer: trace.SpanKindProducer, tracing.SpanKindConsumer: trace.SpanKindConsumer,
	}
	statusCodes = map[tracing.SpanStatus]codes.Code{tracing.SpanStatusError: codes.Error, tracing.SpanStatusOK: codes.Ok}
)

func spanKind(k tracing.SpanKind) trace.SpanKind {
	if v, ok := spanKinds[k]; ok {
		return v
	}
	return trace.SpanKindInternal
}

func statusCode(s tracing.SpanStatus) codes.Code {
	return statusCodes[s] // codes.Unset is the zero Code
}
