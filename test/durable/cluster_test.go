package durable_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/pkg/client"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// globalAccount is the account of clients when the servers configure none.
const globalAccount = "$G"

// connectCluster connects to any server of the cluster and reconnects for
// ever, as a worker or publisher in production does.
func connectCluster(t *testing.T, servers []*server.Server) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(natstest.ClusterURLs(servers), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// streamLeader returns the server that leads stream, waiting for an
// election if needed. Servers in down are skipped.
func streamLeader(t *testing.T, servers []*server.Server, stream string, down *server.Server) *server.Server {
	t.Helper()
	var leader *server.Server
	natstest.CheckFor(t, waitLong, poll, func() error {
		for _, s := range servers {
			if s != down && s.JetStreamIsStreamLeader(globalAccount, stream) {
				leader = s
				return nil
			}
		}
		return errors.New("no stream leader")
	})
	return leader
}

// TestStreamLeaderLost publishes durable events to a 3-node JetStream
// cluster (stream, consumer and done bucket with 3 replicas) and shuts the
// stream's leader down part-way. Publishes fail while a new leader is
// elected; every event whose publish was acknowledged is handled.
//
// 3,000 events; 1,000 under the race detector or -short.
func TestStreamLeaderLost(t *testing.T) {
	n := scale(3000, 1000)
	servers := natstest.RunCluster(t, 3, natstest.WithJetStream())
	l := newLedger()
	dc := &worker.DurableConfig{Replicas: 3, AckWait: 2 * time.Second, Backoff: []time.Duration{100 * time.Millisecond}}
	for i := range 2 {
		startWorker(t, connectCluster(t, servers), worker.Config{Durable: dc, MaxInFlight: 32}, l.fn(i, "POST_DELETE"))
	}
	leader := streamLeader(t, servers, eventStream, nil)

	c, err := client.New(connectCluster(t, servers), client.Options{Durable: true, PublishRetries: 10})
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu     sync.Mutex
		acked  []string
		failed atomic.Int64
		sent   atomic.Int64
	)
	publish := func(i int) error {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		id, err := c.Publish(ctx, "POST_DELETE", "SERVER", &event.Event{Input: json.RawMessage(`{"n":` + strconv.Itoa(i) + `}`)})
		if err != nil {
			return err
		}
		mu.Lock()
		acked = append(acked, id)
		mu.Unlock()
		return nil
	}
	var wg sync.WaitGroup
	const publishers = 4
	for p := range publishers {
		wg.Go(func() {
			for i := p; i < n; i += publishers {
				sent.Add(1)
				if err := publish(i); err != nil {
					failed.Add(1)
				}
			}
		})
	}
	natstest.CheckFor(t, waitLong, 5*time.Millisecond, func() error {
		if s := sent.Load(); s < int64(n/3) {
			return fmt.Errorf("%d of %d events sent before the leader goes", s, n/3)
		}
		return nil
	})
	leader.Shutdown()
	lostAt := sent.Load()
	wg.Wait()

	// A new leader takes the stream, and publishing works again.
	newLeader := streamLeader(t, servers, eventStream, leader)
	for i := range 100 {
		if err := publish(n + i); err != nil {
			t.Fatalf("publish after the new leader (%s) was elected: %v", newLeader.Name(), err)
		}
	}

	mu.Lock()
	ids := append([]string(nil), acked...)
	mu.Unlock()
	waitAllHandled(t, l, ids)
	t.Logf("%d events sent, leader %s shut down after %d; %d acknowledged (all handled), %d publishes failed; new leader %s",
		n+100, leader.Name(), lostAt, len(ids), failed.Load(), newLeader.Name())
}
