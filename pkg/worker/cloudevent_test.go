package worker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/pkg/client"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// ceTime is the time of the CloudEvents of these tests, and ceMillis the
// event timeStamp it becomes.
const (
	ceTime   = "2026-12-05T10:20:30.123Z"
	ceMillis = 1796466030123
)

// ceMessage is one way to publish the same event on subject: plain (the
// event as the body), binary-mode CloudEvent (ce-* headers, the event as
// data) or structured-mode CloudEvent (the JSON event format).
type ceMessage func(subject, id string, input string) *nats.Msg

func plainMsg(subject, id, input string) *nats.Msg {
	m := nats.NewMsg(subject)
	m.Data = []byte(`{"id":"` + id + `","timeStamp":` + "1796466030123" + `,"beUUID":"be-1","input":` + input + `}`)
	return m
}

func binaryMsg(subject, id, input string) *nats.Msg {
	m := nats.NewMsg(subject)
	// Header names in any case, values percent-encoded (the source has a
	// space).
	m.Header["ce-specversion"] = []string{"1.0"}
	m.Header["Ce-Id"] = []string{id}
	m.Header["CE-SOURCE"] = []string{"/billing%20service"}
	m.Header["ce-type"] = []string{subject}
	m.Header["ce-time"] = []string{ceTime}
	m.Header["ce-datacontenttype"] = []string{"application/json"}
	m.Header["ce-tenant"] = []string{"acme"} // an extension attribute
	m.Data = []byte(`{"beUUID":"be-1","input":` + input + `}`)
	return m
}

func structuredMsg(subject, id, input string) *nats.Msg {
	m := nats.NewMsg(subject)
	m.Header.Set("Content-Type", "application/cloudevents+json; charset=utf-8")
	m.Data = []byte(`{"specversion":"1.0","id":"` + id + `","source":"/billing","type":"` + subject +
		`","time":"` + ceTime + `","datacontenttype":"application/json","data":{"beUUID":"be-1","input":` + input + `}}`)
	return m
}

var ceModes = []struct {
	name string
	msg  ceMessage
}{
	{"plain", plainMsg},
	{"binary", binaryMsg},
	{"structured", structuredMsg},
}

// quotaFunctions are a PRE chain (a quota that refuses more than 16 CPUs,
// then a function that fills in the RAM) and a POST function that hands
// each event it runs to got.
func quotaFunctions(got chan<- *event.Event) []worker.Function {
	quota := func(_ context.Context, ev *event.Event) (handlers.Result, error) {
		var in struct{ CPU int }
		_ = json.Unmarshal(ev.Input, &in)
		if in.CPU > 16 {
			return handlers.Result{ExitState: handlers.Failed, ErrorCode: "QUOTA_EXCEEDED", ErrorMessage: "at most 16 CPUs"}, nil
		}
		return handlers.Result{}, nil
	}
	fill := func(_ context.Context, ev *event.Event) (handlers.Result, error) {
		var in map[string]any
		_ = json.Unmarshal(ev.Input, &in)
		in["ram"] = 2048
		in["id"] = ev.ID
		b, _ := json.Marshal(in)
		return handlers.Result{ExitState: handlers.Success, Input: b}, nil
	}
	return []worker.Function{
		fn("quota", "PRE_CREATE", []string{"SERVER"}, 0, quota),
		fn("fill", "PRE_CREATE", []string{"SERVER"}, 10, fill),
		fn("audit", "POST_CREATE", []string{"SERVER"}, 0, func(_ context.Context, ev *event.Event) (handlers.Result, error) {
			got <- ev
			return handlers.Result{ExitState: handlers.Success}, nil
		}),
	}
}

