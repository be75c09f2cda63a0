package faults_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/internal/proctest"
	"github.com/triggerbus/triggerbus/pkg/client"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// TestClusterNodeLost runs a worker on a three-node cluster, connected with
// the URLs of all three, and a publisher on another node. The node the
// worker is connected to is shut down while PRE requests are asked: the
// worker fails over to another node and keeps serving PRE and POST.
func TestClusterNodeLost(t *testing.T) {
	t.Parallel()
	servers := natstest.RunCluster(t, 3)
	logs := proctest.NewLogCapture()
	m, _ := newMetrics(t)
	wnc := connectWorker(t, natstest.ClusterURLs(servers), logs.Logger, m)
	handled := newIDSet()
	proctest.StartWorker(t, wnc, worker.Config{Metrics: m, Logger: logs.Logger},
		recordFn("record", "POST_CREATE", handled), denyBigFn("deny_big", "PRE_CREATE"))

	byName := map[string]*server.Server{}
	for _, s := range servers {
		byName[s.Name()] = s
	}
	victim := byName[wnc.ConnectedServerName()]
	if victim == nil {
		t.Fatalf("the worker is connected to %q, not a node of the cluster", wnc.ConnectedServerName())
	}
	var survivor *server.Server
	for _, s := range servers {
		if s != victim {
			survivor = s
			break
		}
	}
	c, err := client.New(natstest.Connect(t, survivor), client.Options{})
	if err != nil {
		t.Fatal(err)
	}

	// check asks a PRE decision and publishes a POST event, and waits until
	// the event is handled.
	check := func(when string) {
		t.Helper()
		waitInterest(t, survivor, "trigger.PRE_CREATE.*")
		waitInterest(t, survivor, "trigger.POST_CREATE.*")
		ctx, cancel := context.WithTimeout(context.Background(), waitShort)
		defer cancel()
		d, err := c.Decide(ctx, "PRE_CREATE", "SERVER", &event.Event{Input: json.RawMessage(`{"cpu":64}`)})
		if err != nil || d.Allowed || d.Code != "QUOTA_EXCEEDED" {
			t.Fatalf("%s: Decide = %+v, %v, want the function's QUOTA_EXCEEDED", when, d, err)
		}
		id, err := c.Publish(ctx, "POST_CREATE", "SERVER", nil)
		if err != nil {
			t.Fatal(err)
		}
		waitAll(t, when, handled, []string{id})
	}
	check("before the node is lost")

	pre := startPreLoop(c, 500*time.Millisecond, 0)
	victim.Shutdown()
	victim.WaitForShutdown()
	natstest.CheckFor(t, waitLong, poll, func() error {
		if !wnc.IsConnected() || wnc.ConnectedServerName() == victim.Name() {
			return fmt.Errorf("worker not failed over yet (connected %v to %q)", wnc.IsConnected(), wnc.ConnectedServerName())
		}
		return nil
	})
	check("after failing over to " + wnc.ConnectedServerName())
	natstest.CheckFor(t, waitShort, poll, func() error {
		if pre.count("QUOTA_EXCEEDED") == 0 {
			return errors.New("no PRE request of the loop got the function's decision yet")
		}
		return nil
	})
	codes, worst := pre.stopLoop(t)
	t.Logf("worker failed over from %s to %s; PRE decisions meanwhile, by code: %v; latest return %v after its deadline",
		victim.Name(), wnc.ConnectedServerName(), codes, worst.Round(time.Millisecond))
	checkRefused(t, codes)
	if logs.Count("reconnected to NATS") == 0 {
		t.Errorf("the worker did not log its reconnection:\n%s", proctest.Tail(logs.String(), 20))
	}
	if n := value(m.NATSConnected); n != 1 {
		t.Errorf("trigger_nats_connected = %v after the failover, want 1", n)
	}
}
