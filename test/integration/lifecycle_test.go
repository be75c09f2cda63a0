package integration

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/triggerbus/triggerbus/internal/natsconn"
	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/internal/proctest"
	"github.com/triggerbus/triggerbus/pkg/client"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// slowWork is how long the functions of the shutdown tests take. It only
// makes them still be running when Stop is called; nothing is timed.
const slowWork = 300 * time.Millisecond

// TestGracefulStopPost: Stop while POST functions run finishes every event
// delivered to the worker, including those waiting for a free dispatcher.
func TestGracefulStopPost(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		maxInFlight int
	}{
		{name: "all at once", maxInFlight: 0},
		{name: "queued behind busy dispatchers", maxInFlight: 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			const events = 50
			s := natstest.RunServer(t)
			metrics := newMetrics(t)
			var started, finished atomic.Int64
			w := proctest.NewWorker(t, natstest.Connect(t, s), worker.Config{Metrics: metrics, MaxInFlight: tt.maxInFlight},
				fn("slow", "POST_CREATE", []string{"SERVER"}, 0, func(context.Context, *event.Event) (handlers.Result, error) {
					started.Add(1)
					time.Sleep(slowWork) // the work itself, which ignores ctx
					finished.Add(1)
					return handlers.Result{ExitState: handlers.Success}, nil
				}))
			ctx := context.Background()
			if err := w.Start(ctx); err != nil {
				t.Fatal(err)
			}
			pub := natstest.Connect(t, s)
			c, err := client.New(pub, client.Options{})
			if err != nil {
				t.Fatal(err)
			}
			for range events {
				if _, err := c.Publish(ctx, "POST_CREATE", "SERVER", nil); err != nil {
					t.Fatal(err)
				}
			}
			if err := pub.Flush(); err != nil {
				t.Fatal(err)
			}
			waitValue(t, "received{POST_CREATE,SERVER}", metrics.EventsReceived.WithLabelValues("POST_CREATE", "SERVER"), events)
			natstest.CheckFor(t, waitShort, poll, func() error {
				if started.Load() == 0 {
					return errors.New("no function started yet")
				}
				return nil
			})

			if err := w.Stop(ctx); err != nil {
				t.Errorf("Stop = %v, want nil", err)
			}
			if s, f := started.Load(), finished.Load(); s != f || f != events {
				t.Errorf("after Stop: %d started, %d finished, want all %d events finished", s, f, events)
			}
			if n := value(metrics.FunctionInvocations.WithLabelValues("slow", "POST_CREATE", worker.ResultSuccess)); n != events {
				t.Errorf("invocations{slow,success} = %v, want %d", n, events)
			}
			if n := value(metrics.FunctionsInFlight); n != 0 {
				t.Errorf("functions in flight after Stop = %v, want 0", n)
			}
			select {
			case <-w.Done():
			default:
				t.Error("Done() is not closed after Stop returned")
			}
			// Stop is idempotent.
			if err := w.Stop(ctx); err != nil {
				t.Errorf("second Stop = %v, want nil", err)
			}
		})
	}
}

// TestGracefulStopPre: PRE requests in flight when Stop is called all get
// the functions' decision; no caller times out.
func TestGracefulStopPre(t *testing.T) {
	t.Parallel()
	const requests = 20
	s := natstest.RunServer(t)
	var started atomic.Int64
	w := proctest.NewWorker(t, natstest.Connect(t, s), worker.Config{},
		fn("slow_check", "PRE_CREATE", []string{"SERVER"}, 0, func(context.Context, *event.Event) (handlers.Result, error) {
			started.Add(1)
			time.Sleep(slowWork)
			return handlers.Result{ExitState: handlers.Failed, ErrorCode: "CHECKED", ErrorMessage: "slowly"}, nil
		}))
	ctx := context.Background()
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, s, client.Options{DecideTimeout: waitShort})

	decisions := make(chan *event.Decision, requests)
	var wg sync.WaitGroup
	for range requests {
		wg.Go(func() {
			d, err := c.Decide(ctx, "PRE_CREATE", "SERVER", nil)
			if err != nil {
				t.Errorf("Decide: %v", err)
				return
			}
			decisions <- d
		})
	}
	waitCount(t, "PRE functions started", &started, requests)
	if err := w.Stop(ctx); err != nil {
		t.Errorf("Stop = %v, want nil", err)
	}
	wg.Wait()
	close(decisions)
	n := 0
	for d := range decisions {
		n++
		if d.Allowed || d.Code != "CHECKED" || d.Function != "slow_check" {
			t.Errorf("decision = %+v, want the function's refusal CHECKED", d)
		}
	}
	if n != requests {
		t.Errorf("%d decisions, want %d", n, requests)
	}
}

// TestReconnectAfterServerRestart: a worker connected with natsconn.Options
// rides out a restart of its NATS server and serves again without being
// restarted itself.
func TestReconnectAfterServerRestart(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	metrics := newMetrics(t)
	opts, err := natsconn.Options(natsconn.Config{Name: "restart-test"}, natsconn.Events{Connected: metrics.NATSConnected, SlowConsumers: metrics.SlowConsumers})
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int64
	w := startWorker(t, natstest.Connect(t, s, opts...), worker.Config{Metrics: metrics},
		fn("deny_big_servers", "PRE_CREATE", []string{"SERVER"}, 0, func(ctx context.Context, ev *event.Event) (handlers.Result, error) {
			calls.Add(1)
			return denyBigServers(ctx, ev)
		}))
	callerOpts, err := natsconn.Options(natsconn.Config{Name: "restart-test-caller"}, natsconn.Events{})
	if err != nil {
		t.Fatal(err)
	}
	caller := natstest.Connect(t, s, callerOpts...)
	c, err := client.New(caller, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	big := &event.Event{Input: []byte(`{"cpu":64}`)}
	ask := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		d, err := c.Decide(ctx, "PRE_CREATE", "SERVER", big)
		if err != nil {
			return err
		}
		if d.Code != "QUOTA_EXCEEDED" {
			return fmt.Errorf("decision = %+v, want QUOTA_EXCEEDED from the worker", d)
		}
		return nil
	}
	if err := ask(); err != nil {
		t.Fatalf("before the restart: %v", err)
	}
	waitValue(t, "trigger_nats_connected", metrics.NATSConnected, 1)

	natstest.Restart(t, s)

	natstest.CheckFor(t, waitShort, 50*time.Millisecond, ask)
	if !w.Ready() {
		t.Error("Ready() = false after the worker reconnected")
	}
	if n := value(metrics.NATSConnected); n != 1 {
		t.Errorf("trigger_nats_connected = %v after the reconnect, want 1", n)
	}
	if n := calls.Load(); n < 2 {
		t.Errorf("the function ran %d times, want at least once before and once after the restart", n)
	}
	// Stop while the new server is up: cleanups run in reverse order, and
	// the new server's was registered last.
	if err := w.Stop(context.Background()); err != nil {
		t.Errorf("Stop: %v", err)
	}
}