// decision sends m as a PRE request and returns the decision.
func decision(t *testing.T, nc *nats.Conn, m *nats.Msg) *event.Decision {
	t.Helper()
	reply, err := nc.RequestMsg(m, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	d, err := event.DecodeDecision(reply.Data)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestCloudEventsDecideAsPlain: the same PRE event, plain, binary and
// structured, gets the same decision (allowed or refused, code, message,
// function, modified input), the CloudEvent's id as the decision's id.
func TestCloudEventsDecideAsPlain(t *testing.T) {
	s := natstest.RunServer(t)
	nc := natstest.Connect(t, s)
	startWorker(t, nc, worker.Config{}, quotaFunctions(nil)...)
	for _, input := range []string{`{"cpu":4}`, `{"cpu":64}`} {
		var want *event.Decision
		for _, mode := range ceModes {
			t.Run(mode.name+input, func(t *testing.T) {
				d := decision(t, nc, mode.msg("trigger.PRE_CREATE.SERVER", "ev-"+mode.name, input))
				if d.ID != "ev-"+mode.name {
					t.Errorf("decision id = %q, want the event's %q", d.ID, "ev-"+mode.name)
				}
				if d.Modified {
					// The fill function saw the event's id.
					var in map[string]any
					if err := json.Unmarshal(d.Input, &in); err != nil || in["id"] != "ev-"+mode.name {
						t.Errorf("modified input %s, want the id ev-%s in it", d.Input, mode.name)
					}
				}
				d.ID, d.Input = "", nil
				for i := range d.Functions {
					d.Functions[i].Ms = 0
				}
				if want == nil {
					want = d
					return
				}
				if got, w := mustJSON(t, d), mustJSON(t, want); got != w {
					t.Errorf("decision = %s, want the plain event's %s", got, w)
				}
			})
		}
		if input == `{"cpu":64}` && (want == nil || want.Allowed || want.Code != "QUOTA_EXCEEDED") {
			t.Fatalf("plain decision %+v, want QUOTA_EXCEEDED", want)
		}
	}
}

// TestCloudEventsRunAsPlain: the same POST event, plain, binary and
// structured, runs the function with the same event: id and timeStamp from
// the CloudEvent's id and time, data as the event.
func TestCloudEventsRunAsPlain(t *testing.T) {
	s := natstest.RunServer(t)
	nc := natstest.Connect(t, s)
	got := make(chan *event.Event, 10)
	startWorker(t, nc, worker.Config{}, quotaFunctions(got)...)
	for _, mode := range ceModes {
		t.Run(mode.name, func(t *testing.T) {
			id := "post-" + mode.name
			if err := nc.PublishMsg(mode.msg("trigger.POST_CREATE.SERVER", id, `{"cpu":8}`)); err != nil {
				t.Fatal(err)
			}
			ev := natstest.ChanRecv(t, got, 10*time.Second)
			want := &event.Event{ID: id, TriggerType: "POST_CREATE", TriggerOption: "SERVER", TimeStamp: ceMillis,
				BEUUID: "be-1", Input: json.RawMessage(`{"cpu":8}`)}
			if g, w := mustJSON(t, ev), mustJSON(t, want); g != w {
				t.Errorf("event = %s, want %s", g, w)
			}
		})
	}
}

// TestCloudEventsRefused: a CloudEvent whose type is not its subject, or
// that is not a valid CloudEvent, is refused BAD_REQUEST on a PRE subject
// and dropped and counted invalid on a POST subject; no function runs.
func TestCloudEventsRefused(t *testing.T) {
	s := natstest.RunServer(t)
	nc := natstest.Connect(t, s)
	reg := prometheus.NewRegistry()
	m, err := worker.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *event.Event, 10)
	startWorker(t, nc, worker.Config{Metrics: m}, quotaFunctions(got)...)

	retype := func(mk ceMessage, typ string) ceMessage {
		return func(subject, id, input string) *nats.Msg {
			msg := mk(subject, id, input)
			msg.Header.Del("ce-type")
			if msg.Header.Get("ce-specversion") != "" {
				msg.Header.Set("ce-type", typ)
			}
			msg.Data = []byte(strings.Replace(string(msg.Data), `"type":"`+subject+`"`, `"type":"`+typ+`"`, 1))
			return msg
		}
	}
	edit := func(mk ceMessage, f func(*nats.Msg)) ceMessage {
		return func(subject, id, input string) *nats.Msg {
			msg := mk(subject, id, input)
			f(msg)
			return msg
		}
	}
	tests := []struct {
		name     string
		msg      ceMessage
		wantText string
		wantID   string // the decision's id: the request's Nats-Msg-Id, else its ce-id
	}{
		{"binary other type", retype(binaryMsg, "trigger.PRE_DELETE.SERVER"), "is not the subject", "bad"},
		{"structured other type", retype(structuredMsg, "com.example.server.created"), "is not the subject", ""},
		{"binary no source", edit(binaryMsg, func(m *nats.Msg) { delete(m.Header, "CE-SOURCE") }), "source", "bad"},
		{"binary specversion 0.3", edit(binaryMsg, func(m *nats.Msg) { m.Header.Set("ce-specversion", "0.3") }), "specversion", "bad"},
		{"binary bad percent", edit(binaryMsg, func(m *nats.Msg) { m.Header.Set("Ce-Id", "a%zz") }), "hexadecimal", ""},
		{"binary data not JSON", edit(binaryMsg, func(m *nats.Msg) {
			m.Header.Set("ce-datacontenttype", "text/plain")
			m.Data = []byte("cpu=64")
		}), "not JSON", "bad"},
		{"binary Nats-Msg-Id", edit(binaryMsg, func(m *nats.Msg) {
			m.Header.Set("ce-specversion", "0.3")
			m.Header.Set("Nats-Msg-Id", "msg-id")
		}), "specversion", "msg-id"},
		{"structured batch", edit(structuredMsg, func(m *nats.Msg) {
			m.Header.Set("Content-Type", "application/cloudevents-batch+json")
		}), "not supported", ""},
		{"structured not JSON", edit(structuredMsg, func(m *nats.Msg) { m.Data = []byte("{") }), "CloudEvent", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := decision(t, nc, tt.msg("trigger.PRE_CREATE.SERVER", "bad", `{"cpu":64}`))
			if d.Allowed || d.Code != event.CodeBadRequest || !strings.Contains(d.Message, tt.wantText) {
				t.Errorf("decision = %+v, want BAD_REQUEST saying %q", d, tt.wantText)
			}
			if d.ID != tt.wantID {
				t.Errorf("decision id = %q, want %q", d.ID, tt.wantID)
			}
		})
	}
	dropped := m.EventsDropped.WithLabelValues("POST_CREATE", worker.ReasonInvalid)
	for _, tt := range tests {
		if err := nc.PublishMsg(tt.msg("trigger.POST_CREATE.SERVER", "bad", `{"cpu":8}`)); err != nil {
			t.Fatal(err)
		}
	}
	natstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if n := testutil.ToFloat64(dropped); n != float64(len(tests)) {
			return fmt.Errorf("dropped invalid = %v, want %d", n, len(tests))
		}
		return nil
	})
	// A valid event after the bad ones runs; it is the only one.
	if err := nc.PublishMsg(binaryMsg("trigger.POST_CREATE.SERVER", "good", `{"cpu":8}`)); err != nil {
		t.Fatal(err)
	}
	if ev := natstest.ChanRecv(t, got, 10*time.Second); ev.ID != "good" {
		t.Errorf("function ran for %q, want only the valid event", ev.ID)
	}
	if len(got) != 0 {
		t.Errorf("%d more events ran", len(got))
	}
}

