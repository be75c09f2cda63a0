package client_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/pkg/client"
)

// published subscribes to subject and returns the headers of the messages
// published there.
func published(t *testing.T, nc *nats.Conn, subject string) <-chan nats.Header {
	t.Helper()
	ch := make(chan nats.Header, 4)
	sub, err := nc.Subscribe(subject, func(m *nats.Msg) { ch <- m.Header })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return ch
}

// TestTraceGlobalProvider: without Options.TracerProvider, a client makes
// no span and writes no trace context until the program sets the global
// provider, except the context the caller's ctx carries; once it is set, the
// client (made before) traces with it.
func TestTraceGlobalProvider(t *testing.T) {
	s := natstest.RunServer(t)
	nc := natstest.Connect(t, s)
	const subject = "trigger.POST_CREATE.SERVER"
	headers := published(t, natstest.Connect(t, s), subject)
	c, err := client.New(nc, client.Options{NoRegistryWatch: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	// No provider, no propagator: nothing.
	if _, err := c.Publish(ctx, "POST_CREATE", "SERVER", nil); err != nil {
		t.Fatal(err)
	}
	if h := natstest.ChanRecv(t, headers, 5*time.Second); h.Get("traceparent") != "" {
		t.Errorf("traceparent %q without a tracer provider or propagator", h.Get("traceparent"))
	}

	// No provider, a propagator, and a span of the caller's in ctx: that
	// span's context goes on.
	withProp, err := client.New(nc, client.Options{Propagator: propagation.TraceContext{}, NoRegistryWatch: true})
	if err != nil {
		t.Fatal(err)
	}
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	caller := trace.ContextWithSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled}))
	if _, err := withProp.Publish(caller, "POST_CREATE", "SERVER", nil); err != nil {
		t.Fatal(err)
	}
	if got, want := natstest.ChanRecv(t, headers, 5*time.Second).Get("traceparent"), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"; got != want {
		t.Errorf("traceparent %q, want the caller's %q", got, want)
	}
	if _, err := withProp.Publish(ctx, "POST_CREATE", "SERVER", nil); err != nil {
		t.Fatal(err)
	}
	if h := natstest.ChanRecv(t, headers, 5*time.Second); h.Get("traceparent") != "" {
		t.Errorf("traceparent %q with no span anywhere", h.Get("traceparent"))
	}

	// The program sets the global provider and propagator: the first
	// client traces from now on.
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	id, err := c.Publish(ctx, "POST_CREATE", "SERVER", nil)
	if err != nil {
		t.Fatal(err)
	}
	h := natstest.ChanRecv(t, headers, 5*time.Second)
	spans := rec.Ended()
	if len(spans) != 1 || spans[0].Name() != "send "+subject || spans[0].SpanKind() != trace.SpanKindProducer {
		t.Fatalf("spans %v, want one producer span send %s", spans, subject)
	}
	sc := spans[0].SpanContext()
	if want := "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-01"; h.Get("traceparent") != want {
		t.Errorf("traceparent %q, want %q (the client's span)", h.Get("traceparent"), want)
	}
	found := false
	for _, a := range spans[0].Attributes() {
		if a.Key == "messaging.message.id" && a.Value.AsString() == id {
			found = true
		}
	}
	if !found {
		t.Errorf("span attributes %v lack messaging.message.id %s", spans[0].Attributes(), id)
	}
}
