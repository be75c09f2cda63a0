package natstrace_test

import (
	"context"
	"slices"
	"testing"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/triggerbus/triggerbus/internal/natstrace"
	"github.com/triggerbus/triggerbus/pkg/subjects"
)

func TestHeaderRoundTrip(t *testing.T) {
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ts, _ := trace.ParseTraceState("vendor=opaque")
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, TraceState: ts})
	m := nats.NewMsg("trigger.POST_CREATE.SERVER")
	prop := propagation.TraceContext{}
	prop.Inject(trace.ContextWithSpanContext(context.Background(), sc), natstrace.Header(m.Header))

	if got, want := m.Header.Get(subjects.HeaderTraceParent), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"; got != want {
		t.Errorf("traceparent = %q, want %q", got, want)
	}
	if got := m.Header.Get(subjects.HeaderTraceState); got != "vendor=opaque" {
		t.Errorf("tracestate = %q, want vendor=opaque", got)
	}
	keys := natstrace.Header(m.Header).Keys()
	slices.Sort(keys)
	if !slices.Equal(keys, []string{"traceparent", "tracestate"}) {
		t.Errorf("Keys() = %v", keys)
	}
	got := trace.SpanContextFromContext(prop.Extract(context.Background(), natstrace.Header(m.Header)))
	if !got.Equal(sc.WithRemote(true)) {
		t.Errorf("extracted %v, want %v", got, sc)
	}
}

// TestHeaderAnyCase: a publisher in another language may write the header
// capitalised; it is read all the same.
func TestHeaderAnyCase(t *testing.T) {
	h := nats.Header{"Traceparent": {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}
	sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), natstrace.Header(h)))
	if !sc.IsValid() || sc.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("extracted %v from %v", sc, h)
	}
	if got := natstrace.Header(nil).Get("traceparent"); got != "" {
		t.Errorf("nil Header Get = %q", got)
	}
	natstrace.Header(nil).Set("traceparent", "x") // no panic
}

func TestAttributes(t *testing.T) {
	a := natstrace.Attributes(natstrace.OpSend, "trigger.PRE_CREATE.SERVER", "01J")
	want := map[string]string{
		"messaging.system": "nats", "messaging.operation.type": "send", "messaging.operation.name": "send",
		"messaging.destination.name": "trigger.PRE_CREATE.SERVER", "messaging.message.id": "01J",
	}
	if len(a) != len(want) {
		t.Fatalf("Attributes = %v", a)
	}
	for _, kv := range a {
		if want[string(kv.Key)] != kv.Value.Emit() {
			t.Errorf("%s = %q, want %q", kv.Key, kv.Value.Emit(), want[string(kv.Key)])
		}
	}
	if n := len(natstrace.Attributes(natstrace.OpProcess, "s", "")); n != 4 {
		t.Errorf("without an id: %d attributes, want 4", n)
	}
}
