package proctest

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/triggerbus/triggerbus/pkg/worker"
)

// NewWorker builds, without starting it, a worker serving fns on nc. It
// fails the test when New refuses fns or cfg.
func NewWorker(t testing.TB, nc *nats.Conn, cfg worker.Config, fns ...worker.Function) *worker.Worker {
	t.Helper()
	w, err := worker.New(nc, cfg, fns...)
	if err != nil {
		t.Fatalf("worker.New: %v", err)
	}
	return w
}

// WorkerOptions say how [StartWorkerWith] starts and stops a worker.
type WorkerOptions struct {
	// StartTimeout bounds Start. Zero means a minute.
	StartTimeout time.Duration
	// StrictStop makes an error from the Stop at the end of the test fail
	// the test, unless the worker's connection was closed by then (a lost
	// worker may not stop cleanly). Without it the error is only logged.
	StrictStop bool
}

// StartWorker starts a worker serving fns on nc and stops it when the test
// ends, as [StartWorkerWith] with no options: an error from that Stop is
// logged, not a failure.
func StartWorker(t testing.TB, nc *nats.Conn, cfg worker.Config, fns ...worker.Function) *worker.Worker {
	t.Helper()
	return StartWorkerWith(t, WorkerOptions{}, nc, cfg, fns...)
}

// StartWorkerWith builds a worker serving fns on nc, as [NewWorker] does,
// and starts it, failing the test if it does not start within
// o.StartTimeout. When the test ends the worker is stopped, within 30
// seconds; o.StrictStop says whether an error from that Stop fails the
// test.
func StartWorkerWith(t testing.TB, o WorkerOptions, nc *nats.Conn, cfg worker.Config, fns ...worker.Function) *worker.Worker {
	t.Helper()
	w := NewWorker(t, nc, cfg, fns...)
	if o.StartTimeout <= 0 {
		o.StartTimeout = time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.StartTimeout)
	defer cancel()
	if err := w.Start(ctx); err != nil {
		_ = w.Stop(context.Background())
		t.Fatalf("worker.Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := w.Stop(ctx)
		switch {
		case err == nil:
		case !o.StrictStop:
			t.Logf("worker.Stop: %v", err)
		case nc.IsClosed():
			t.Logf("Stop of a worker whose connection was closed: %v", err)
		default:
			t.Errorf("worker.Stop: %v", err)
		}
	})
	return w
}
