package integration

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/pkg/client"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/subjects"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// TestPreAllowDeny asks the same questions through the SDK and as a raw
// NATS request: both get the same decision.
func TestPreAllowDeny(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	startWorker(t, natstest.Connect(t, s), worker.Config{},
		fn("deny_big_servers", "PRE_CREATE", []string{"SERVER"}, 0, denyBigServers))
	c := newClient(t, s, client.Options{})
	raw := natstest.Connect(t, s)
	ctx := context.Background()

	tests := []struct {
		name        string
		input       string
		wantAllowed bool
		wantCode    string
		wantMessage string
		wantFunc    string // the decision's function: the one that refused
		wantResult  string
	}{
		{name: "allow", input: `{"cpu":4}`, wantAllowed: true, wantResult: event.OutcomeSuccess},
		{name: "deny", input: `{"cpu":64}`, wantCode: "QUOTA_EXCEEDED", wantMessage: "servers are limited to 16 CPUs",
			wantFunc: "deny_big_servers", wantResult: event.OutcomeFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := `{"input":` + tt.input + `}`
			d := decide(t, ctx, c, "PRE_CREATE", "SERVER", &event.Event{Input: json.RawMessage(tt.input)})
			rawReply := request(t, raw, &nats.Msg{Subject: "trigger.PRE_CREATE.SERVER", Data: []byte(body)})
			rd := decodeDecision(t, rawReply)

			for _, got := range []*event.Decision{d, rd} {
				if got.Allowed != tt.wantAllowed || got.Code != tt.wantCode || got.Message != tt.wantMessage || got.Function != tt.wantFunc {
					t.Errorf("decision = allowed %v code %q message %q function %q, want %v %q %q %q",
						got.Allowed, got.Code, got.Message, got.Function, tt.wantAllowed, tt.wantCode, tt.wantMessage, tt.wantFunc)
				}
				if len(got.Functions) != 1 || got.Functions[0].Ref != "deny_big_servers" || got.Functions[0].Result != tt.wantResult {
					t.Errorf("functions = %+v, want deny_big_servers %s", got.Functions, tt.wantResult)
				}
				if got.ID == "" || got.Modified || got.Input != nil {
					t.Errorf("decision = %+v, want an id and no modified input", got)
				}
			}
			sameDecision(t, "SDK vs raw request", encodeDecision(t, d), rawReply)
		})
	}
}

// TestPreModifyChain: the input a function changes is what the next one
// sees and what the caller gets.
func TestPreModifyChain(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	seen := make(chan json.RawMessage, 1)
	addRAM := func(_ context.Context, ev *event.Event) (handlers.Result, error) {
		var in map[string]any
		if err := json.Unmarshal(ev.Input, &in); err != nil {
			return handlers.Result{}, err
		}
		in["ram"] = 2048
		b, err := json.Marshal(in)
		return handlers.Result{ExitState: handlers.Success, Input: b}, err
	}
	look := func(_ context.Context, ev *event.Event) (handlers.Result, error) {
		seen <- ev.Input
		return handlers.Result{}, nil
	}
	startWorker(t, natstest.Connect(t, s), worker.Config{},
		fn("add_ram", "PRE_CREATE", []string{"SERVER"}, 1, addRAM),
		fn("look", "PRE_CREATE", []string{"ANY"}, 2, look))
	c := newClient(t, s, client.Options{})

	d := decide(t, context.Background(), c, "PRE_CREATE", "SERVER", &event.Event{Input: json.RawMessage(`{"cpu":2}`)})
	const want = `{"cpu":2,"ram":2048}`
	if got := natstest.ChanRecv(t, seen, waitShort); string(got) != want {
		t.Errorf("second function saw input %s, want %s", got, want)
	}
	if !d.Allowed || !d.Modified || string(d.Input) != want {
		t.Errorf("decision = allowed %v modified %v input %s, want true true %s", d.Allowed, d.Modified, d.Input, want)
	}
	if got := refs(d); !slices.Equal(got, []string{"add_ram", "look"}) {
		t.Errorf("functions = %v, want [add_ram look]", got)
	}
}

