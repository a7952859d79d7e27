package obs

import (
	"context"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/kvassert/kvassert/telemetry"
)

// KeyVault holds the instruments for one vault host: its signs, throttling
// and certificate reads. A nil *KeyVault records nothing.
type KeyVault struct {
	tracer    trace.Tracer
	meter     metric.Meter
	host      attribute.KeyValue
	sign      metric.Float64Histogram
	wait      metric.Float64Histogram
	throttled metric.Int64Counter
	reads     metric.Int64Counter
	timeLeft  metric.Float64ObservableGauge
	pending   metric.Int64ObservableGauge

	hostAdd    []metric.AddOption    // server.address, built once
	hostRecord []metric.RecordOption // server.address, built once
	spanHost   trace.SpanStartOption
}

// NewKeyVault creates the instruments for the vault at host
// ("myvault.vault.azure.net").
func NewKeyVault(o telemetry.Options, host string) *KeyVault {
	in := meterFor(o)
	host = strings.ToLower(host)
	kv := attribute.String(AttrServerAddress, host)
	set := metric.WithAttributeSet(attribute.NewSet(kv))
	k := &KeyVault{
		tracer:     tracerFor(o),
		meter:      in.m,
		host:       kv,
		sign:       in.duration(MetricSignDuration, "Duration of one Key Vault sign, throttling waits and retries included."),
		wait:       in.duration(MetricThrottleWaitDuration, "Time one sign waited at the vault's shared throttling gate."),
		throttled:  in.counter(MetricThrottledResponses, "{response}", "429 (throttled) answers from Key Vault."),
		reads:      in.counter(MetricCertificateReads, "{read}", "Certificate reads from Key Vault; error.type is set on the failed ones."),
		hostAdd:    []metric.AddOption{set},
		hostRecord: []metric.RecordOption{set},
		spanHost:   trace.WithAttributes(kv),
	}
	if g, _ := in.m.Float64ObservableGauge(MetricCertificateTimeLeft, metric.WithUnit("s"),
		metric.WithDescription("Seconds until the active certificate's notAfter (negative once expired).")); g != nil {
		k.timeLeft = g
	}
	if g, _ := in.m.Int64ObservableGauge(MetricCertificateRotationPending, metric.WithUnit("1"),
		metric.WithDescription("1 while the vault holds a newer certificate version than the one in use, else 0.")); g != nil {
		k.pending = g
	}
	return k
}

// StartSign starts the span of one sign (kvassert.keyvault.sign); the
// returned func ends it and records the sign's duration. Pass the returned
// context to azkeys so that its spans nest under this one.
//
// Call site: the signer's SignContext, around the whole sign (throttling
// waits included).
func (k *KeyVault) StartSign(ctx context.Context) (context.Context, func(error)) {
	if k == nil {
		return ctx, func(error) {}
	}
	start := time.Now()
	ctx, span := k.tracer.Start(ctx, SpanSign, trace.WithSpanKind(trace.SpanKindInternal), k.spanHost)
	return ctx, func(err error) {
		d := seconds(time.Since(start))
		if err == nil {
			k.sign.Record(ctx, d, k.hostRecord...)
		} else {
			k.sign.Record(ctx, d, metric.WithAttributes(k.host, attribute.String(AttrErrorType, ErrorType(err))))
		}
		endSpan(span, err)
	}
}

// GateWait records a wait of d at the vault's throttling gate, and adds an
// event to the sign span in ctx.
//
// Call site: the signer, after each wait at the gate.
func (k *KeyVault) GateWait(ctx context.Context, d time.Duration) {
	if k == nil {
		return
	}
	k.wait.Record(background, seconds(d), k.hostRecord...)
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.AddEvent(EventThrottleWait, trace.WithAttributes(attribute.Float64("kvassert.wait.seconds", seconds(d))))
	}
}

// Throttled counts one 429 answer from the vault.
//
// Call site: the keys client's status policy, for each 429 it sees.
func (k *KeyVault) Throttled() {
	if k == nil {
		return
	}
	k.throttled.Add(background, 1, k.hostAdd...)
}

// StartCertificateRead starts the span of one read of certificate name; the
// returned func ends it and counts the read (error.type set on failure).
//
// Call site: the certificate source's read, around its fetch.
func (k *KeyVault) StartCertificateRead(ctx context.Context, name string) (context.Context, func(error)) {
	if k == nil {
		return ctx, func(error) {}
	}
	nameKV := attribute.String(AttrCertificateName, name)
	ctx, span := k.tracer.Start(ctx, SpanReadCertificate, trace.WithSpanKind(trace.SpanKindInternal), k.spanHost, trace.WithAttributes(nameKV))
	return ctx, func(err error) {
		k.reads.Add(ctx, 1, metric.WithAttributes(withError([]attribute.KeyValue{k.host, nameKV}, err)...))
		endSpan(span, err)
	}
}
