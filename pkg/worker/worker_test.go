package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/pkg/client"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/subjects"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// startWorker runs a worker with fns on a connection to s and stops it at
// the end of the test.
func startWorker(t *testing.T, nc *nats.Conn, cfg worker.Config, fns ...worker.Function) *worker.Worker {
	t.Helper()
	w, err := worker.New(nc, cfg, fns...)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Stop(context.Background()) })
	return w
}

func fn(ref, typ string, opts []string, prio int, h handlers.Func) worker.Function {
	return worker.Function{Ref: ref, TriggerType: typ, Options: opts, Priority: prio, Handler: h}
}

// publishCPU4 publishes a POST_CREATE SERVER event with input {"cpu":4}
// through pkg/client on a connection of its own to s and returns its id.
func publishCPU4(t *testing.T, s *server.Server) string {
	t.Helper()
	c, err := client.New(natstest.Connect(t, s), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	id, err := c.Publish(context.Background(), "POST_CREATE", "SERVER", &event.Event{Input: json.RawMessage(`{"cpu":4}`)})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestPostRunsFunctions(t *testing.T) {
	s := natstest.RunServer(t)
	nc := natstest.Connect(t, s)
	got := make(chan *event.Event, 10)
	startWorker(t, nc, worker.Config{},
		fn("on_create", "POST_CREATE", []string{"SERVER"}, 0, func(_ context.Context, ev *event.Event) (handlers.Result, error) {
			got <- ev
			return handlers.Result{ExitState: handlers.Success}, nil
		}))
	id := publishCPU4(t, s)
	ev := natstest.ChanRecv(t, got, 5*time.Second)
	if ev.ID != id || ev.TriggerType != "POST_CREATE" || ev.TriggerOption != "SERVER" || string(ev.Input) != `{"cpu":4}` {
		t.Errorf("event = %+v, want id %s and input", ev, id)
	}
}

func TestPreDecisions(t *testing.T) {
	s := natstest.RunServer(t)
	nc := natstest.Connect(t, s)
	deny := func(_ context.Context, ev *event.Event) (handlers.Result, error) {
		var in struct{ CPU int }
		_ = json.Unmarshal(ev.Input, &in)
		if in.CPU > 16 {
			return handlers.Result{ExitState: handlers.Failed, ErrorCode: "QUOTA_EXCEEDED", ErrorMessage: "servers are limited to 16 CPUs"}, nil
		}
		return handlers.Result{}, nil
	}
	fill := func(_ context.Context, ev *event.Event) (handlers.Result, error) {
		var in map[string]any
		_ = json.Unmarshal(ev.Input, &in)
		if _, ok := in["ram"]; ok {
			return handlers.Result{}, nil
		}
		in["ram"] = 2048
		b, _ := json.Marshal(in)
		return handlers.Result{ExitState: handlers.Success, Input: b}, nil
	}
	startWorker(t, nc, worker.Config{},
		fn("deny_big", "PRE_CREATE", []string{"SERVER"}, 0, deny),
		fn("fill_ram", "PRE_CREATE", []string{"ANY"}, 10, fill))
	c, _ := client.New(natstest.Connect(t, s), client.Options{})
	ctx := context.Background()

	d, err := c.Decide(ctx, "PRE_CREATE", "SERVER", &event.Event{Input: json.RawMessage(`{"cpu":64}`)})
	if err != nil {
		t.Fatal(err)
	}
	if d.Allowed || d.Code != "QUOTA_EXCEEDED" || d.Function != "deny_big" || len(d.Functions) != 1 {
		t.Errorf("deny: %+v", d)
	}
	d, _ = c.Decide(ctx, "PRE_CREATE", "SERVER", &event.Event{Input: json.RawMessage(`{"cpu":2}`)})
	if !d.Allowed || !d.Modified || string(d.Input) != `{"cpu":2,"ram":2048}` || len(d.Functions) != 2 {
		t.Errorf("modify: %+v input %s", d, d.Input)
	}
	d, _ = c.Decide(ctx, "PRE_CREATE", "DISK", &event.Event{Input: json.RawMessage(`{"size":2}`)})
	if !d.Allowed || !d.Modified || len(d.Functions) != 1 || d.Functions[0].Ref != "fill_ram" {
		t.Errorf("ANY: %+v", d)
	}
}

func TestPreTimeoutPolicies(t *testing.T) {
	s := natstest.RunServer(t)
	nc := natstest.Connect(t, s)
	hang := func(ctx context.Context, _ *event.Event) (handlers.Result, error) {
		<-ctx.Done()
		return handlers.Result{}, ctx.Err()
	}
	var ran atomic.Int32
	after := func(context.Context, *event.Event) (handlers.Result, error) {
		ran.Add(1)
		return handlers.Result{}, nil
	}
	startWorker(t, nc, worker.Config{},
		worker.Function{Ref: "slow_closed", TriggerType: "PRE_DELETE", Options: []string{"SERVER"}, Timeout: 50 * time.Millisecond, Handler: handlers.Func(hang)},
		worker.Function{Ref: "slow_open", TriggerType: "PRE_DELETE", Options: []string{"DISK"}, Timeout: 50 * time.Millisecond, FailurePolicy: worker.FailOpen, Handler: handlers.Func(hang)},
		worker.Function{Ref: "after", TriggerType: "PRE_DELETE", Options: []string{"ANY"}, Priority: 5, Handler: handlers.Func(after)},
		worker.Function{Ref: "shadow_deny", TriggerType: "PRE_MODIFY", Options: []string{"ANY"}, Mode: worker.Shadow, Handler: handlers.Func(func(context.Context, *event.Event) (handlers.Result, error) {
			return handlers.Result{ExitState: handlers.Failed, ErrorCode: "NOPE"}, nil
		})},
	)
	c, _ := client.New(natstest.Connect(t, s), client.Options{})
	ctx := context.Background()
	d, _ := c.Decide(ctx, "PRE_DELETE", "SERVER", nil)
	if d.Allowed || d.Code != event.CodeTimeout || d.Function != "slow_closed" {
		t.Errorf("fail closed: %+v", d)
	}
	d, _ = c.Decide(ctx, "PRE_DELETE", "DISK", nil)
	if !d.Allowed || len(d.Functions) != 2 || d.Functions[0].Result != event.OutcomeTimeout {
		t.Errorf("fail open: %+v", d)
	}
	d, _ = c.Decide(ctx, "PRE_MODIFY", "SERVER", nil)
	if !d.Allowed || !d.Functions[0].Shadow || d.Functions[0].Result != event.OutcomeFailed {
		t.Errorf("shadow: %+v", d)
	}
	// A caller deadline shorter than the function's timeout: answered in time.
	dctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	d, _ = c.Decide(dctx, "PRE_DELETE", "SERVER", nil)
	if d.Allowed {
		t.Errorf("deadline: %+v", d)
	}
}

func TestLoopGuard(t *testing.T) {
	s := natstest.RunServer(t)
	nc := natstest.Connect(t, s)
	var calls atomic.Int32
	startWorker(t, nc, worker.Config{},
		fn("count", "POST_DELETE", []string{"ANY"}, 0, func(context.Context, *event.Event) (handlers.Result, error) {
			calls.Add(1)
			return handlers.Result{}, nil
		}),
		fn("deny_all", "PRE_DELETE", []string{"ANY"}, 0, func(context.Context, *event.Event) (handlers.Result, error) {
			return handlers.Result{ExitState: handlers.Failed, ErrorCode: "NO"}, nil
		}))
	pub := natstest.Connect(t, s)
	m := nats.NewMsg("trigger.POST_DELETE.SERVER")
	m.Header.Set(subjects.HeaderOrigin, "somefn/123")
	if err := pub.PublishMsg(m); err != nil {
		t.Fatal(err)
	}
	m2 := nats.NewMsg("trigger.POST_DELETE.DISK")
	if err := pub.PublishMsg(m2); err != nil {
		t.Fatal(err)
	}
	natstest.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if calls.Load() != 1 {
			return errors.New("waiting for the unflagged event")
		}
		return nil
	})
	req := nats.NewMsg("trigger.PRE_DELETE.SERVER")
	req.Header.Set(subjects.HeaderOrigin, "somefn/123")
	reply, err := pub.RequestMsg(req, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := event.DecodeDecision(reply.Data)
	if !d.Allowed || d.Code != event.CodeTriggerOriginated {
		t.Errorf("PRE with origin: %+v", d)
	}
}

// TestPostCallsKeepTheirContexts: each function of a POST event has a call
// context of its own (the first is allocated with the event, the others
// apart), and a context kept after the call still says whose call it was.
func TestPostCallsKeepTheirContexts(t *testing.T) {
	s := natstest.RunServer(t)
	nc := natstest.Connect(t, s)
	type kept struct {
		ctx context.Context
		ev  *event.Event
	}
	got := make(chan kept, 4)
	keep := func(ctx context.Context, ev *event.Event) (handlers.Result, error) {
		got <- kept{ctx, ev}
		return handlers.Result{ExitState: handlers.Success}, nil
	}
	startWorker(t, nc, worker.Config{},
		fn("first", "POST_CREATE", []string{"SERVER"}, 2, keep),
		fn("second", "POST_CREATE", []string{"SERVER"}, 1, keep))
	id := publishCPU4(t, s)
	a, b := natstest.ChanRecv(t, got, 5*time.Second), natstest.ChanRecv(t, got, 5*time.Second)
	for _, k := range []kept{a, b} {
		if k.ev.ID != id || string(k.ev.Input) != `{"cpu":4}` {
			t.Errorf("event = %+v, want id %s and its input", k.ev, id)
		}
	}
	ca, _ := handlers.CallFrom(a.ctx)
	cb, _ := handlers.CallFrom(b.ctx)
	if ca.Ref == cb.Ref || ca.Origin == cb.Origin || !strings.HasPrefix(ca.Origin, ca.Ref+"/") || !strings.HasPrefix(cb.Origin, cb.Ref+"/") {
		t.Errorf("calls kept = %q (origin %q) and %q (origin %q), want two, each with its own origin", ca.Ref, ca.Origin, cb.Ref, cb.Origin)
	}
}
