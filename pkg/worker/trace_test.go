package worker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/internal/natstrace"
	"github.com/triggerbus/triggerbus/pkg/client"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/handlers/webhook"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// traceRig records the spans of every party of a test (the publisher, the
// worker, a webhook receiver, an API responder) in memory.
type traceRig struct {
	rec *tracetest.SpanRecorder
	tp  *sdktrace.TracerProvider
}

func newTraceRig(t *testing.T) *traceRig {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return &traceRig{rec: rec, tp: tp}
}

// spans waits until want spans have ended and returns them by name; a name
// twice is an error.
func (r *traceRig) spans(t *testing.T, want int) map[string]sdktrace.ReadOnlySpan {
	t.Helper()
	natstest.CheckFor(t, 5*time.Second, 5*time.Millisecond, func() error {
		if n := len(r.rec.Ended()); n < want {
			return fmt.Errorf("%d spans ended, want %d", n, want)
		}
		return nil
	})
	byName := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range r.rec.Ended() {
		if _, dup := byName[s.Name()]; dup {
			t.Fatalf("two spans named %q", s.Name())
		}
		byName[s.Name()] = s
	}
	if len(byName) != want {
		t.Fatalf("spans %v, want %d", names(byName), want)
	}
	return byName
}

func names(m map[string]sdktrace.ReadOnlySpan) []string {
	var n []string
	for k := range m {
		n = append(n, k)
	}
	return n
}

