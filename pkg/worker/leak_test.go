package worker_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/pkg/client"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/schedule"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// TestNoGoroutineLeftAfterStop: a worker in durable mode with a scheduler,
// a PRE function and POST functions, after traffic, leaves no goroutine
// behind once it is stopped and its connection and server are closed.
func TestNoGoroutineLeftAfterStop(t *testing.T) {
	baseline := goleak.IgnoreCurrent()
	s := natstest.RunServer(t, natstest.WithJetStream())
	nc := natstest.Connect(t, s)
	pub := natstest.Connect(t, s)
	var handled atomic.Int32
	noop := handlers.Func(func(context.Context, *event.Event) (handlers.Result, error) {
		handled.Add(1)
		return handlers.Result{}, nil
	})
	every, err := schedule.Parse(time.Second, "", "", "")
	if err != nil {
		t.Fatal(err)
	}
	set := []worker.Function{
		{Ref: "pre", TriggerType: "PRE_CREATE", Options: []string{"ANY"}, Handler: noop},
		{Ref: "post", TriggerType: "POST_CREATE", Options: []string{"SERVER"}, Handler: noop},
		{Ref: "tick", TriggerType: "SCHEDULED", Options: []string{"ANY"}, Schedule: every, Handler: noop},
	}
	w, err := worker.New(nc, worker.Config{Registry: true, Durable: &worker.DurableConfig{}}, set...)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(pub, client.Options{Durable: true})
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		if _, err := c.Publish(ctx, "POST_CREATE", "SERVER", nil); err != nil {
			t.Fatal(err)
		}
		if d, err := c.Decide(ctx, "PRE_CREATE", "DISK", nil); err != nil || !d.Allowed {
			t.Fatalf("Decide = %+v, %v", d, err)
		}
	}
	natstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if handled.Load() < 40 {
			return context.DeadlineExceeded
		}
		return nil
	})
	if err := w.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	nc.Close()
	pub.Close()
	s.Shutdown()
	s.WaitForShutdown()
	goleak.VerifyNone(t, baseline)
}
