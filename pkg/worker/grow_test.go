package worker

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
)

// TestFastBacklogKeepsCoreDispatchers: a backlog of fast calls keeps every
// dispatcher busy, yet more dispatchers would only add goroutines: the pool
// stays near its core instead of growing to MaxInFlight. (Slow calls do
// grow it: TestDispatchersGrowToMaxInFlight.)
func TestFastBacklogKeepsCoreDispatchers(t *testing.T) {
	const events, maxInFlight = 20000, 256
	s := natstest.RunServer(t)
	var handled atomic.Int64
	fast := handlers.Func(func(context.Context, *event.Event) (handlers.Result, error) {
		handled.Add(1)
		return handlers.Result{}, nil
	})
	w, err := New(natstest.Connect(t, s), Config{MaxInFlight: maxInFlight, PendingMsgs: events},
		Function{Ref: "fast", TriggerType: "POST_CREATE", Options: []string{"SERVER"}, Handler: fast})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Stop(context.Background()) })

	var peak atomic.Int32
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for handled.Load() < events {
			peak.Store(max(peak.Load(), w.dispatchers.Load()))
			time.Sleep(100 * time.Microsecond)
		}
	}()
	pub := natstest.Connect(t, s)
	data := []byte(`{"input":{"cpu":4}}`)
	for range events {
		if err := pub.Publish("trigger.POST_CREATE.SERVER", data); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-sampled:
	case <-time.After(60 * time.Second):
		t.Fatalf("%d of %d events handled", handled.Load(), events)
	}
	// The core is 4 here; a busy machine can make the grower add a few.
	if p := peak.Load(); p > 32 {
		t.Errorf("%d dispatchers ran for a backlog of fast calls, want about the core of %d", p, w.coreDispatchers())
	}
}

// TestRequestFindsDispatcherWhileCallsBlock: with every core dispatcher
// held by a slow call and nothing else queued, a PRE request that comes
// later still finds a dispatcher (the grower keeps one waiting).
func TestRequestFindsDispatcherWhileCallsBlock(t *testing.T) {
	s := natstest.RunServer(t)
	release := make(chan struct{})
	defer close(release)
	var running atomic.Int32
	slow := handlers.Func(func(ctx context.Context, _ *event.Event) (handlers.Result, error) {
		running.Add(1)
		select {
		case <-release:
		case <-ctx.Done():
		}
		return handlers.Result{}, nil
	})
	allow := handlers.Func(func(context.Context, *event.Event) (handlers.Result, error) {
		return handlers.Result{}, nil
	})
	nc := natstest.Connect(t, s)
	w, err := New(nc, Config{MaxInFlight: 64},
		Function{Ref: "slow", TriggerType: "POST_CREATE", Options: []string{"SERVER"}, Timeout: time.Minute, Handler: slow},
		Function{Ref: "allow", TriggerType: "PRE_CREATE", Options: []string{"SERVER"}, Handler: allow})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Stop(context.Background()) })
	core := w.coreDispatchers()
	for range core {
		if err := nc.Publish("trigger.POST_CREATE.SERVER", []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	natstest.CheckFor(t, 10*time.Second, time.Millisecond, func() error {
		if n := running.Load(); n != int32(core) {
			return fmt.Errorf("%d slow calls running, want %d", n, core)
		}
		return nil
	})
	reply, err := nc.Request("trigger.PRE_CREATE.SERVER", []byte(`{}`), 10*time.Second)
	if err != nil {
		t.Fatalf("PRE request while %d slow calls run: %v", core, err)
	}
	d, err := event.DecodeDecision(reply.Data)
	if err != nil || !d.Allowed {
		t.Errorf("decision %s (%v), want allowed", reply.Data, err)
	}
}
