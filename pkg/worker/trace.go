package worker

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/triggerbus/triggerbus/internal/natstrace"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/subjects"
)

// Tracing (Config.TracerProvider). Each event the worker takes in gets a
// span "process <subject>", a child of the trace context its headers carry
// (the publisher's span, pkg/client), of kind server for a PRE request and
// consumer for a POST or durable event, with the messaging attributes
// (messaging.system nats, the subject, the event id, the queue group). On
// it, the event "match" (trigger.functions, how many matched) and the event
// "decode" (an error status when the event is invalid). Its children: one
// span "function <ref>" per function call (trigger.function, trigger.outcome,
// trigger.attempt for a durable delivery; an error status when the call
// failed), and the span "reply" of a PRE decision (trigger.decision.allowed,
// trigger.decision.code) or "ack", "nak" or "term" of a durable one. A
// function call's trace context goes on with what it sends: the webhook
// request's headers ([handlers.Call.Propagator]) and the NATS messages of its
// bus (trigger.publish and trigger.request, adminAPI and userAPI).
//
// Without a TracerProvider the worker holds no tracer: every hook below is a
// nil check on the hot path, and no span, context or attribute is made.

// instrumentation is the name of the worker's tracer.
const instrumentation = "github.com/triggerbus/triggerbus/pkg/worker"

// The attributes of the worker's spans beyond the messaging ones.
const (
	attrFunctions = attribute.Key("trigger.functions")
	attrFunction  = attribute.Key("trigger.function")
	attrOutcome   = attribute.Key("trigger.outcome")
	attrAttempt   = attribute.Key("trigger.attempt")
)

// setTracing sets the worker's tracer and propagator from cfg; both stay nil
// without a TracerProvider.
func (w *Worker) setTracing(cfg Config) {
	if cfg.TracerProvider == nil {
		return
	}
	w.tracer = cfg.TracerProvider.Tracer(instrumentation)
	w.prop = cfg.Propagator
	if w.prop == nil {
		w.prop = propagation.TraceContext{}
	}
}

// startEvent starts the span of the event of j, a child of the trace
// context in its headers. Without tracing it returns ctx and a nil span.
func (w *Worker) startEvent(ctx context.Context, j job) (context.Context, trace.Span) {
	if w.tracer == nil {
		return ctx, nil
	}
	subject, h, kind := "", natstrace.Header(nil), trace.SpanKindConsumer
	if j.js != nil {
		subject, h = j.js.Subject(), natstrace.Header(j.js.Headers())
	} else {
		subject, h = j.msg.Subject, natstrace.Header(j.msg.Header)
		if j.msg.Reply != "" {
			kind = trace.SpanKindServer
		}
	}
	ctx = w.prop.Extract(ctx, h)
	attrs := natstrace.Attributes(natstrace.OpProcess, subject, h.Get(subjects.HeaderMsgID))
	attrs = append(attrs, attribute.String("messaging.consumer.group.name", w.cfg.Queue))
	return w.tracer.Start(ctx, natstrace.OpProcess+" "+subject, trace.WithSpanKind(kind), trace.WithAttributes(attrs...))
}

// eventSpan returns the span of the event ctx carries; nil without tracing.
func (w *Worker) eventSpan(ctx context.Context) trace.Span {
	if w.tracer == nil {
		return nil
	}
	return trace.SpanFromContext(ctx)
}

// traceMatch records on the event's span how many functions matched.
func traceMatch(in *inbound) {
	in.span.AddEvent("match", trace.WithAttributes(attrFunctions.Int(len(in.entries))))
}

// traceDecode records on the event's span the decoding of its event: its
// id, or why it is invalid.
func traceDecode(in *inbound, ev *event.Event, err error) {
	if err != nil {
		in.span.AddEvent("decode", trace.WithAttributes(attribute.String("error", err.Error())))
		in.span.SetStatus(codes.Error, "invalid event: "+err.Error())
		return
	}
	in.span.AddEvent("decode")
	in.span.SetAttributes(natstrace.MessageID(ev.ID))
}

// startFunction starts the span of one call of the function ref (attempt,
// of a durable delivery, 0 otherwise). Without tracing it returns ctx and a
// nil span.
func (w *Worker) startFunction(ctx context.Context, ref string, attempt int) (context.Context, trace.Span) {
	if w.tracer == nil {
		return ctx, nil
	}
	attrs := []attribute.KeyValue{attrFunction.String(ref)}
	if attempt > 0 {
		attrs = append(attrs, attrAttempt.Int(attempt))
	}
	return w.tracer.Start(ctx, "function "+ref, trace.WithSpanKind(trace.SpanKindInternal), trace.WithAttributes(attrs...))
}

// endFunction ends the span of a call with its outcome (an event.Outcome*
// value) and error.
func endFunction(span trace.Span, outcome string, err error) {
	span.SetAttributes(attrOutcome.String(outcome))
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// startSettle starts the span of answering an event: "reply" (a PRE
// decision, d), "ack", "nak" or "term" (a durable event; d nil). Without
// tracing it returns nil.
func (w *Worker) startSettle(ctx context.Context, op string, d *event.Decision) trace.Span {
	if w.tracer == nil {
		return nil
	}
	kind := trace.SpanKindInternal
	if d != nil {
		kind = trace.SpanKindProducer
	}
	_, span := w.tracer.Start(ctx, op, trace.WithSpanKind(kind))
	if d != nil {
		span.SetAttributes(natstrace.AttrAllowed.Bool(d.Allowed), natstrace.AttrCode.String(d.Code))
	}
	return span
}

// endSpan ends span, nil without tracing, with err as its status.
func endSpan(span trace.Span, err error) {
	if span == nil {
		return
	}
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
