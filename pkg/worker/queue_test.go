package worker

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
)

// TestRefuseQueuedAfterStop: once the dispatchers have finished, what a
// subscription whose drain was given up (disconnected) still put in the
// queues is answered SHUTTING_DOWN (PRE) or dropped (POST), and the
// subscription is ended so that nothing more reaches a queue no dispatcher
// reads.
func TestRefuseQueuedAfterStop(t *testing.T) {
	s := natstest.RunServer(t)
	nc := natstest.Connect(t, s)
	noop := handlers.Func(func(context.Context, *event.Event) (handlers.Result, error) { return handlers.Result{}, nil })
	w, err := New(nc, Config{}, Function{Ref: "f", TriggerType: "PRE_CREATE", Options: []string{"SERVER"}, Handler: noop})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := w.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}

	// A subscription left valid, as a drain given up leaves it, with a PRE
	// request and a POST event in the queues.
	left, err := nc.ChanQueueSubscribe("trigger.PRE_CREATE.SERVER", "left", w.pre)
	if err != nil {
		t.Fatal(err)
	}
	w.mu.Lock()
	w.subs["left"] = left
	w.mu.Unlock()
	caller := natstest.Connect(t, s)
	inbox, err := caller.SubscribeSync(nats.NewInbox())
	if err != nil {
		t.Fatal(err)
	}
	if err := caller.Flush(); err != nil {
		t.Fatal(err)
	}
	w.pre <- &nats.Msg{Subject: "trigger.PRE_CREATE.SERVER", Reply: inbox.Subject, Sub: left}
	w.post <- &nats.Msg{Subject: "trigger.POST_CREATE.SERVER", Sub: left}

	w.refuseQueued()
	if left.IsValid() {
		t.Error("the subscription left valid was not ended")
	}
	if n := len(w.pre) + len(w.post); n != 0 {
		t.Errorf("%d messages left in the queues", n)
	}
	reply, err := inbox.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatalf("no answer to the queued PRE request: %v", err)
	}
	d, err := event.DecodeDecision(reply.Data)
	if err != nil || d.Allowed || d.Code != event.CodeShuttingDown {
		t.Fatalf("answer = %+v, %v; want a refusal %s", d, err, event.CodeShuttingDown)
	}
}

// TestDurablePostQueue: a durable worker takes its POST events from the
// consumer, so its POST queue has no room (every garbage collection scans
// a queue's buffer, empty or not); a core worker's holds PendingMsgs.
func TestDurablePostQueue(t *testing.T) {
	s := natstest.RunServer(t, natstest.WithJetStream())
	for _, c := range []struct {
		durable *DurableConfig
		want    int
	}{{nil, 100}, {&DurableConfig{}, 0}} {
		w, err := New(natstest.Connect(t, s), Config{PendingMsgs: 100, Durable: c.durable})
		if err != nil {
			t.Fatal(err)
		}
		if got := cap(w.post); got != c.want {
			t.Errorf("durable %v: POST queue room %d, want %d", c.durable != nil, got, c.want)
		}
		if got := cap(w.pre); got != 100 {
			t.Errorf("durable %v: PRE queue room %d, want 100", c.durable != nil, got)
		}
	}
}
