package faults_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/internal/proctest"
	"github.com/triggerbus/triggerbus/pkg/client"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// TestSlowConsumer floods the subscription of a slow POST function (two
// dispatchers, a pending limit of 64 messages) with events; each call waits
// for the test to let it finish. NATS drops what does not fit: the worker
// reports the slow consumer in its log and in
// trigger_nats_slow_consumer_total, and stays up and ready. While the
// backlog is still there, a PRE request on another subject gets its
// function's decision as soon as a dispatcher is free; afterwards the
// backlog is worked off and new events are handled.
func TestSlowConsumer(t *testing.T) {
	t.Parallel()
	const flood = 400
	s := natstest.RunServer(t)
	logs := proctest.NewLogCapture()
	m, _ := newMetrics(t)
	wnc := connectWorker(t, s.ClientURL(), logs.Logger, m)
	var slowCalls, slowDone atomic.Int64
	handledIDs := newIDSet()
	gate := make(chan struct{}) // a send lets one call finish; close lets all
	slow := worker.Function{Ref: "slow", TriggerType: "POST_CREATE", Options: []string{"ANY"}, Timeout: waitLong,
		Handler: handlers.Func(func(ctx context.Context, ev *event.Event) (handlers.Result, error) {
			slowCalls.Add(1)
			defer slowDone.Add(1)
			defer handledIDs.add(ev.ID)
			select {
			case <-gate:
			case <-ctx.Done():
			}
			return handlers.Result{}, nil
		})}
	w := proctest.StartWorker(t, wnc, worker.Config{Metrics: m, Logger: logs.Logger, MaxInFlight: 2, PendingMsgs: 64},
		slow, denyBigFn("deny_big", "PRE_CREATE"))

	pub := natstest.Connect(t, s)
	c, err := client.New(pub, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for range flood {
		if _, err := c.Publish(ctx, "POST_CREATE", "SERVER", nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.Flush(); err != nil {
		t.Fatal(err)
	}
	natstest.CheckFor(t, waitShort, poll, func() error {
		if value(m.SlowConsumers) == 0 {
			return errors.New("trigger_nats_slow_consumer_total is still 0")
		}
		if slowCalls.Load() != 2 {
			return fmt.Errorf("%d slow calls running, want both dispatchers busy", slowCalls.Load())
		}
		// The log line follows the count.
		if logs.Count("slow consumer") == 0 || !strings.Contains(logs.String(), "subject=trigger.POST_CREATE.*") {
			return fmt.Errorf("the worker's log does not report the slow consumer on trigger.POST_CREATE.*:\n%s", proctest.Tail(logs.String(), 20))
		}
		return nil
	})
	if !w.Ready() {
		t.Error("the worker is not ready after the slow consumer")
	}

	// Both dispatchers are busy with the backlog. A PRE on another subject
	// waits for a free one, and is answered while the backlog remains.
	type result struct {
		d   *event.Decision
		err error
	}
	seen := make(chan struct{}, 1)
	spy, err := pub.Subscribe("trigger.PRE_CREATE.SERVER", func(*nats.Msg) { seen <- struct{}{} })
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Flush(); err != nil {
		t.Fatal(err)
	}
	decided := make(chan result, 1)
	go func() {
		dctx, cancel := context.WithTimeout(ctx, waitLong)
		defer cancel()
		d, err := c.Decide(dctx, "PRE_CREATE", "SERVER", &event.Event{Input: json.RawMessage(`{"cpu":64}`)})
		decided <- result{d, err}
	}()
	natstest.ChanRecv(t, seen, waitShort) // the request passed the server
	_ = spy.Unsubscribe()
	// Let the slow calls finish one at a time: each freed dispatcher takes
	// the next message of the backlog, or the PRE request.
	released := 0
	deadline := time.Now().Add(waitLong)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	var r result
wait:
	for {
		calls := slowCalls.Load()
		select {
		case gate <- struct{}{}:
			released++
		case r = <-decided:
			break wait
		}
		for slowCalls.Load() == calls {
			select {
			case r = <-decided:
				break wait
			case <-tick.C:
			}
			if time.Now().After(deadline) {
				t.Fatalf("no PRE decision after letting %d slow calls finish", released)
			}
		}
	}
	if r.err != nil || r.d.Allowed || r.d.Code != "QUOTA_EXCEEDED" {
		t.Errorf("Decide during the flood = %+v, %v, want the function's QUOTA_EXCEEDED", r.d, r.err)
	}
	doneAtDecision := slowDone.Load()
	close(gate)

	// The backlog is worked off, and new events flow: a marker published
	// now is handled after everything NATS kept before it.
	received := func() float64 { return value(m.EventsReceived.WithLabelValues("POST_CREATE", "SERVER")) }
	marker, err := c.Publish(ctx, "POST_CREATE", "SERVER", nil)
	if err != nil {
		t.Fatal(err)
	}
	waitAll(t, "marker published after the flood", handledIDs, []string{marker})
	natstest.CheckFor(t, waitShort, poll, func() error {
		if r, n := received(), slowDone.Load(); r != float64(n) {
			return fmt.Errorf("received %v, handled %d", r, n)
		}
		return nil
	})
	kept := slowDone.Load() - 1 // without the marker
	t.Logf("flooded with %d events: NATS kept %d (all handled) and dropped %d (slow consumer reported %v times); the PRE was answered after %d slow calls finished, with %d of the backlog still to handle",
		flood, kept, flood-int(kept), value(m.SlowConsumers), released, kept-doneAtDecision)
	if kept-doneAtDecision <= 0 {
		t.Errorf("the PRE was answered only after the whole backlog")
	}
}
