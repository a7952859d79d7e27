// Package azotel adapts an OpenTelemetry TracerProvider into the azcore
// tracing.Provider that policy.ClientOptions takes, so that the Azure SDK
// clients' own spans reach kvassert's TracerProvider.
//
// It is the Azure SDK's github.com/Azure/azure-sdk-for-go/sdk/tracing/azotel
// (v0.4.0, MIT License, Copyright (c) Microsoft Corporation), kept here
// because that module's go.mod requires the OpenTelemetry SDK, a Jaeger
// exporter and Azure resource-manager modules for its own tests and
// examples: every program importing kvassert would get them in its module
// graph. It uses the OpenTelemetry API only.
package azotel

import (
	"context"
	"fmt"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/tracing"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.17.0"
	"go.opentelemetry.io/otel/trace"
)

// NewTracingProvider returns a tracing.Provider over tp.
func NewTracingProvider(tp trace.TracerProvider) tracing.Provider {
	return tracing.NewProvider(func(namespace, version string) tracing.Tracer {
		tracer := tp.Tracer(namespace, trace.WithInstrumentationVersion(version), trace.WithSchemaURL(semconv.SchemaURL))
		return tracing.NewTracer(func(ctx context.Context, spanName string, options *tracing.SpanOptions) (context.Context, tracing.Span) {
			kind := tracing.SpanKindInternal
			var attrs []attribute.KeyValue
			if options != nil {
				kind = options.Kind
				attrs = convertAttributes(options.Attributes)
			}
			ctx, span := tracer.Start(ctx, spanName, trace.WithSpanKind(convertSpanKind(kind)), trace.WithAttributes(attrs...))
			return ctx, convertSpan(span)
		}, &tracing.TracerOptions{
			SpanFromContext: func(ctx context.Context) tracing.Span {
				return convertSpan(trace.SpanFromContext(ctx))
			},
		})
	}, nil)
}

func convertSpan(s trace.Span) tracing.Span {
	return tracing.NewSpan(tracing.SpanImpl{
		End: func() { s.End() },
		SetAttributes: func(attrs ...tracing.Attribute) {
			s.SetAttributes(convertAttributes(attrs)...)
		},
		AddEvent: func(name string, attrs ...tracing.Attribute) {
			s.AddEvent(name, trace.WithAttributes(convertAttributes(attrs)...))
		},
		SetStatus: func(code tracing.SpanStatus, desc string) {
			s.SetStatus(convertStatus(code), desc)
		},
	})
}

func convertAttributes(attrs []tracing.Attribute) []attribute.KeyValue {
	kvs := make([]attribute.KeyValue, 0, len(attrs))
	for _, kv := range attrs {
		switch v := kv.Value.(type) {
		case int:
			kvs = append(kvs, attribute.Int(kv.Key, v))
		case int64:
			kvs = append(kvs, attribute.Int64(kv.Key, v))
		case float64:
			kvs = append(kvs, attribute.Float64(kv.Key, v))
		case bool:
			kvs = append(kvs, attribute.Bool(kv.Key, v))
		case string:
			kvs = append(kvs, attribute.String(kv.Key, v))
		default:
			kvs = append(kvs, attribute.String(kv.Key, fmt.Sprintf("%v", v)))
		}
	}
	return kvs
}

func convertSpanKind(k tracing.SpanKind) trace.SpanKind {
	switch k {
	case tracing.SpanKindServer:
		return trace.SpanKindServer
	case tracing.SpanKindClient:
		return trace.SpanKindClient
	case tracing.SpanKindProducer:
		return trace.SpanKindProducer
	case tracing.SpanKindConsumer:
		return trace.SpanKindConsumer
	default:
		return trace.SpanKindInternal
	}
}

func convertStatus(s tracing.SpanStatus) codes.Code {
	switch s {
	case tracing.SpanStatusError:
		return codes.Error
	case tracing.SpanStatusOK:
		return codes.Ok
	default:
		return codes.Unset
	}
}
