package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// recordingBus keeps what functions publish.
type recordingBus struct{ subjects []string }

func (b *recordingBus) Publish(_ context.Context, subject string, _ []byte) error {
	b.subjects = append(b.subjects, subject)
	return nil
}

func (b *recordingBus) Request(context.Context, string, []byte, time.Duration) ([]byte, error) {
	return []byte(`{"ok":true}`), nil
}

// Offline decides as a worker does: priority order, the modified input
// handed on, fail-open errors skipped, the first refusal stops the chain,
// shadow functions recorded only; POST functions each run; publishes go to
// the bus, or fail without one.
func TestOffline(t *testing.T) {
	var seen []string
	addRAM := handlers.Func(func(_ context.Context, ev *event.Event) (handlers.Result, error) {
		seen = append(seen, "add_ram:"+string(ev.Input))
		return handlers.Result{ExitState: handlers.Success, Input: json.RawMessage(`{"cpu":32,"ram":2048}`)}, nil
	})
	broken := handlers.Func(func(context.Context, *event.Event) (handlers.Result, error) {
		return handlers.Result{}, errors.New("broken")
	})
	deny := handlers.Func(func(_ context.Context, ev *event.Event) (handlers.Result, error) {
		seen = append(seen, "deny:"+string(ev.Input))
		return handlers.Result{ExitState: handlers.Failed, ErrorCode: "QUOTA", ErrorMessage: "too big"}, nil
	})
	never := handlers.Func(func(context.Context, *event.Event) (handlers.Result, error) {
		seen = append(seen, "never")
		return handlers.Result{}, nil
	})
	publish := handlers.Func(func(ctx context.Context, _ *event.Event) (handlers.Result, error) {
		c, _ := handlers.CallFrom(ctx)
		return handlers.Result{ExitState: handlers.Success}, c.Bus.Publish(ctx, "alerts.x", []byte(`{}`))
	})
	fns := []worker.Function{
		{Ref: "deny", TriggerType: "PRE_CREATE", Options: []string{"SERVER"}, Priority: 10, Handler: deny},
		{Ref: "add_ram", TriggerType: "PRE_CREATE", Options: []string{"SERVER"}, Priority: 1, Handler: addRAM},
		{Ref: "broken", TriggerType: "PRE_CREATE", Options: []string{"SERVER"}, Priority: 5, FailurePolicy: worker.FailOpen, Handler: broken},
		{Ref: "never", TriggerType: "PRE_CREATE", Options: []string{"SERVER"}, Priority: 20, Handler: never},
		{Ref: "alert", TriggerType: "POST_CREATE", Options: []string{"SERVER"}, Handler: publish},
	}
	bus := &recordingBus{}
	off, err := worker.NewOffline(worker.OfflineConfig{Bus: bus}, fns...)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	d, err := off.Decide(ctx, "PRE_CREATE", "SERVER", []byte(`{"input":{"cpu":32}}`), "")
	if err != nil {
		t.Fatal(err)
	}
	if d.Allowed || d.Code != "QUOTA" || d.Function != "deny" || len(d.Functions) != 3 || d.Functions[1].Result != event.OutcomeError {
		t.Fatalf("decision %+v", d)
	}
	if strings.Join(seen, " ") != `add_ram:{"cpu":32} deny:{"cpu":32,"ram":2048}` {
		t.Fatalf("calls %v", seen)
	}
	// One function alone.
	d, err = off.Decide(ctx, "PRE_CREATE", "SERVER", []byte(`{"input":{"cpu":1}}`), "add_ram")
	if err != nil || !d.Allowed || !d.Modified || string(d.Input) != `{"cpu":32,"ram":2048}` {
		t.Fatalf("decision %+v, %v", d, err)
	}
	// No function: the worker's NO_TRIGGER.
	if d, err = off.Decide(ctx, "PRE_CREATE", "DISK", nil, ""); err != nil || !d.Allowed || d.Code != event.CodeNoTrigger {
		t.Fatalf("decision %+v, %v", d, err)
	}
	// An event that does not decode.
	if _, err = off.Decide(ctx, "PRE_CREATE", "SERVER", []byte(`{"triggerType":"PRE_DELETE"}`), ""); !errors.Is(err, event.ErrInvalid) {
		t.Fatalf("err = %v", err)
	}
	if _, err = off.Decide(ctx, "POST_CREATE", "SERVER", nil, ""); err == nil {
		t.Fatal("a decision for a POST type")
	}

	calls, err := off.Run(ctx, "POST_CREATE", "SERVER", []byte(`{}`), "")
	if err != nil || len(calls) != 1 || calls[0].Outcome != event.OutcomeSuccess || calls[0].Err != nil || strings.Join(bus.subjects, " ") != "alerts.x" {
		t.Fatalf("calls %+v, %v, published %v", calls, err, bus.subjects)
	}
	// Without a bus, a publish fails.
	off, err = worker.NewOffline(worker.OfflineConfig{}, fns...)
	if err != nil {
		t.Fatal(err)
	}
	calls, err = off.Run(ctx, "POST_CREATE", "SERVER", []byte(`{}`), "")
	if err != nil || len(calls) != 1 || calls[0].Outcome != event.OutcomeError || !errors.Is(calls[0].Err, worker.ErrNoBus) {
		t.Fatalf("calls %+v, %v", calls, err)
	}
	// Functions are checked as New checks them.
	if _, err := worker.NewOffline(worker.OfflineConfig{}, worker.Function{Ref: "x", TriggerType: "PRE_CREATE", Options: []string{"SERVERR"}, Handler: never}); err == nil {
		t.Fatal("a bad function was accepted")
	}
}
