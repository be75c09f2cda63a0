package worker_test

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/pkg/client"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// TestPreDecisionsDoNotShare: decisions of one worker, denials and
// allowances in turn from a chain longer than a decision's inline room,
// each carry only their own request's id, code, message, function results
// and input; and the last function of a chain, which runs on the event
// itself, changes neither the decision's id nor its input by changing its
// event.
func TestPreDecisionsDoNotShare(t *testing.T) {
	s := natstest.RunServer(t)
	startWorker(t, natstest.Connect(t, s), worker.Config{},
		fn("fill", "PRE_CREATE", []string{"SERVER"}, 0, func(_ context.Context, ev *event.Event) (handlers.Result, error) {
			var in map[string]any
			_ = json.Unmarshal(ev.Input, &in)
			in["ram"] = 2048
			b, _ := json.Marshal(in)
			return handlers.Result{Input: b}, nil
		}),
		fn("gate", "PRE_CREATE", []string{"SERVER"}, 10, func(_ context.Context, ev *event.Event) (handlers.Result, error) {
			var in struct{ CPU int }
			_ = json.Unmarshal(ev.Input, &in)
			if in.CPU > 16 {
				return handlers.Result{ExitState: handlers.Failed, ErrorCode: "QUOTA_EXCEEDED", ErrorMessage: "at most 16 CPUs"}, nil
			}
			return handlers.Result{}, nil
		}),
		fn("meddle", "PRE_CREATE", []string{"SERVER"}, 20, func(_ context.Context, ev *event.Event) (handlers.Result, error) {
			ev.ID, ev.Input = "meddled", json.RawMessage(`{"meddled":true}`)
			return handlers.Result{}, nil
		}))
	c, err := client.New(natstest.Connect(t, s), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		id := "ev-" + strconv.Itoa(i)
		if i%2 == 0 {
			d, err := c.Decide(context.Background(), "PRE_CREATE", "SERVER", &event.Event{ID: id, Input: json.RawMessage(`{"cpu":64}`)})
			if err != nil {
				t.Fatal(err)
			}
			if d.Allowed || d.ID != id || d.Code != "QUOTA_EXCEEDED" || d.Message != "at most 16 CPUs" || d.Function != "gate" ||
				!d.Modified || string(d.Input) != `{"cpu":64,"ram":2048}` || len(d.Functions) != 2 || d.Functions[0].Ref != "fill" || d.Functions[1].Ref != "gate" {
				t.Fatalf("request %d: %+v input %s, want a denial by gate after fill", i, d, d.Input)
			}
			continue
		}
		d, err := c.Decide(context.Background(), "PRE_CREATE", "SERVER", &event.Event{ID: id, Input: json.RawMessage(`{"cpu":2}`)})
		if err != nil {
			t.Fatal(err)
		}
		if !d.Allowed || d.ID != id || d.Code != "" || d.Message != "" || d.Function != "" || !d.Modified ||
			string(d.Input) != `{"cpu":2,"ram":2048}` || len(d.Functions) != 3 || d.Functions[2].Ref != "meddle" {
			t.Fatalf("request %d: %+v input %s, want allowed by the three with fill's input", i, d, d.Input)
		}
	}
}
