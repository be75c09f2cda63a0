package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/pkg/client"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/subjects"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// smallPayload is the max payload of the servers of these tests: small, so
// that a decision outgrows it quickly.
const smallPayload = 64 << 10

// replyDeadline bounds each request of these tests. A decision that is
// never sent shows as a TIMEOUT after it.
const replyDeadline = 10 * time.Second

func smallPayloadServer(t *testing.T) *server.Server {
	return natstest.RunServer(t, natstest.WithOptions(func(o *server.Options) { o.MaxPayload = smallPayload }))
}

func newReplyMetrics(t *testing.T) *worker.Metrics {
	t.Helper()
	m, err := worker.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// grow is a PRE function that doubles the input: it adds a field as long
// as the input it got.
func grow(_ context.Context, ev *event.Event) (handlers.Result, error) {
	var in map[string]any
	if err := json.Unmarshal(ev.Input, &in); err != nil {
		return handlers.Result{}, err
	}
	in["copy"] = strings.Repeat("x", len(ev.Input))
	b, err := json.Marshal(in)
	if err != nil {
		return handlers.Result{}, err
	}
	return handlers.Result{ExitState: handlers.Success, Input: b}, nil
}

// bigInput is an input of about n bytes.
func bigInput(n int) json.RawMessage {
	return json.RawMessage(`{"name":"web-1","blob":"` + strings.Repeat("a", n) + `"}`)
}

// TestPreDecisionTooLarge: a PRE request under the max payload whose
// functions make the decision larger than it is refused at once with
// DECISION_TOO_LARGE, never left to the caller's timeout (which this
// caller would allow).
func TestPreDecisionTooLarge(t *testing.T) {
	s := smallPayloadServer(t)
	m := newReplyMetrics(t)
	deny := func(context.Context, *event.Event) (handlers.Result, error) {
		return handlers.Result{ExitState: handlers.Failed, ErrorCode: "QUOTA_EXCEEDED", ErrorMessage: "no more servers"}, nil
	}
	startWorker(t, natstest.Connect(t, s), worker.Config{Metrics: m},
		fn("grow", "PRE_CREATE", []string{"ANY"}, 0, grow),
		fn("deny_disks", "PRE_CREATE", []string{"DISK"}, 10, deny))
	c, err := client.New(natstest.Connect(t, s), client.Options{OnTimeout: client.Allow, NoWorker: client.Allow})
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name, option string
		size         int
		wantMsg      []string
		wantFuncs    int
	}{
		// grow allows, with an input twice the request's.
		{"allowed", "SERVER", 40 << 10, []string{"larger than the NATS max payload of 65536 bytes", "the input the functions returned is"}, 1},
		// grow modifies, then deny_disks refuses: the refusal keeps saying
		// who refused and why.
		{"denied", "DISK", 40 << 10, []string{"larger than the NATS max payload of 65536 bytes", "refused the request with QUOTA_EXCEEDED: no more servers"}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), replyDeadline)
			defer cancel()
			d, err := c.Decide(ctx, "PRE_CREATE", tt.option, &event.Event{Input: bigInput(tt.size)})
			if err != nil {
				t.Fatal(err)
			}
			if d.Allowed || d.Code != event.CodeDecisionTooLarge {
				t.Fatalf("decision = allowed %v, code %s (%s), want a %s refusal", d.Allowed, d.Code, d.Message, event.CodeDecisionTooLarge)
			}
			for _, want := range tt.wantMsg {
				if !strings.Contains(d.Message, want) {
					t.Errorf("message %q does not say %q", d.Message, want)
				}
			}
			if d.Modified || d.Input != nil || len(d.Functions) != tt.wantFuncs || d.Functions[0].Ref != "grow" {
				t.Errorf("decision = %+v, want no input and the %d functions that ran", d, tt.wantFuncs)
			}
		})
	}
	// A request whose decision fits still gets it.
	d, err := c.Decide(context.Background(), "PRE_CREATE", "SERVER", &event.Event{Input: bigInput(1 << 10)})
	if err != nil {
		t.Fatal(err)
	}
	if !d.Allowed || !d.Modified {
		t.Errorf("small request: %+v, want allowed and modified", d)
	}

	val := testutil.ToFloat64
	if got := val(m.PreTooLarge.WithLabelValues("PRE_CREATE")); got != 2 {
		t.Errorf("trigger_pre_decisions_too_large_total{PRE_CREATE} = %v, want 2", got)
	}
	if got := val(m.PreDecisions.WithLabelValues("PRE_CREATE", "denied")); got != 2 {
		t.Errorf("denied decisions = %v, want 2 (the refusals)", got)
	}
	if got := val(m.PreDecisions.WithLabelValues("PRE_CREATE", "allowed")); got != 1 {
		t.Errorf("allowed decisions = %v, want 1", got)
	}
}

