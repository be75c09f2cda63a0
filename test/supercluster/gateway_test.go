package supercluster_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/pkg/client"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/subjects"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// TestClusterUnreachable: cluster B, which holds the event stream and the
// registry bucket (its worker started first, and has stopped), becomes
// unreachable from cluster A (its servers shut down, as when the gateway
// is cut). A's callers are still answered by A's workers; a durable publish
// from A fails with an error rather than be lost; once A's workers are lost
// too, an A caller is refused NO_WORKER, since the registry cannot be read.
func TestClusterUnreachable(t *testing.T) {
	t.Parallel()
	sc := natstest.RunSupercluster(t, 2, 2, natstest.WithJetStream())
	a, b := sc[0], sc[1]
	scheme := defaultScheme(t)
	subject := scheme.Pattern("PRE_CREATE", "SERVER")

	record := worker.Function{Ref: "record", TriggerType: "POST_CREATE", Options: []string{subjects.Any},
		Handler: handlers.Func(func(context.Context, *event.Event) (handlers.Result, error) { return handlers.Result{}, nil })}
	wB := startWorker(t, connect(t, b[0]), worker.Config{Registry: true, Instance: "B1", Durable: &worker.DurableConfig{}},
		answering("B1"), record)
	ncA1, ncA2 := connect(t, a[0]), connect(t, a[1])
	startWorker(t, ncA1, worker.Config{Registry: true, Instance: "A1"}, answering("A1"))
	startWorker(t, ncA2, worker.Config{Registry: true, Instance: "A2"}, answering("A2"))
	stop(t, wB)

	callerA := connect(t, a[0])
	for stream, want := range map[string]string{scheme.EventStream(): "B", "KV_" + scheme.RegistryBucket(): "B"} {
		if got := streamCluster(t, callerA, stream); got != want {
			t.Fatalf("stream %s in cluster %q, want %s", stream, got, want)
		}
	}
	natstest.WaitInterest(t, a, subject, waitLong)

	for _, s := range b {
		s.Shutdown()
	}
	for _, s := range b {
		s.WaitForShutdown()
	}

	ca := newClient(t, callerA, client.Options{Durable: true})
	for range 10 {
		if d := decide(t, ca, "PRE_CREATE", 10*time.Second); !d.Allowed || !strings.HasPrefix(answeredBy(d), "A") {
			t.Fatalf("with cluster B gone: decision %+v, want an allow from a worker of cluster A", d)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	if id, err := ca.Publish(ctx, "POST_CREATE", "SERVER", &event.Event{Input: json.RawMessage(`{}`)}); err == nil {
		t.Fatalf("durable publish with the event stream's cluster gone: stored as %s, want an error", id)
	} else {
		t.Logf("durable publish with the event stream's cluster gone: %v", err)
	}

	ncA1.Close()
	ncA2.Close()
	natstest.WaitNoInterest(t, a, subject, waitLong)
	d := decide(t, ca, "PRE_CREATE", 10*time.Second)
	if d.Allowed || d.Code != event.CodeNoWorker {
		t.Fatalf("with no worker and the registry unreachable: decision %+v, want refused with %s", d, event.CodeNoWorker)
	}
	t.Logf("with no worker and the registry unreachable: %s", d.Message)
}
