package durable_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/pkg/client"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// TestWorkerLostMidStream runs three workers on one durable consumer while
// events are published, and loses one of them part-way by closing its
// connection without Stop (the in-process equivalent of SIGKILL: no drain,
// no acks for what it holds). The events it held are delivered again after
// AckWait: no event is lost, and an event runs more than once only through
// a redelivery, which the function sees as an attempt above 1 (at most one
// run per event has attempt 1).
//
// 20,000 events; 5,000 under the race detector or -short.
func TestWorkerLostMidStream(t *testing.T) {
	n := scale(20000, 5000)
	s := natstest.RunServer(t, natstest.WithJetStream())
	l := newLedger()
	dc := &worker.DurableConfig{AckWait: 2 * time.Second, Backoff: []time.Duration{50 * time.Millisecond}}
	conns := make([]*nats.Conn, 3)
	for i := range conns {
		conns[i] = natstest.Connect(t, s)
		startWorker(t, conns[i], worker.Config{Durable: dc, MaxInFlight: 32}, l.fn(i, "POST_CREATE"))
	}

	pub := natstest.Connect(t, s)
	c, err := client.New(pub, client.Options{Durable: true})
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, n)
	errs := make(chan error, 4) // one per publisher
	var wg sync.WaitGroup
	for p := range cap(errs) {
		wg.Go(func() {
			for i := p; i < n; i += cap(errs) {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				id, err := c.Publish(ctx, "POST_CREATE", "SERVER", &event.Event{Input: json.RawMessage(`{"n":` + strconv.Itoa(i) + `}`)})
				cancel()
				if err != nil {
					errs <- fmt.Errorf("publish %d: %w", i, err)
					return
				}
				ids[i] = id
			}
		})
	}

	// Lose worker 0 once a quarter of the events ran, while publishing goes on.
	natstest.CheckFor(t, waitLong, 5*time.Millisecond, func() error {
		if d := l.distinct(); d < n/4 {
			return fmt.Errorf("%d of %d events handled before the kill", d, n/4)
		}
		return nil
	})
	conns[0].Close()
	killedAt := time.Now()
	handledAtKill := l.distinct()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if handledAtKill >= n {
		t.Fatalf("all %d events were handled before the kill: no publishing went on", n)
	}

	waitAllHandled(t, l, ids)
	js, err := jetstream.New(pub)
	if err != nil {
		t.Fatal(err)
	}
	waitSettled(t, js)

	runs := l.snapshot()
	if len(runs) != n {
		t.Errorf("%d distinct events ran, want %d", len(runs), n)
	}
	var dups, notLost, onlyRedelivered, lostRuns, afterKill int
	for id, hs := range runs {
		first := 0
		for _, h := range hs {
			if h.attempt == 1 {
				first++
			}
			if h.attempt < 1 {
				t.Errorf("event %s ran with attempt %d, want >= 1", id, h.attempt)
			}
			if h.worker == 0 && h.at.After(killedAt) {
				afterKill++
			}
		}
		switch first {
		case 0:
			// Delivered to the lost worker, which never ran it.
			onlyRedelivered++
		case 1:
		default:
			t.Errorf("event %s ran %d times at attempt 1 (runs %+v): a second run must be a redelivery", id, first, hs)
		}
		if len(hs) > 1 {
			dups++
			// Expected: the first delivery went to the lost worker. A live
			// worker that sat on an event past AckWait would also see it
			// delivered again; that is allowed, and counted.
			for _, h := range hs {
				if h.attempt == 1 && h.worker != 0 {
					notLost++
				}
			}
		}
		for _, h := range hs {
			if h.worker == 0 {
				lostRuns++
			}
		}
	}
	t.Logf("%d events, %d handled when worker 0 was lost; it ran %d (%d after its connection closed); "+
		"%d events ran more than once, %d of them first delivered to a live worker; %d ran only on a redelivery",
		n, handledAtKill, lostRuns, afterKill, dups, notLost, onlyRedelivered)
}