// TestPreChainOrder: functions run by ascending priority, ties by ref, and
// the decision lists them in that order.
func TestPreChainOrder(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	order := make(chan string, 8)
	record := func(ref string) handlers.Func {
		return func(context.Context, *event.Event) (handlers.Result, error) {
			order <- ref
			return handlers.Result{}, nil
		}
	}
	startWorker(t, natstest.Connect(t, s), worker.Config{},
		fn("b_tie", "PRE_MODIFY", []string{"SERVER"}, 5, record("b_tie")),
		fn("z_first", "PRE_MODIFY", []string{"ANY"}, -5, record("z_first")),
		fn("a_tie", "PRE_MODIFY", []string{"ANY"}, 5, record("a_tie")),
		fn("c_last", "PRE_MODIFY", []string{"SERVER"}, 100, record("c_last")),
	)
	c := newClient(t, s, client.Options{})
	d := decide(t, context.Background(), c, "PRE_MODIFY", "SERVER", nil)

	want := []string{"z_first", "a_tie", "b_tie", "c_last"}
	var ran []string
	for range want {
		ran = append(ran, natstest.ChanRecv(t, order, waitShort))
	}
	if !slices.Equal(ran, want) {
		t.Errorf("ran %v, want %v", ran, want)
	}
	if got := refs(d); !slices.Equal(got, want) {
		t.Errorf("decision lists %v, want %v", got, want)
	}
	if !d.Allowed {
		t.Errorf("decision = %+v, want allowed", d)
	}
}

// hang is a function that waits for its ctx to end.
func hang(ctx context.Context, _ *event.Event) (handlers.Result, error) {
	<-ctx.Done()
	return handlers.Result{}, ctx.Err()
}

// TestPreTimeoutPolicies: a function that times out refuses the action
// under failure_policy fail and lets it through, counted as failed open,
// under ignore.
func TestPreTimeoutPolicies(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	metrics := newMetrics(t)
	var after atomic.Int64
	startWorker(t, natstest.Connect(t, s), worker.Config{Metrics: metrics},
		worker.Function{Ref: "slow_closed", TriggerType: "PRE_DELETE", Options: []string{"SERVER"},
			Timeout: 50 * time.Millisecond, Handler: handlers.Func(hang)},
		worker.Function{Ref: "slow_open", TriggerType: "PRE_DELETE", Options: []string{"DISK"},
			Timeout: 50 * time.Millisecond, FailurePolicy: worker.FailOpen, Handler: handlers.Func(hang)},
		fn("after", "PRE_DELETE", []string{"ANY"}, 10, cont(&after)),
	)
	c := newClient(t, s, client.Options{})
	ctx := context.Background()

	t.Run("fail", func(t *testing.T) {
		d := decide(t, ctx, c, "PRE_DELETE", "SERVER", nil)
		if d.Allowed || d.Code != event.CodeTimeout || d.Function != "slow_closed" || !strings.Contains(d.Message, "slow_closed") {
			t.Errorf("decision = %+v, want denied, code TIMEOUT, function slow_closed named", d)
		}
		if len(d.Functions) != 1 || d.Functions[0].Result != event.OutcomeTimeout {
			t.Errorf("functions = %+v, want slow_closed TIMEOUT only (the chain stops)", d.Functions)
		}
		if n := after.Load(); n != 0 {
			t.Errorf("the function after a refusal ran %d times", n)
		}
		if n := value(metrics.FunctionInvocations.WithLabelValues("slow_closed", "PRE_DELETE", worker.ResultTimeout)); n != 1 {
			t.Errorf("slow_closed timeouts counted = %v, want 1", n)
		}
	})
	t.Run("ignore", func(t *testing.T) {
		d := decide(t, ctx, c, "PRE_DELETE", "DISK", nil)
		if !d.Allowed || d.Code != "" {
			t.Errorf("decision = %+v, want allowed", d)
		}
		want := []string{"slow_open", "after"}
		if got := refs(d); !slices.Equal(got, want) || d.Functions[0].Result != event.OutcomeTimeout {
			t.Errorf("functions = %+v, want %v with slow_open TIMEOUT", d.Functions, want)
		}
		if n := value(metrics.PreFailOpen.WithLabelValues("slow_open")); n != 1 {
			t.Errorf("trigger_pre_fail_open_total{function=slow_open} = %v, want 1", n)
		}
		if n := value(metrics.PreFailOpen.WithLabelValues("slow_closed")); n != 0 {
			t.Errorf("trigger_pre_fail_open_total{function=slow_closed} = %v, want 0", n)
		}
	})
}

