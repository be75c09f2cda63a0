package worker

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/pkg/client"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
)

// TestPreNotBehindDurableBacklog: while durable events wait for the
// dispatchers (all busy, and no more may start), a PRE request is taken
// within two events of a dispatcher, not after the backlog.
func TestPreNotBehindDurableBacklog(t *testing.T) {
	const maxInFlight, events = 4, 40
	s := natstest.RunServer(t, natstest.WithJetStream())
	gate := make(chan struct{})
	var ran atomic.Int32
	post := handlers.Func(func(ctx context.Context, _ *event.Event) (handlers.Result, error) {
		select {
		case <-gate:
		case <-ctx.Done():
		}
		ran.Add(1)
		return handlers.Result{}, nil
	})
	preRan := make(chan int32, 1)
	pre := handlers.Func(func(context.Context, *event.Event) (handlers.Result, error) {
		preRan <- ran.Load()
		return handlers.Result{}, nil
	})
	w, err := New(natstest.Connect(t, s), Config{MaxInFlight: maxInFlight, Durable: &DurableConfig{AckWait: time.Minute}},
		Function{Ref: "post", TriggerType: "POST_CREATE", Options: []string{"SERVER"}, Timeout: time.Minute, Handler: post},
		Function{Ref: "pre", TriggerType: "PRE_CREATE", Options: []string{"SERVER"}, Handler: pre})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	var open sync.Once
	t.Cleanup(func() {
		open.Do(func() { close(gate) })
		_ = w.Stop(context.Background())
	})
	c, err := client.New(natstest.Connect(t, s), client.Options{Durable: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for range events {
		if _, err := c.Publish(ctx, "POST_CREATE", "SERVER", nil); err != nil {
			t.Fatal(err)
		}
	}
	natstest.CheckFor(t, 10*time.Second, time.Millisecond, func() error {
		if n := len(w.work); n == 0 {
			return fmt.Errorf("no durable event waits for a dispatcher")
		}
		return nil
	})
	answered := make(chan error, 1)
	go func() {
		_, err := c.Decide(ctx, "PRE_CREATE", "SERVER", nil)
		answered <- err
	}()
	natstest.CheckFor(t, 10*time.Second, time.Millisecond, func() error {
		if len(w.pre) == 0 {
			return fmt.Errorf("the PRE request is not queued")
		}
		return nil
	})
	// Release the durable events one at a time until the PRE function runs.
	var released int32
	for {
		select {
		case before := <-preRan:
			if before > 2*maxInFlight {
				t.Errorf("the PRE request ran after %d durable events, want at most %d", before, 2*maxInFlight)
			}
			open.Do(func() { close(gate) })
			if err := natstest.ChanRecv(t, answered, 10*time.Second); err != nil {
				t.Fatal(err)
			}
			return
		case gate <- struct{}{}:
			released++
			natstest.CheckFor(t, 10*time.Second, time.Millisecond, func() error {
				if n := ran.Load(); n < released {
					return fmt.Errorf("%d durable events ran, want %d", n, released)
				}
				return nil
			})
		}
	}
}
