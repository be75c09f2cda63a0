package worker_test

import (
	"context"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/subjects"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// TestPreEventDeadline: the deadline in a PRE request's event (as the SDK
// sends it) works as Trigger-Deadline does: a request whose deadline has
// passed runs nothing and is answered EXPIRED with the event's id, a
// function that overruns it is answered TIMEOUT before it, a deadline that
// is not Unix milliseconds is a BAD_REQUEST, and with both the earlier one
// counts; the calls' contexts end no later than it.
func TestPreEventDeadline(t *testing.T) {
	s := natstest.RunServer(t)
	m := newReplyMetrics(t)
	var ran atomic.Int32
	startWorker(t, natstest.Connect(t, s), worker.Config{Metrics: m},
		worker.Function{Ref: "hang", TriggerType: "PRE_DELETE", Options: []string{"ANY"}, Timeout: time.Minute,
			// Ignores its context: only the watchdog answers in time.
			Handler: handlers.Func(func(context.Context, *event.Event) (handlers.Result, error) {
				ran.Add(1)
				time.Sleep(2 * time.Second)
				return handlers.Result{}, nil
			})},
		fn("fast", "PRE_CREATE", []string{"ANY"}, 0, func(ctx context.Context, ev *event.Event) (handlers.Result, error) {
			ran.Add(1)
			if dl, ok := ctx.Deadline(); ev.Deadline != 0 && (!ok || dl.After(time.UnixMilli(ev.Deadline))) {
				return handlers.Result{ExitState: handlers.Failed, ErrorCode: "DEADLINE", ErrorMessage: "the call's deadline does not follow the event's"}, nil
			}
			return handlers.Result{}, nil
		}))
	nc := natstest.Connect(t, s)
	ms := func(d time.Duration) string { return strconv.FormatInt(time.Now().Add(d).UnixMilli(), 10) }
	ask := func(t *testing.T, subject, data string, h nats.Header) *event.Decision {
		t.Helper()
		msg := nats.NewMsg(subject)
		msg.Data = []byte(data)
		for k, v := range h {
			msg.Header[k] = v
		}
		reply, err := nc.RequestMsg(msg, replyDeadline)
		if err != nil {
			t.Fatalf("request: %v", err)
		}
		d, err := event.DecodeDecision(reply.Data)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	expired := m.EventsDropped.WithLabelValues("PRE_CREATE", worker.ReasonExpired)

	t.Run("passed", func(t *testing.T) {
		before, runs := testutil.ToFloat64(expired), ran.Load()
		d := ask(t, "trigger.PRE_CREATE.SERVER", `{"id":"late-1","deadline":`+ms(-time.Minute)+`,"input":{}}`, nil)
		if d.Allowed || d.Code != event.CodeExpired || d.ID != "late-1" {
			t.Errorf("decision = %+v, want EXPIRED with the event's id", d)
		}
		if ran.Load() != runs {
			t.Error("a function ran for an expired request")
		}
		if got := testutil.ToFloat64(expired) - before; got != 1 {
			t.Errorf("trigger_events_dropped_total{expired} grew by %v, want 1", got)
		}
	})
	t.Run("earlier in the event than in the header", func(t *testing.T) {
		d := ask(t, "trigger.PRE_CREATE.SERVER", `{"id":"late-2","deadline":`+ms(-time.Minute)+`}`,
			nats.Header{subjects.HeaderDeadline: []string{ms(time.Minute)}})
		if d.Code != event.CodeExpired {
			t.Errorf("decision = %+v, want EXPIRED", d)
		}
	})
	t.Run("earlier in the header than in the event", func(t *testing.T) {
		d := ask(t, "trigger.PRE_CREATE.SERVER", `{"id":"late-3","deadline":`+ms(time.Minute)+`}`,
			nats.Header{subjects.HeaderDeadline: []string{ms(-time.Minute)}})
		if d.Code != event.CodeExpired {
			t.Errorf("decision = %+v, want EXPIRED", d)
		}
	})
	t.Run("binary CloudEvent", func(t *testing.T) {
		// The event is the body: its deadline counts as the plain event's.
		h := nats.Header{"ce-specversion": {"1.0"}, "ce-id": {"ce-late-1"}, "ce-source": {"/orchestrator"},
			"ce-type": {"trigger.PRE_CREATE.SERVER"}, "ce-datacontenttype": {"application/json"}}
		d := ask(t, "trigger.PRE_CREATE.SERVER", `{"deadline":`+ms(-time.Minute)+`,"input":{}}`, h)
		if d.Allowed || d.Code != event.CodeExpired || d.ID != "ce-late-1" {
			t.Errorf("decision = %+v, want EXPIRED with the CloudEvent's id", d)
		}
	})
	t.Run("in time", func(t *testing.T) {
		for _, data := range []string{`{"deadline":` + ms(time.Minute) + `}`, `{}`, `{"deadline":0}`, `{"deadline":null}`} {
			d := ask(t, "trigger.PRE_CREATE.SERVER", data, nil)
			if !d.Allowed || len(d.Functions) != 1 {
				t.Errorf("%s: decision = %+v, want allowed by fast", data, d)
			}
		}
	})
	t.Run("not milliseconds", func(t *testing.T) {
		for _, v := range []string{`"soon"`, `1.5`, `1e400`} {
			d := ask(t, "trigger.PRE_CREATE.SERVER", `{"deadline":`+v+`}`, nats.Header{subjects.HeaderMsgID: []string{"bad-1"}})
			if d.Allowed || d.Code != event.CodeBadRequest || !strings.Contains(d.Message, `field "deadline"`) || d.ID != "bad-1" {
				t.Errorf("deadline %s: decision = %+v, want BAD_REQUEST on the deadline field", v, d)
			}
		}
	})
	t.Run("overrun", func(t *testing.T) {
		sent := time.Now()
		deadline := sent.Add(500 * time.Millisecond)
		d := ask(t, "trigger.PRE_DELETE.SERVER", `{"id":"slow-1","deadline":`+strconv.FormatInt(deadline.UnixMilli(), 10)+`}`, nil)
		if d.Allowed || d.Code != event.CodeTimeout || d.Function != "hang" || d.ID != "slow-1" {
			t.Errorf("decision = %+v, want TIMEOUT by hang", d)
		}
		// Answered at the deadline, well before hang returns: a loaded
		// machine may carry the answer late, not seconds late.
		if took := time.Since(sent); took >= 2*time.Second {
			t.Errorf("answered after %v, want at the deadline (500ms), before hang returns", took)
		}
	})
}
