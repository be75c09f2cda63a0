package supercluster_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/pkg/client"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/subjects"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// answering is a PRE function of the worker named instance that allows
// the action; a decision names the function that ran, so which worker (and
// so which cluster) answered shows in its Functions.
func answering(instance string) worker.Function {
	return worker.Function{Ref: "answer-" + instance, TriggerType: "PRE_CREATE", Options: []string{"SERVER"},
		Handler: handlers.Func(func(context.Context, *event.Event) (handlers.Result, error) {
			return handlers.Result{}, nil
		})}
}

// answeredBy returns the instance whose function made d, or "" when no
// function ran.
func answeredBy(d *event.Decision) string {
	if len(d.Functions) != 1 {
		return ""
	}
	return strings.TrimPrefix(d.Functions[0].Ref, "answer-")
}

// TestPreLocalFirstAndFailover runs two PRE workers in each cluster of a
// two-cluster supercluster; cluster B's start first, so the registry bucket
// and the decision log live in B. Callers in each cluster are answered by
// their own cluster's workers. When A's workers go (one stopped, one lost
// with its connection), A's callers are answered by B's workers across the
// gateway. When B's are lost too, an A caller gets NO_WORKER, refused: it
// read across the gateway that functions are registered. A subject with no
// function is still allowed with NO_TRIGGER.
func TestPreLocalFirstAndFailover(t *testing.T) {
	t.Parallel()
	sc := natstest.RunSupercluster(t, 2, 2, natstest.WithJetStream())
	a, b := sc[0], sc[1]
	scheme := defaultScheme(t)
	subject := scheme.Pattern("PRE_CREATE", "SERVER")

	start := func(instance string, nc *nats.Conn) *worker.Worker {
		return startWorker(t, nc, worker.Config{Registry: true, Instance: instance, DecisionLog: &worker.DecisionLogConfig{}},
			answering(instance))
	}
	ncB1, ncB2 := connect(t, b[0]), connect(t, b[1])
	start("B1", ncB1)
	start("B2", ncB2)
	wA1 := start("A1", connect(t, a[0]))
	ncA2 := connect(t, a[1])
	start("A2", ncA2)

	callerA := connect(t, a[0])
	if got := streamCluster(t, callerA, "KV_"+scheme.RegistryBucket()); got != "B" {
		t.Fatalf("registry bucket in cluster %q, want B (its first worker's)", got)
	}
	if got := streamCluster(t, callerA, scheme.DecisionStream()); got != "B" {
		t.Fatalf("decision log in cluster %q, want B", got)
	}

	// Each cluster knows its own workers and the other's.
	natstest.WaitInterest(t, a, subject, waitLong)
	natstest.WaitInterest(t, b, subject, waitLong)
	natstest.WaitGatewayQueueInterest(t, a, "B", subject, subjects.DefaultQueue, waitLong)
	natstest.WaitGatewayQueueInterest(t, b, "A", subject, subjects.DefaultQueue, waitLong)

	ca := newClient(t, callerA, client.Options{})
	cb := newClient(t, connect(t, b[1]), client.Options{})
	const n = 20
	answeredIn := func(c *client.Client, cluster string) []string {
		t.Helper()
		var by []string
		for range n {
			d := decide(t, c, "PRE_CREATE", waitLong)
			w := answeredBy(d)
			if !d.Allowed || !strings.HasPrefix(w, cluster) {
				t.Fatalf("decision %+v: answered by %q, want an allow from a worker of cluster %s", d, w, cluster)
			}
			if !slices.Contains(by, w) {
				by = append(by, w)
			}
		}
		slices.Sort(by)
		return by
	}
	t.Logf("callers in A answered by %v, callers in B by %v", answeredIn(ca, "A"), answeredIn(cb, "B"))

	// A's workers go: A1 stops, A2 is lost (its connection closes and
	// its registration stays).
	stop(t, wA1)
	ncA2.Close()
	natstest.WaitNoInterest(t, a, subject, waitLong)
	t.Logf("with A's workers gone, callers in A answered by %v", answeredIn(ca, "B"))

	// B's workers are lost too: the registry (in B) still lists them.
	ncB1.Close()
	ncB2.Close()
	natstest.WaitNoInterest(t, b, subject, waitLong)
	natstest.WaitNoGatewayQueueInterest(t, a, "B", subject, subjects.DefaultQueue, waitLong)
	if d := decide(t, ca, "PRE_CREATE", waitLong); d.Allowed || d.Code != event.CodeNoWorker {
		t.Fatalf("with no worker left: decision %+v, want refused with %s", d, event.CodeNoWorker)
	}
	if d := decide(t, ca, "PRE_DELETE", waitLong); !d.Allowed || d.Code != event.CodeNoTrigger {
		t.Fatalf("for a subject with no function: decision %+v, want allowed with %s", d, event.CodeNoTrigger)
	}
}