// TestClientCloudEvents: the SDK's CloudEvents option publishes binary-mode
// CloudEvents that workers decide and run as the plain events.
func TestClientCloudEvents(t *testing.T) {
	s := natstest.RunServer(t)
	nc := natstest.Connect(t, s)
	got := make(chan *event.Event, 10)
	startWorker(t, nc, worker.Config{}, quotaFunctions(got)...)
	raw := make(chan *nats.Msg, 10)
	sub, err := nc.ChanSubscribe("trigger.POST_CREATE.>", raw)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	plain, err := client.New(natstest.Connect(t, s), client.Options{NoRegistryWatch: true})
	if err != nil {
		t.Fatal(err)
	}
	ce, err := client.New(natstest.Connect(t, s), client.Options{NoRegistryWatch: true, CloudEvents: true, CloudEventsSource: "/billing service"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, cpu := range []string{`{"cpu":4}`, `{"cpu":64}`} {
		dp, err := plain.Decide(ctx, "PRE_CREATE", "SERVER", &event.Event{Input: json.RawMessage(cpu)})
		if err != nil {
			t.Fatal(err)
		}
		dc, err := ce.Decide(ctx, "PRE_CREATE", "SERVER", &event.Event{Input: json.RawMessage(cpu)})
		if err != nil {
			t.Fatal(err)
		}
		if dp.Allowed != dc.Allowed || dp.Code != dc.Code || dp.Message != dc.Message || dp.Modified != dc.Modified {
			t.Errorf("CloudEvents decision %+v, want as plain %+v", dc, dp)
		}
	}

	ev := &event.Event{ID: "pub-1", TimeStamp: ceMillis, Input: json.RawMessage(`{"cpu":8}`)}
	if _, err := ce.Publish(ctx, "POST_CREATE", "SERVER", ev); err != nil {
		t.Fatal(err)
	}
	m := natstest.ChanRecv(t, raw, 10*time.Second)
	wantHeaders := map[string]string{
		"ce-specversion": "1.0", "ce-id": "pub-1", "ce-source": "/billing%20service",
		"ce-type": "trigger.POST_CREATE.SERVER", "ce-time": ceTime, "ce-datacontenttype": "application/json",
	}
	for k, v := range wantHeaders {
		if got := m.Header.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	run := natstest.ChanRecv(t, got, 10*time.Second)
	if run.ID != "pub-1" || run.TimeStamp != ceMillis || string(run.Input) != `{"cpu":8}` {
		t.Errorf("function ran with %+v", run)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestDurableCloudEvents: on durable delivery, binary and structured
// CloudEvents run with their id; one whose type is not its subject is
// dropped, counted invalid and terminated, never redelivered.
func TestDurableCloudEvents(t *testing.T) {
	r := newDurableRig(t)
	got := r.startCounting(t, "POST_CREATE")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	bad := binaryMsg("trigger.POST_CREATE.SERVER", "d-bad", `{"cpu":4}`)
	bad.Header.Set("ce-type", "trigger.POST_DELETE.SERVER")
	for _, m := range []*nats.Msg{
		binaryMsg("trigger.POST_CREATE.SERVER", "d-binary", `{"cpu":4}`),
		structuredMsg("trigger.POST_CREATE.SERVER", "d-structured", `{"cpu":4}`),
		bad,
	} {
		if _, err := r.js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	invalid := r.metrics.EventsDropped.WithLabelValues("POST_CREATE", worker.ReasonInvalid)
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if v := testutil.ToFloat64(invalid); v != 1 || len(got.all()) != 2 {
			return fmt.Errorf("dropped as invalid = %v, calls %v", v, got.all())
		}
		return nil
	})
	waitDurableSettled(t, r.js, 10*time.Second)
	ids := map[string]bool{}
	for _, c := range got.all() {
		ids[c.id] = true
	}
	if !ids["d-binary"] || !ids["d-structured"] || len(ids) != 2 {
		t.Errorf("ran for %v, want d-binary and d-structured", ids)
	}
	if info := durableConsumerInfo(t, r.js); info.NumRedelivered != 0 {
		t.Errorf("consumer redelivered %d events, want 0", info.NumRedelivered)
	}
}
