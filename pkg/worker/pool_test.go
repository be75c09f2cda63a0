package worker_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/pkg/client"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// TestDispatchersGrowToMaxInFlight: slow functions run MaxInFlight at once
// (beyond the always-running core of dispatchers), and never more, for core
// and durable events alike.
func TestDispatchersGrowToMaxInFlight(t *testing.T) {
	for _, durable := range []bool{false, true} {
		t.Run(map[bool]string{false: "core", true: "durable"}[durable], func(t *testing.T) {
			testDispatchersGrow(t, durable)
		})
	}
}

func testDispatchersGrow(t *testing.T, durable bool) {
	const maxInFlight = 40
	var opts []natstest.Option
	cfg := worker.Config{MaxInFlight: maxInFlight}
	if durable {
		opts = append(opts, natstest.WithJetStream())
		cfg.Durable = &worker.DurableConfig{}
	}
	s := natstest.RunServer(t, opts...)
	release := make(chan struct{})
	var running, peak, done atomic.Int32
	slow := handlers.Func(func(ctx context.Context, _ *event.Event) (handlers.Result, error) {
		n := running.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		defer running.Add(-1)
		defer done.Add(1)
		select {
		case <-release:
		case <-ctx.Done():
		}
		return handlers.Result{}, nil
	})
	startWorker(t, natstest.Connect(t, s), cfg,
		worker.Function{Ref: "slow", TriggerType: "POST_CREATE", Options: []string{"ANY"}, Timeout: time.Minute, Handler: slow})
	c, err := client.New(natstest.Connect(t, s), client.Options{Durable: durable})
	if err != nil {
		t.Fatal(err)
	}
	for range maxInFlight + 10 {
		if _, err := c.Publish(context.Background(), "POST_CREATE", "SERVER", nil); err != nil {
			t.Fatal(err)
		}
	}
	natstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if n := running.Load(); n != maxInFlight {
			return fmt.Errorf("%d functions running, want %d", n, maxInFlight)
		}
		return nil
	})
	close(release)
	natstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if n := done.Load(); n != maxInFlight+10 {
			return fmt.Errorf("%d events done, want %d", n, maxInFlight+10)
		}
		return nil
	})
	if p := peak.Load(); p != maxInFlight {
		t.Errorf("peak concurrency %d, want %d", p, maxInFlight)
	}
}