// webhookReceiver is a loopback HTTP server that continues the trace of
// each request in a server span "webhook receive" and sends the headers it
// got on ch.
func (r *traceRig) webhookReceiver(t *testing.T, ch chan<- http.Header) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, req *http.Request) {
		ctx := propagation.TraceContext{}.Extract(req.Context(), propagation.HeaderCarrier(req.Header))
		_, span := r.tp.Tracer("receiver").Start(ctx, "webhook receive", trace.WithSpanKind(trace.SpanKindServer))
		span.End()
		ch <- req.Header.Clone()
		rw.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// apiResponder answers requests on subject (the API bridge's side), each in
// a server span "api receive" continuing the trace of its headers, and
// sends the headers it got on ch.
func (r *traceRig) apiResponder(t *testing.T, nc *nats.Conn, subject string, ch chan<- nats.Header) {
	t.Helper()
	sub, err := nc.Subscribe(subject, func(m *nats.Msg) {
		ctx := propagation.TraceContext{}.Extract(context.Background(), natstrace.Header(m.Header))
		_, span := r.tp.Tracer("api").Start(ctx, "api receive", trace.WithSpanKind(trace.SpanKindServer))
		span.End()
		ch <- m.Header
		_ = m.Respond([]byte(`{}`))
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

// apiCaller is a Go function that makes one request on subject through its
// call's bus, as adminAPI and userAPI do.
func apiCaller(subject string) handlers.Func {
	return func(ctx context.Context, _ *event.Event) (handlers.Result, error) {
		c, _ := handlers.CallFrom(ctx)
		if _, err := c.Bus.Request(ctx, subject, []byte(`{}`), 5*time.Second); err != nil {
			return handlers.Result{}, err
		}
		return handlers.Result{}, nil
	}
}

func newWebhook(t *testing.T, url string) handlers.Handler {
	t.Helper()
	h, err := webhook.New(webhook.Config{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}

func attr(s sdktrace.ReadOnlySpan, key string) (attribute.Value, bool) {
	for _, a := range s.Attributes() {
		if string(a.Key) == key {
			return a.Value, true
		}
	}
	return attribute.Value{}, false
}

func wantAttr(t *testing.T, s sdktrace.ReadOnlySpan, key, want string) {
	t.Helper()
	if v, ok := attr(s, key); !ok || v.Emit() != want {
		t.Errorf("span %q: %s = %q (set %v), want %q", s.Name(), key, v.Emit(), ok, want)
	}
}

func wantChild(t *testing.T, child, parent sdktrace.ReadOnlySpan) {
	t.Helper()
	if child.Parent().SpanID() != parent.SpanContext().SpanID() {
		t.Errorf("span %q: parent %s, want %q (%s)", child.Name(), child.Parent().SpanID(), parent.Name(), parent.SpanContext().SpanID())
	}
}

func hasEvent(s sdktrace.ReadOnlySpan, name string) bool {
	for _, e := range s.Events() {
		if e.Name == name {
			return true
		}
	}
	return false
}

// startHops runs a worker (tracing with the rig's provider when traced) with
// two PRE_CREATE.SERVER functions: api_call, a request through the call's
// bus to the rig's API responder, then hook, a webhook to the rig's
// receiver. It returns a client tracing with the rig's provider and the
// channels of the headers the receivers got.
func (r *traceRig) startHops(t *testing.T, traced bool) (*client.Client, <-chan http.Header, <-chan nats.Header) {
	t.Helper()
	s := natstest.RunServer(t)
	hooks := make(chan http.Header, 1)
	apis := make(chan nats.Header, 1)
	srv := r.webhookReceiver(t, hooks)
	r.apiResponder(t, natstest.Connect(t, s), "fco.api.admin.getServer", apis)
	cfg := worker.Config{}
	if traced {
		cfg.TracerProvider = r.tp
	}
	startWorker(t, natstest.Connect(t, s), cfg,
		worker.Function{Ref: "api_call", TriggerType: "PRE_CREATE", Options: []string{"SERVER"}, Priority: 1, Handler: apiCaller("fco.api.admin.getServer")},
		worker.Function{Ref: "hook", TriggerType: "PRE_CREATE", Options: []string{"SERVER"}, Priority: 2, Handler: newWebhook(t, srv.URL)},
	)
	c, err := client.New(natstest.Connect(t, s), client.Options{TracerProvider: r.tp, Propagator: propagation.TraceContext{}, NoRegistryWatch: true})
	if err != nil {
		t.Fatal(err)
	}
	return c, hooks, apis
}

// TestTraceDecideThroughWebhook: one trace from client.Decide through the
// worker to a webhook receiver and an API responder, each span the child of
// the hop before it.
func TestTraceDecideThroughWebhook(t *testing.T) {
	rig := newTraceRig(t)
	c, hooks, apis := rig.startHops(t, true)
	d, err := c.Decide(context.Background(), "PRE_CREATE", "SERVER", &event.Event{Input: json.RawMessage(`{"cpu":4}`)})
	if err != nil || !d.Allowed || len(d.Functions) != 2 {
		t.Fatalf("Decide = %+v, %v; want allowed by both functions", d, err)
	}
	if h := natstest.ChanRecv(t, hooks, 5*time.Second); h.Get("traceparent") == "" {
		t.Errorf("webhook request headers %v carry no traceparent", h)
	}
	if h := natstest.ChanRecv(t, apis, 5*time.Second); h.Get("traceparent") == "" {
		t.Errorf("API request headers %v carry no traceparent", h)
	}

	sp := rig.spans(t, 7)
	send := sp["send trigger.PRE_CREATE.SERVER"]
	process := sp["process trigger.PRE_CREATE.SERVER"]
	apiFn, hookFn := sp["function api_call"], sp["function hook"]
	receive, api, reply := sp["webhook receive"], sp["api receive"], sp["reply"]
	for name, s := range map[string]sdktrace.ReadOnlySpan{"send": send, "process": process, "function api_call": apiFn, "function hook": hookFn, "webhook receive": receive, "api receive": api, "reply": reply} {
		if s == nil {
			t.Fatalf("no span %q in %v", name, names(sp))
		}
		if s.SpanContext().TraceID() != send.SpanContext().TraceID() {
			t.Errorf("span %q in trace %s, want %s", name, s.SpanContext().TraceID(), send.SpanContext().TraceID())
		}
	}
	if send.Parent().IsValid() || send.SpanKind() != trace.SpanKindClient {
		t.Errorf("client span: parent %v, kind %v; want a root of kind client", send.Parent(), send.SpanKind())
	}
	wantChild(t, process, send)
	wantChild(t, apiFn, process)
	wantChild(t, hookFn, process)
	wantChild(t, reply, process)
	wantChild(t, api, apiFn)
	wantChild(t, receive, hookFn)
	if process.SpanKind() != trace.SpanKindServer {
		t.Errorf("worker span kind %v, want server", process.SpanKind())
	}
	for _, s := range []sdktrace.ReadOnlySpan{send, process} {
		wantAttr(t, s, "messaging.system", "nats")
		wantAttr(t, s, "messaging.destination.name", "trigger.PRE_CREATE.SERVER")
		wantAttr(t, s, "messaging.message.id", d.ID)
	}
	wantAttr(t, send, "trigger.decision.allowed", "true")
	wantAttr(t, hookFn, "trigger.function", "hook")
	wantAttr(t, hookFn, "trigger.outcome", event.OutcomeContinue)
	wantAttr(t, reply, "trigger.decision.allowed", "true")
	if !hasEvent(process, "match") || !hasEvent(process, "decode") {
		t.Errorf("worker span events %v, want match and decode", process.Events())
	}
}

// TestTracePublishDurable: a durable POST event's trace goes from
// client.Publish to the worker's consumer span, its function and its ack.
func TestTracePublishDurable(t *testing.T) {
	s := natstest.RunServer(t, natstest.WithJetStream())
	rig := newTraceRig(t)
	ran := make(chan struct{}, 1)
	startWorker(t, natstest.Connect(t, s), worker.Config{TracerProvider: rig.tp, Durable: durableTestConfig()},
		fn("on_create", "POST_CREATE", []string{"SERVER"}, 0, func(context.Context, *event.Event) (handlers.Result, error) {
			ran <- struct{}{}
			return handlers.Result{}, nil
		}))
	c, err := client.New(natstest.Connect(t, s), client.Options{Durable: true, TracerProvider: rig.tp, Propagator: propagation.TraceContext{}})
	if err != nil {
		t.Fatal(err)
	}
	id, err := c.Publish(context.Background(), "POST_CREATE", "SERVER", &event.Event{Input: json.RawMessage(`{"cpu":4}`)})
	if err != nil {
		t.Fatal(err)
	}
	natstest.ChanRecv(t, ran, 5*time.Second)

	sp := rig.spans(t, 4)
	send, process := sp["send trigger.POST_CREATE.SERVER"], sp["process trigger.POST_CREATE.SERVER"]
	call, ack := sp["function on_create"], sp["ack"]
	if send == nil || process == nil || call == nil || ack == nil {
		t.Fatalf("spans %v, want send, process, function and ack", names(sp))
	}
	if send.SpanKind() != trace.SpanKindProducer || process.SpanKind() != trace.SpanKindConsumer {
		t.Errorf("kinds %v -> %v, want producer -> consumer", send.SpanKind(), process.SpanKind())
	}
	wantChild(t, process, send)
	wantChild(t, call, process)
	wantChild(t, ack, process)
	for _, s := range []sdktrace.ReadOnlySpan{process, call, ack} {
		if s.SpanContext().TraceID() != send.SpanContext().TraceID() {
			t.Errorf("span %q not in the publisher's trace", s.Name())
		}
	}
	wantAttr(t, process, "messaging.message.id", id)
	wantAttr(t, call, "trigger.attempt", "1")
	wantAttr(t, call, "trigger.outcome", event.OutcomeContinue)
}

// TestTraceFunctionFailure: a failed call's span has an error status and
// its outcome, and an invalid event's span an error status.
func TestTraceFunctionFailure(t *testing.T) {
	s := natstest.RunServer(t)
	rig := newTraceRig(t)
	startWorker(t, natstest.Connect(t, s), worker.Config{TracerProvider: rig.tp},
		fn("broken", "PRE_CREATE", []string{"SERVER"}, 0, func(context.Context, *event.Event) (handlers.Result, error) {
			return handlers.Result{}, fmt.Errorf("database down")
		}))
	nc := natstest.Connect(t, s)
	c, err := client.New(nc, client.Options{TracerProvider: rig.tp, Propagator: propagation.TraceContext{}, NoRegistryWatch: true})
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.Decide(context.Background(), "PRE_CREATE", "SERVER", nil)
	if err != nil || d.Allowed {
		t.Fatalf("Decide = %+v, %v; want refused", d, err)
	}
	sp := rig.spans(t, 4)
	call := sp["function broken"]
	if call == nil || call.Status().Code != codes.Error || !strings.Contains(call.Status().Description, "database down") {
		t.Fatalf("function span %v, want an error status", call)
	}
	wantAttr(t, call, "trigger.outcome", event.OutcomeError)
	wantAttr(t, sp["reply"], "trigger.decision.allowed", "false")
	wantAttr(t, sp["send trigger.PRE_CREATE.SERVER"], "trigger.decision.code", d.Code)

	// An event that does not decode.
	rig.rec.Reset()
	if _, err := nc.Request("trigger.PRE_CREATE.SERVER", []byte(`{"input":`), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	sp = rig.spans(t, 2)
	process := sp["process trigger.PRE_CREATE.SERVER"]
	if process == nil || process.Status().Code != codes.Error || process.Parent().IsValid() {
		t.Fatalf("spans %v, want a root worker span with an error status", names(sp))
	}
}

// TestTraceOff: a worker without a TracerProvider makes no span and sends no
// trace context on, even when the event carries one.
func TestTraceOff(t *testing.T) {
	rig := newTraceRig(t)
	c, hooks, apis := rig.startHops(t, false)
	d, err := c.Decide(context.Background(), "PRE_CREATE", "SERVER", nil)
	if err != nil || !d.Allowed {
		t.Fatalf("Decide = %+v, %v; want allowed", d, err)
	}
	if h := natstest.ChanRecv(t, hooks, 5*time.Second); h.Get("traceparent") != "" || h.Get("tracestate") != "" {
		t.Errorf("webhook request carries trace context %q from a worker that does not trace", h.Get("traceparent"))
	}
	if h := natstest.ChanRecv(t, apis, 5*time.Second); h.Get("traceparent") != "" {
		t.Errorf("API request carries trace context %q from a worker that does not trace", h.Get("traceparent"))
	}
	// The client's span, and the receivers' two roots: none of the worker.
	for _, s := range rig.spans(t, 3) {
		if s.InstrumentationScope().Name == "github.com/triggerbus/triggerbus/pkg/worker" {
			t.Errorf("worker span %q with tracing off", s.Name())
		}
		if s.Name() != "send trigger.PRE_CREATE.SERVER" && s.Parent().IsValid() {
			t.Errorf("span %q has parent %s: the trace went on through a worker that does not trace", s.Name(), s.Parent().SpanID())
		}
	}
}

// BenchmarkDecidePreTraced is BenchmarkDecidePre with the worker tracing
// every event (recorded, then dropped: no exporter): what tracing costs
// when on. Off, BenchmarkDecidePre is the row to compare, unchanged by it.
func BenchmarkDecidePreTraced(b *testing.B) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()))
	b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	s := natstest.RunServer(b)
	w, err := worker.New(natstest.Connect(b, s), worker.Config{TracerProvider: tp}, worker.Function{Ref: "noop", TriggerType: "PRE_CREATE", Options: []string{"SERVER"},
		Handler: handlers.Func(func(context.Context, *event.Event) (handlers.Result, error) { return handlers.Result{}, nil })})
	if err != nil {
		b.Fatal(err)
	}
	if err := w.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = w.Stop(context.Background()) })
	c, err := client.New(natstest.Connect(b, s), client.Options{})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	ev := benchEvent()
	b.ReportAllocs()
	for b.Loop() {
		if d, err := c.Decide(ctx, "PRE_CREATE", "SERVER", ev); err != nil || !d.Allowed {
			b.Fatalf("Decide = %+v, %v", d, err)
		}
	}
}
