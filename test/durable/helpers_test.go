package durable_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/internal/proctest"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/subjects"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// Bounded waits: ceilings for a loaded machine, never expectations of
// speed. A passing test returns long before them.
const (
	waitLong = 120 * time.Second
	poll     = 20 * time.Millisecond
)

// Names of the JetStream objects of the default prefix and queue.
const (
	eventStream   = "TRIGGER_EVENTS"
	eventConsumer = subjects.DefaultQueue
)

// scale returns n, or small under the race detector or -short.
func scale(n, small int) int {
	if raceEnabled || testing.Short() {
		return small
	}
	return n
}

// startWorker starts a worker serving fns on nc and stops it when the test
// ends. A worker whose connection the test closed (a lost worker) may
// report errors from Stop; they are logged, not failures.
func startWorker(t *testing.T, nc *nats.Conn, cfg worker.Config, fns ...worker.Function) *worker.Worker {
	t.Helper()
	// Creating replicated streams on a loaded machine can take longer than
	// JetStream's default request timeout.
	return proctest.StartWorkerWith(t, proctest.WorkerOptions{StartTimeout: waitLong, StrictStop: true}, nc, cfg, fns...)
}

// handling is one run of a function for an event, as the function saw it.
type handling struct {
	worker  int
	attempt int
	at      time.Time
}

// ledger records every run of the test functions, by event id.
type ledger struct {
	mu   sync.Mutex
	runs map[string][]handling
	n    int // all runs
}

func newLedger() *ledger { return &ledger{runs: map[string][]handling{}} }

// fn returns a POST function that records its runs as worker w.
func (l *ledger) fn(w int, typ string) worker.Function {
	return worker.Function{Ref: "record", TriggerType: typ, Options: []string{subjects.Any},
		Handler: handlers.Func(func(ctx context.Context, ev *event.Event) (handlers.Result, error) {
			c, _ := handlers.CallFrom(ctx)
			l.add(ev.ID, handling{worker: w, attempt: c.Attempt, at: time.Now()})
			return handlers.Result{}, nil
		})}
}

func (l *ledger) add(id string, h handling) {
	l.mu.Lock()
	l.runs[id] = append(l.runs[id], h)
	l.n++
	l.mu.Unlock()
}

// distinct returns how many events ran at least once.
func (l *ledger) distinct() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.runs)
}

// missing returns the ids of ids that never ran.
func (l *ledger) missing(ids []string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, id := range ids {
		if len(l.runs[id]) == 0 {
			out = append(out, id)
		}
	}
	return out
}

func (l *ledger) snapshot() map[string][]handling {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string][]handling, len(l.runs))
	for id, hs := range l.runs {
		out[id] = append([]handling(nil), hs...)
	}
	return out
}

// waitAllHandled waits until every one of ids has run.
func waitAllHandled(t *testing.T, l *ledger, ids []string) {
	t.Helper()
	natstest.CheckFor(t, waitLong, poll, func() error {
		if m := l.missing(ids); len(m) > 0 {
			return fmt.Errorf("%d of %d events not handled, e.g. %s", len(m), len(ids), m[0])
		}
		return nil
	})
}

// waitSettled waits until the shared consumer has nothing pending or
// unacked and the stream (interest retention) holds no event.
func waitSettled(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	natstest.WaitSettled(t, js, eventStream, eventConsumer, waitLong)
}