// TestPreShadowMode: a shadow function runs and is reported, but neither
// refuses nor modifies the action.
func TestPreShadowMode(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	var enforced atomic.Int64
	startWorker(t, natstest.Connect(t, s), worker.Config{},
		worker.Function{Ref: "shadow_deny", TriggerType: "PRE_MODIFY", Options: []string{"SERVER"}, Mode: worker.Shadow,
			Handler: deny(new(atomic.Int64), "WOULD_DENY", "would refuse")},
		worker.Function{Ref: "shadow_modify", TriggerType: "PRE_MODIFY", Options: []string{"SERVER"}, Priority: 1, Mode: worker.Shadow,
			Handler: handlers.Func(func(context.Context, *event.Event) (handlers.Result, error) {
				return handlers.Result{ExitState: handlers.Success, Input: json.RawMessage(`{"cpu":1}`)}, nil
			})},
		worker.Function{Ref: "shadow_error", TriggerType: "PRE_MODIFY", Options: []string{"SERVER"}, Priority: 2, Mode: worker.Shadow,
			Handler: handlers.Func(func(context.Context, *event.Event) (handlers.Result, error) { panic("shadow bug") })},
		fn("enforced", "PRE_MODIFY", []string{"SERVER"}, 3, cont(&enforced)),
	)
	c := newClient(t, s, client.Options{})
	d := decide(t, context.Background(), c, "PRE_MODIFY", "SERVER", &event.Event{Input: json.RawMessage(`{"cpu":8}`)})

	if !d.Allowed || d.Code != "" || d.Modified || d.Input != nil {
		t.Errorf("decision = %+v, want allowed and not modified", d)
	}
	want := []event.FunctionResult{
		{Ref: "shadow_deny", Result: event.OutcomeFailed, Shadow: true},
		{Ref: "shadow_modify", Result: event.OutcomeSuccess, Shadow: true},
		{Ref: "shadow_error", Result: event.OutcomeError, Shadow: true},
		{Ref: "enforced", Result: event.OutcomeContinue},
	}
	if len(d.Functions) != len(want) {
		t.Fatalf("functions = %+v, want %d", d.Functions, len(want))
	}
	for i, w := range want {
		got := d.Functions[i]
		if got.Ref != w.Ref || got.Result != w.Result || got.Shadow != w.Shadow {
			t.Errorf("functions[%d] = %+v, want ref %s result %s shadow %v", i, got, w.Ref, w.Result, w.Shadow)
		}
	}
	if n := enforced.Load(); n != 1 {
		t.Errorf("the enforced function after the shadows ran %d times, want 1", n)
	}
}

// TestPreDeadlinePassed: a request whose Trigger-Deadline has passed is
// answered EXPIRED without running anything, and counted.
func TestPreDeadlinePassed(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	metrics := newMetrics(t)
	var calls atomic.Int64
	startWorker(t, natstest.Connect(t, s), worker.Config{Metrics: metrics},
		fn("never", "PRE_CREATE", []string{"SERVER"}, 0, cont(&calls)))
	nc := natstest.Connect(t, s)

	msg := nats.NewMsg("trigger.PRE_CREATE.SERVER")
	msg.Data = []byte(`{"input":{"cpu":2}}`)
	msg.Header.Set(subjects.HeaderDeadline, strconv.FormatInt(time.Now().Add(-time.Minute).UnixMilli(), 10))
	d := decodeDecision(t, request(t, nc, msg))

	if d.Allowed || d.Code != event.CodeExpired {
		t.Errorf("decision = %+v, want refused with code EXPIRED", d)
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("the function ran %d times for an expired request", n)
	}
	if n := value(metrics.EventsDropped.WithLabelValues("PRE_CREATE", worker.ReasonExpired)); n != 1 {
		t.Errorf("dropped{reason=expired} = %v, want 1", n)
	}
}

// TestPreFunctionIgnoresDeadline: a function that ignores its ctx and
// blocks past the caller's deadline does not keep the caller waiting: the
// worker answers TIMEOUT, naming the function, before the caller gives up.
// It does not run in parallel with the other tests: the worker keeps a
// margin of some tens of milliseconds before the deadline, which a
// saturated test process could eat.
func TestPreFunctionIgnoresDeadline(t *testing.T) {
	s := natstest.RunServer(t)
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	startWorker(t, natstest.Connect(t, s), worker.Config{},
		worker.Function{Ref: "stubborn", TriggerType: "PRE_CREATE", Options: []string{"SERVER"}, Timeout: time.Minute,
			Handler: handlers.Func(func(context.Context, *event.Event) (handlers.Result, error) {
				started <- struct{}{}
				<-release // ignores ctx on purpose
				return handlers.Result{}, nil
			})})
	// Registered after startWorker, so it runs first: the worker's Stop
	// waits for the function.
	t.Cleanup(func() { close(release) })
	c := newClient(t, s, client.Options{})

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	d := decide(t, ctx, c, "PRE_CREATE", "SERVER", nil)
	natstest.ChanRecv(t, started, waitShort)

	// The SDK's own answer when the deadline passes has no function: a
	// decision naming the function came from the worker, before the deadline.
	if d.Allowed || d.Code != event.CodeTimeout || d.Function != "stubborn" {
		t.Errorf("decision = %+v, want the worker's TIMEOUT naming stubborn", d)
	}
}
