package supercluster_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/internal/proctest"
	"github.com/triggerbus/triggerbus/pkg/client"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/subjects"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// Bounded waits: ceilings for a loaded machine, never expectations of
// speed. A passing test returns long before them.
const waitLong = 120 * time.Second

// connect connects to s, as a worker or caller of s's region does, and
// closes the connection when the test ends.
func connect(t *testing.T, s *server.Server) *nats.Conn {
	t.Helper()
	return natstest.Connect(t, s, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
}

// startWorker starts a worker serving fns on nc and stops it when the test
// ends (a worker whose connection the test closed may report errors then;
// they are logged).
func startWorker(t *testing.T, nc *nats.Conn, cfg worker.Config, fns ...worker.Function) *worker.Worker {
	t.Helper()
	return proctest.StartWorkerWith(t, proctest.WorkerOptions{StartTimeout: waitLong, StrictStop: true}, nc, cfg, fns...)
}

// stop stops w gracefully, as a SIGTERM does.
func stop(t *testing.T, w *worker.Worker) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	if err := w.Stop(ctx); err != nil {
		t.Fatalf("worker.Stop: %v", err)
	}
}

func newClient(t *testing.T, nc *nats.Conn, opts client.Options) *client.Client {
	t.Helper()
	c, err := client.New(nc, opts)
	if err != nil {
		t.Fatalf("client.New: %v", err)
	}
	return c
}

// decide asks c for a decision on typ.SERVER, within timeout.
func decide(t *testing.T, c *client.Client, typ string, timeout time.Duration) *event.Decision {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	d, err := c.Decide(ctx, typ, "SERVER", &event.Event{Input: json.RawMessage(`{}`)})
	if err != nil {
		t.Fatalf("Decide(%s): %v", typ, err)
	}
	return d
}

// streamCluster returns the name of the cluster that holds stream, read
// through nc.
func streamCluster(t *testing.T, nc *nats.Conn, stream string) string {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	if st.CachedInfo().Cluster == nil {
		t.Fatalf("stream %s has no cluster info", stream)
	}
	return st.CachedInfo().Cluster.Name
}

// defaultScheme returns the subjects and JetStream names of the default
// prefix.
func defaultScheme(t *testing.T) subjects.Scheme {
	t.Helper()
	s, err := subjects.NewScheme(subjects.DefaultPrefix)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
