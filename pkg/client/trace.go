package client

import (
	"context"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
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

// instrumentation is the name of the SDK's tracer.
const instrumentation = "github.com/triggerbus/triggerbus/pkg/client"

// The attributes of a decision on the Decide span.
const (
	attrAllowed = attribute.Key("trigger.decision.allowed")
	attrCode    = attribute.Key("trigger.decision.code")
)

// tracing is how a client traces its events.
type tracing struct {
	tracer trace.Tracer
	prop   propagation.TextMapPropagator
}

func newTracing(opts Options) tracing {
	tp, prop := opts.TracerProvider, opts.Propagator
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	if prop == nil {
		prop = otel.GetTextMapPropagator()
	}
	return tracing{tracer: tp.Tracer(instrumentation), prop: prop}
}

// start starts the span of sending m (the event id) and writes its context
// into m's headers.
func (t tracing) start(ctx context.Context, kind trace.SpanKind, m *nats.Msg, id string) (context.Context, trace.Span) {
	ctx, span := t.tracer.Start(ctx, natstrace.OpSend+" "+m.Subject, trace.WithSpanKind(kind))
	if span.IsRecording() {
		span.SetAttributes(natstrace.Attributes(natstrace.OpSend, m.Subject, id)...)
	}
	t.prop.Inject(ctx, natstrace.Header(m.Header))
	return ctx, span
}

// endPublish ends the span of a Publish that returned err.
func endPublish(span trace.Span, err error) {
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// endDecide ends the span of a Decide that answered d.
func endDecide(span trace.Span, d *event.Decision) {
	if d != nil && span.IsRecording() {
		span.SetAttributes(attrAllowed.Bool(d.Allowed), attrCode.String(d.Code))
	}
	span.End()
}