// TestPreTimeoutReplyTooLarge: the answer the worker gives at the caller's
// deadline, with the results so far, is refused in a form that fits when
// those results (a function's long error) do not.
func TestPreTimeoutReplyTooLarge(t *testing.T) {
	s := smallPayloadServer(t)
	m := newReplyMetrics(t)
	chatty := func(context.Context, *event.Event) (handlers.Result, error) {
		return handlers.Result{}, errors.New("backend said: " + strings.Repeat("<html>", 20<<10))
	}
	hang := func(ctx context.Context, _ *event.Event) (handlers.Result, error) {
		<-ctx.Done()
		return handlers.Result{}, ctx.Err()
	}
	startWorker(t, natstest.Connect(t, s), worker.Config{Metrics: m},
		worker.Function{Ref: "chatty", TriggerType: "PRE_DELETE", Options: []string{"ANY"}, FailurePolicy: worker.FailOpen, Handler: handlers.Func(chatty)},
		worker.Function{Ref: "hang", TriggerType: "PRE_DELETE", Options: []string{"ANY"}, Priority: 10, Timeout: time.Minute, Handler: handlers.Func(hang)})
	// The request's deadline, which the worker's watchdog answers at, is a
	// second away; the caller waits much longer for that answer, so that
	// the test does not depend on how fast a loaded machine carries it.
	msg := nats.NewMsg("trigger.PRE_DELETE.SERVER")
	msg.Data = []byte(`{"id":"too-large-at-timeout","input":{}}`)
	msg.Header.Set(subjects.HeaderDeadline, strconv.FormatInt(time.Now().Add(time.Second).UnixMilli(), 10))
	reply, err := natstest.Connect(t, s).RequestMsg(msg, replyDeadline)
	if err != nil {
		t.Fatalf("request: %v, want the worker's answer at the deadline", err)
	}
	d, err := event.DecodeDecision(reply.Data)
	if err != nil {
		t.Fatal(err)
	}
	if d.Allowed || d.Code != event.CodeDecisionTooLarge || !strings.Contains(d.Message, "refused the request with TIMEOUT") {
		t.Fatalf("decision = allowed %v, code %s (%s), want a %s refusal of the TIMEOUT answer", d.Allowed, d.Code, d.Message, event.CodeDecisionTooLarge)
	}
	// The watchdog's answer lists chatty; the chain's own, when hang returns
	// at the same deadline and wins the race, lists hang too.
	if len(d.Functions) == 0 || d.Functions[0].Ref != "chatty" || len(d.Functions[0].Error) > 256 {
		t.Errorf("functions = %+v, want chatty's result first, with its error cut", d.Functions)
	}
	if got := testutil.ToFloat64(m.PreTooLarge.WithLabelValues("PRE_DELETE")); got != 1 {
		t.Errorf("trigger_pre_decisions_too_large_total{PRE_DELETE} = %v, want 1", got)
	}
}

// TestPreBadRequestReplyFits: a bad request whose reason, quoted, would be
// larger than the max payload (a long field or header value made of
// characters JSON escapes six bytes wide) is still answered BAD_REQUEST,
// with the request's Nats-Msg-Id as its id.
func TestPreBadRequestReplyFits(t *testing.T) {
	s := smallPayloadServer(t)
	startWorker(t, natstest.Connect(t, s), worker.Config{},
		fn("grow", "PRE_CREATE", []string{"ANY"}, 0, grow))
	nc := natstest.Connect(t, s)
	long := strings.Repeat("<", 50<<10)

	tests := []struct {
		name   string
		data   string
		header nats.Header
	}{
		{"type mismatch", `{"triggerType":"` + long + `","input":{}}`, nil},
		{"bad deadline", `{"input":{}}`, nats.Header{subjects.HeaderDeadline: []string{long}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := nats.NewMsg("trigger.PRE_CREATE.SERVER")
			msg.Data = []byte(tt.data)
			for k, v := range tt.header {
				msg.Header[k] = v
			}
			msg.Header.Set(subjects.HeaderMsgID, "req-1")
			reply, err := nc.RequestMsg(msg, replyDeadline)
			if err != nil {
				t.Fatalf("request: %v, want a BAD_REQUEST answer", err)
			}
			d, err := event.DecodeDecision(reply.Data)
			if err != nil {
				t.Fatal(err)
			}
			if d.Allowed || d.Code != event.CodeBadRequest || len(reply.Data) > smallPayload {
				t.Errorf("decision = allowed %v, code %s, %d bytes, want a BAD_REQUEST that fits", d.Allowed, d.Code, len(reply.Data))
			}
			if !strings.HasSuffix(d.Message, "…") && !strings.HasSuffix(d.Message, `…"`) {
				t.Errorf("message %.80q… (%d bytes), want it cut", d.Message, len(d.Message))
			}
			if d.ID != "req-1" {
				t.Errorf("decision id = %q, want the request's Nats-Msg-Id", d.ID)
			}
		})
	}
}

// TestPreTooLargeSeries: the refusal counter has a series at 0 for every
// PRE type from the start.
func TestPreTooLargeSeries(t *testing.T) {
	m := newReplyMetrics(t)
	n := 0
	for _, typ := range subjects.Types() {
		if typ.IsPre() {
			n++
		}
	}
	if got := testutil.CollectAndCount(m.PreTooLarge); got != n {
		t.Errorf("trigger_pre_decisions_too_large_total has %d series, want %d (one per PRE type)", got, n)
	}
}
