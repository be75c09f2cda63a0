package integration

import (
	"context"
	"errors"
	"fmt"
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

// TestLoopGuardFlaggedEvents: events that carry Trigger-Origin fire no
// trigger: a POST is dropped and counted, a PRE answered at once.
func TestLoopGuardFlaggedEvents(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	metrics := newMetrics(t)
	var post, pre atomic.Int64
	startWorker(t, natstest.Connect(t, s), worker.Config{Metrics: metrics},
		fn("on_delete", "POST_DELETE", []string{"ANY"}, 0, cont(&post)),
		fn("deny_delete", "PRE_DELETE", []string{"ANY"}, 0, deny(&pre, "NO", "never")))
	nc := natstest.Connect(t, s)

	flagged := nats.NewMsg("trigger.POST_DELETE.SERVER")
	flagged.Header.Set(subjects.HeaderOrigin, "some_function/01JDQ7Z6W3S6K4V0Q5H3YB3M8C")
	if err := nc.PublishMsg(flagged); err != nil {
		t.Fatal(err)
	}
	waitValue(t, "dropped{POST_DELETE,trigger_originated}",
		metrics.EventsDropped.WithLabelValues("POST_DELETE", worker.ReasonTriggerOriginated), 1)
	if err := nc.PublishMsg(nats.NewMsg("trigger.POST_DELETE.DISK")); err != nil {
		t.Fatal(err)
	}
	waitCount(t, "POST calls", &post, 1)
	if n := value(metrics.EventsReceived.WithLabelValues("POST_DELETE", "SERVER")); n != 1 {
		t.Errorf("received{POST_DELETE,SERVER} = %v, want 1 (dropped events are received too)", n)
	}

	req := nats.NewMsg("trigger.PRE_DELETE.SERVER")
	req.Header.Set(subjects.HeaderOrigin, "some_function/01JDQ7Z6W3S6K4V0Q5H3YB3M8C")
	d := decodeDecision(t, request(t, nc, req))
	if !d.Allowed || d.Code != event.CodeTriggerOriginated {
		t.Errorf("flagged PRE decision = %+v, want allowed, code TRIGGER_ORIGINATED", d)
	}
	if n := pre.Load(); n != 0 {
		t.Errorf("the PRE function ran %d times for a flagged request", n)
	}
}

// TestLoopGuardBreaksLoops: what a function causes, through the Bus it is
// given or through the SDK with its ctx, is flagged and fires no trigger.
// The loop "POST_CREATE SERVER publishes POST_CREATE SERVER" runs its
// function exactly once per original event.
func TestLoopGuardBreaksLoops(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		key  []byte
	}{
		{name: "unsigned"},
		{name: "signed", key: []byte("fleet-key-for-tests")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			testLoopGuardBreaksLoops(t, tt.key)
		})
	}
}

