package proxy

import (
	"context"
	"log/slog"
)

// safeErrors is the slog.Handler of the logger the proxy hands to the
// library (credentials, sources): it rewrites every error attribute into the
// proxy's own wording of that error's type (upstreamProblem), so that an
// error quoting a token response or a vault answer, logged by a background
// refresh or a certificate re-read, never puts that text into the proxy's
// log.
type safeErrors struct{ next slog.Handler }

// libraryLogger wraps l with safeErrors.
func libraryLogger(l *slog.Logger) *slog.Logger { return slog.New(safeErrors{l.Handler()}) }

func (h safeErrors) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

func (h safeErrors) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(safeAttr(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

func (h safeErrors) WithAttrs(attrs []slog.Attr) slog.Handler {
	safe := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		safe[i] = safeAttr(a)
	}
	return safeErrors{h.next.WithAttrs(safe)}
}

func (h safeErrors) WithGroup(name string) slog.Handler { return safeErrors{h.next.WithGroup(name)} }

// safeAttr rewrites an error value (also inside groups).
func safeAttr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindGroup:
		g := v.Group()
		safe := make([]any, len(g))
		for i, x := range g {
			safe[i] = safeAttr(x)
		}
		return slog.Group(a.Key, safe...)
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			p := upstreamProblem(err)
			return slog.String(a.Key, p.Title+": "+p.Detail)
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}
