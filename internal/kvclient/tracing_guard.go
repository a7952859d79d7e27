package kvclient

import (
	"context"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/tracing"
)

// QuietTracing wraps the tracing provider given to azkeys and
// azcertificates so that the Azure SDK's spans carry no text of the vault's
// answers: azcore sets a client span's status description to the error's
// text (an *azcore.ResponseError's holds the whole answer) and an HTTP
// span's to the answer's status line, and records the answer's
// x-ms-request-id as an attribute. Status descriptions are dropped (the
// status code stays; kvassert's own spans say what failed), and a request
// ID that is not a plain ID is left out.
func QuietTracing(p tracing.Provider) tracing.Provider {
	return tracing.NewProvider(func(name, version string) tracing.Tracer {
		t := p.NewTracer(name, version)
		if !t.Enabled() {
			return t
		}
		return tracing.NewTracer(func(ctx context.Context, spanName string, o *tracing.SpanOptions) (context.Context, tracing.Span) {
			if o != nil {
				oo := *o
				oo.Attributes = quietAttributes(o.Attributes)
				o = &oo
			}
			ctx, s := t.Start(ctx, spanName, o)
			return ctx, quietSpan(s)
		}, &tracing.TracerOptions{SpanFromContext: func(ctx context.Context) tracing.Span { return quietSpan(t.SpanFromContext(ctx)) }})
	}, nil)
}

func quietSpan(s tracing.Span) tracing.Span {
	return tracing.NewSpan(tracing.SpanImpl{
		End:           s.End,
		SetAttributes: func(a ...tracing.Attribute) { s.SetAttributes(quietAttributes(a)...) },
		AddEvent:      func(name string, a ...tracing.Attribute) { s.AddEvent(name, quietAttributes(a)...) },
		SetStatus:     func(code tracing.SpanStatus, _ string) { s.SetStatus(code, "") },
	})
}

// quietAttributes leaves out a service request ID that is not a plain ID.
func quietAttributes(attrs []tracing.Attribute) []tracing.Attribute {
	out := attrs[:0:0]
	for _, a := range attrs {
		if a.Key == "az.service_request_id" {
			if v, ok := a.Value.(string); !ok || !requestIDRE.MatchString(v) {
				continue
			}
		}
		out = append(out, a)
	}
	return out
}