func testLoopGuardBreaksLoops(t *testing.T, key []byte) {
	s := natstest.RunServer(t)
	metrics := newMetrics(t)
	sdk := newClient(t, s, client.Options{})

	var busCalls, sdkCalls, preCalls atomic.Int64
	errs := make(chan error, 100)
	report := func(err error) {
		if err != nil {
			errs <- err
		}
	}
	// Publishes its own event again, and asks a PRE question, through the Bus.
	viaBus := func(ctx context.Context, ev *event.Event) (handlers.Result, error) {
		busCalls.Add(1)
		call, ok := handlers.CallFrom(ctx)
		if !ok || call.Bus == nil {
			return handlers.Result{}, errors.New("no call in ctx")
		}
		report(call.Bus.Publish(ctx, "trigger.POST_CREATE.SERVER", []byte(`{"input":{"again":true}}`)))
		reply, err := call.Bus.Request(ctx, "trigger.PRE_CREATE.SERVER", nil, 0)
		if err != nil {
			report(fmt.Errorf("Bus.Request: %w", err))
		} else if d, err := event.DecodeDecision(reply); err != nil || !d.Allowed || d.Code != event.CodeTriggerOriginated {
			report(fmt.Errorf("Bus.Request decision = %s (%v), want TRIGGER_ORIGINATED", reply, err))
		}
		return handlers.Result{}, nil
	}
	// Publishes its own event again, and asks a PRE question, through the SDK.
	viaSDK := func(ctx context.Context, ev *event.Event) (handlers.Result, error) {
		sdkCalls.Add(1)
		_, err := sdk.Publish(ctx, "POST_DELETE", "DISK", &event.Event{Input: ev.Input})
		report(err)
		d, err := sdk.Decide(ctx, "PRE_CREATE", "SERVER", nil)
		if err != nil {
			report(fmt.Errorf("Decide: %w", err))
		} else if !d.Allowed || d.Code != event.CodeTriggerOriginated {
			report(fmt.Errorf("Decide in a function = %+v, want TRIGGER_ORIGINATED", d))
		}
		return handlers.Result{}, nil
	}
	startWorker(t, natstest.Connect(t, s), worker.Config{Metrics: metrics, LoopKey: key},
		fn("echo_bus", "POST_CREATE", []string{"SERVER"}, 0, viaBus),
		fn("echo_sdk", "POST_DELETE", []string{"DISK"}, 0, viaSDK),
		fn("deny_all", "PRE_CREATE", []string{"ANY"}, 0, deny(&preCalls, "NO", "never")),
	)

	const events = 5
	ctx := context.Background()
	for range events {
		if _, err := sdk.Publish(ctx, "POST_CREATE", "SERVER", nil); err != nil {
			t.Fatal(err)
		}
		if _, err := sdk.Publish(ctx, "POST_DELETE", "DISK", nil); err != nil {
			t.Fatal(err)
		}
	}
	// Each original event causes one flagged event, dropped when it arrives.
	waitValue(t, "dropped{POST_CREATE,trigger_originated}",
		metrics.EventsDropped.WithLabelValues("POST_CREATE", worker.ReasonTriggerOriginated), events)
	waitValue(t, "dropped{POST_DELETE,trigger_originated}",
		metrics.EventsDropped.WithLabelValues("POST_DELETE", worker.ReasonTriggerOriginated), events)

	if n := busCalls.Load(); n != events {
		t.Errorf("echo_bus ran %d times, want %d (once per original event)", n, events)
	}
	if n := sdkCalls.Load(); n != events {
		t.Errorf("echo_sdk ran %d times, want %d (once per original event)", n, events)
	}
	if n := preCalls.Load(); n != 0 {
		t.Errorf("the PRE function ran %d times for requests a function made", n)
	}
	// Bus.Request reached the worker and was answered without running (the
	// functions make their requests after their echoes, so wait for them).
	waitValue(t, "dropped{PRE_CREATE,trigger_originated}",
		metrics.EventsDropped.WithLabelValues("PRE_CREATE", worker.ReasonTriggerOriginated), events)
	if n := value(metrics.OriginRejected.WithLabelValues("POST_CREATE")); n != 0 {
		t.Errorf("origin_rejected{POST_CREATE} = %v, want 0: the worker's own stamps verify", n)
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestLoopGuardSignedOrigin: with a fleet key, only a Trigger-Origin that
// verifies silences triggers; forged, tampered and expired values are
// counted and the triggers run.
func TestLoopGuardSignedOrigin(t *testing.T) {
	t.Parallel()
	key := []byte("fleet-key-for-tests")
	s := natstest.RunServer(t)
	metrics := newMetrics(t)
	var post, pre atomic.Int64
	startWorker(t, natstest.Connect(t, s), worker.Config{Metrics: metrics, LoopKey: key},
		fn("on_create", "POST_CREATE", []string{"SERVER"}, 0, cont(&post)),
		fn("deny_create", "PRE_CREATE", []string{"SERVER"}, 0, deny(&pre, "NO", "refused")))
	nc := natstest.Connect(t, s)

	valid := worker.NewOrigin(key, time.Minute).Stamp("some_function", "01JDQ7Z6W3S6K4V0Q5H3YB3M8C")
	otherKey := worker.NewOrigin([]byte("another-key"), time.Minute).Stamp("some_function", "01JDQ7Z6W3S6K4V0Q5H3YB3M8C")
	expired := worker.NewOrigin(key, time.Millisecond).Stamp("some_function", "01JDQ7Z6W3S6K4V0Q5H3YB3M8C")
	checker := worker.NewOrigin(key, 0)
	natstest.CheckFor(t, waitShort, time.Millisecond, func() error {
		if checker.Verify(expired) {
			return errors.New("the short-lived stamp has not expired yet")
		}
		return nil
	})
	// Same MAC, another event id.
	tampered := "some_function/01JDQ7Z6W3S6K4V0Q5H3YB3M8D" + valid[len("some_function/01JDQ7Z6W3S6K4V0Q5H3YB3M8C"):]
	if !checker.Verify(valid) || checker.Verify(tampered) {
		t.Fatalf("Verify(valid) = %v, Verify(tampered) = %v, want true, false", checker.Verify(valid), checker.Verify(tampered))
	}

	rejected := func() float64 {
		return value(metrics.OriginRejected.WithLabelValues("POST_CREATE")) + value(metrics.OriginRejected.WithLabelValues("PRE_CREATE"))
	}
	// send sends a PRE request and a POST event flagged with origin and
	// returns the PRE decision.
	send := func(t *testing.T, origin string) *event.Decision {
		t.Helper()
		req := nats.NewMsg("trigger.PRE_CREATE.SERVER")
		req.Header.Set(subjects.HeaderOrigin, origin)
		d := decodeDecision(t, request(t, nc, req))
		msg := nats.NewMsg("trigger.POST_CREATE.SERVER")
		msg.Header.Set(subjects.HeaderOrigin, origin)
		if err := nc.PublishMsg(msg); err != nil {
			t.Fatal(err)
		}
		return d
	}

	notHonoured := []struct {
		name   string
		origin string
	}{
		{name: "forged without MAC", origin: "some_function/01JDQ7Z6W3S6K4V0Q5H3YB3M8C"},
		{name: "signed with another key", origin: otherKey},
		{name: "tampered", origin: tampered},
		{name: "expired", origin: expired},
	}
	for _, tt := range notHonoured {
		t.Run(tt.name, func(t *testing.T) {
			postBefore, preBefore, rejectedBefore := post.Load(), pre.Load(), rejected()
			d := send(t, tt.origin)
			if d.Allowed || d.Code != "NO" {
				t.Errorf("decision = %+v, want the function's refusal (the flag is not honoured)", d)
			}
			waitCount(t, "POST calls", &post, postBefore+1)
			if n := pre.Load() - preBefore; n != 1 {
				t.Errorf("PRE function ran %d times, want 1", n)
			}
			if n := rejected() - rejectedBefore; n != 2 {
				t.Errorf("origin_rejected grew by %v, want 2 (one PRE, one POST)", n)
			}
		})
	}

	t.Run("valid", func(t *testing.T) {
		postBefore, preBefore, rejectedBefore := post.Load(), pre.Load(), rejected()
		dropped := metrics.EventsDropped.WithLabelValues("POST_CREATE", worker.ReasonTriggerOriginated)
		droppedBefore := value(dropped)
		d := send(t, valid)
		if !d.Allowed || d.Code != event.CodeTriggerOriginated {
			t.Errorf("decision = %+v, want TRIGGER_ORIGINATED", d)
		}
		waitValue(t, "dropped{POST_CREATE,trigger_originated}", dropped, droppedBefore+1)
		if n := pre.Load() + post.Load() - preBefore - postBefore; n != 0 {
			t.Errorf("%d functions ran for honoured events", n)
		}
		if n := rejected() - rejectedBefore; n != 0 {
			t.Errorf("origin_rejected grew by %v for a valid value", n)
		}
	})
}
