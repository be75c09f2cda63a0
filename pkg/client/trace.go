package client

import (
	"context"
	"reflect"
	"sync/atomic"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/triggerbus/triggerbus/internal/natstrace"
	"github.com/triggerbus/triggerbus/pkg/event"
)

// Tracing. Publish makes a producer span "send <subject>", Decide a client
// span of the same name (a request that waits for its decision), each with
// the messaging attributes (messaging.system nats, the subject, the event
// id), and writes the span's context into the event's headers (W3C
// traceparent and tracestate with the default propagator), where a worker
// continues the trace. Decide records the decision on its span
// (trigger.decision.allowed, trigger.decision.code).
//
// Without Options.TracerProvider the global provider is used once a
// program has set one (otel.SetTracerProvider); until then the client makes
// no span at all, and only writes the trace context the caller's ctx
// already carries (a span of the caller's own instrumentation), so that a
// program that does not trace pays nothing.

// instrumentation is the name of the SDK's tracer.
const instrumentation = "github.com/triggerbus/triggerbus/pkg/client"

// tracing is how a client traces its events.
type tracing struct {
	fixed  trace.Tracer                   // from Options.TracerProvider; nil: the global provider's
	global atomic.Pointer[providerTracer] // the tracer of the global provider last seen
	prop   propagation.TextMapPropagator
}

// providerTracer is a tracer with the provider it came from.
type providerTracer struct {
	tp     trace.TracerProvider
	tracer trace.Tracer
}

func newTracing(opts Options) *tracing {
	t := &tracing{prop: opts.Propagator}
	if t.prop == nil {
		t.prop = otel.GetTextMapPropagator()
	}
	if opts.TracerProvider != nil {
		t.fixed = opts.TracerProvider.Tracer(instrumentation)
	}
	return t
}

// globalDefault is the package of the global tracer provider before a
// program sets one: it makes no recording span.
const globalDefault = "go.opentelemetry.io/otel/internal/global"

// tracer returns the tracer to use now; nil when there is none to record
// with (no provider given, and the global one still the default).
func (t *tracing) tracer() trace.Tracer {
	if t.fixed != nil {
		return t.fixed
	}
	tp := otel.GetTracerProvider()
	if pt := t.global.Load(); pt != nil && pt.tp == tp {
		return pt.tracer // nil for the default provider
	}
	pt := &providerTracer{tp: tp}
	if typ := reflect.TypeOf(tp); typ != nil && (typ.Kind() != reflect.Pointer || typ.Elem().PkgPath() != globalDefault) {
		pt.tracer = tp.Tracer(instrumentation)
	}
	t.global.Store(pt)
	return pt.tracer
}

// start starts the span of sending m (the event id) and writes its context
// into m's headers. With no tracer it starts none (the span is nil) and
// writes the context ctx carries, if any.
func (t *tracing) start(ctx context.Context, kind trace.SpanKind, m *nats.Msg, id string) (context.Context, trace.Span) {
	tracer := t.tracer()
	if tracer == nil {
		if trace.SpanContextFromContext(ctx).IsValid() {
			t.prop.Inject(ctx, natstrace.Header(msgHeader(m)))
		}
		return ctx, nil
	}
	ctx, span := tracer.Start(ctx, natstrace.OpSend+" "+m.Subject, trace.WithSpanKind(kind))
	if span.IsRecording() {
		span.SetAttributes(natstrace.Attributes(natstrace.OpSend, m.Subject, id)...)
	}
	t.prop.Inject(ctx, natstrace.Header(msgHeader(m)))
	return ctx, span
}

// endPublish ends the span of a Publish that returned err; nil: no span.
func endPublish(span trace.Span, err error) {
	if span == nil {
		return
	}
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// endDecide ends the span of a Decide that answered d; nil: no span.
func endDecide(span trace.Span, d *event.Decision) {
	if span == nil {
		return
	}
	if d != nil && span.IsRecording() {
		span.SetAttributes(natstrace.AttrAllowed.Bool(d.Allowed), natstrace.AttrCode.String(d.Code))
	}
	span.End()
}
