package durable_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/pkg/client"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// TestArchiveCluster: on a 3-node JetStream cluster, with the event stream
// and the archive replicated 3 times, a worker finds the archive's source
// on the event stream before it consumes, and every event published right
// after it started is handled, removed from the event stream and kept in
// the archive.
func TestArchiveCluster(t *testing.T) {
	servers := natstest.RunCluster(t, 3, natstest.WithJetStream())
	nc := connectCluster(t, servers)
	l := newLedger()
	startWorker(t, nc, worker.Config{Durable: &worker.DurableConfig{
		Replicas: 3, Archive: &worker.ArchiveConfig{},
	}}, l.fn(0, "POST_CREATE"))
	c, err := client.New(connectCluster(t, servers), client.Options{Durable: true})
	if err != nil {
		t.Fatal(err)
	}
	n := scale(200, 50)
	var ids []string
	for i := range n {
		id, err := c.Publish(context.Background(), "POST_CREATE", "SERVER", &event.Event{Input: json.RawMessage(`{"i":` + strconv.Itoa(i) + `}`)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	waitAllHandled(t, l, ids)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	waitSettled(t, js)
	natstest.CheckFor(t, waitLong, poll, func() error {
		s, err := js.Stream(context.Background(), "TRIGGER_ARCHIVE")
		if err != nil {
			return err
		}
		info, err := s.Info(context.Background())
		if err != nil {
			return err
		}
		if info.Config.Replicas != 3 || info.State.Msgs != uint64(n) {
			return fmt.Errorf("archive: %d replicas, %d events; want 3 and %d", info.Config.Replicas, info.State.Msgs, n)
		}
		return nil
	})
}
