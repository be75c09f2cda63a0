package security_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/internal/proctest"
	"github.com/triggerbus/triggerbus/pkg/client"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// TestDeployConfigArchive: under the example config, a worker as
// trigger-worker sets up the event archive and its events are archived;
// `trigger-worker replay --function` as trigger-admin publishes them
// again and the function runs them. Nobody hits a permissions violation.
func TestDeployConfigArchive(t *testing.T) {
	t.Parallel()
	s := deployServer(t)
	var violations []string
	var vmu sync.Mutex
	record := nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		vmu.Lock()
		violations = append(violations, err.Error())
		vmu.Unlock()
	})
	var runs atomic.Int32
	proctest.StartWorker(t, connectAs(t, s, "trigger-worker", record), worker.Config{
		Durable: &worker.DurableConfig{Archive: &worker.ArchiveConfig{}},
	}, worker.Function{Ref: "count", TriggerType: "POST_CREATE", Options: []string{"ANY"},
		Handler: handlers.Func(func(context.Context, *event.Event) (handlers.Result, error) {
			runs.Add(1)
			return handlers.Result{ExitState: handlers.Success}, nil
		})})
	c, err := client.New(connectAs(t, s, "orchestrator", record), client.Options{Durable: true})
	if err != nil {
		t.Fatal(err)
	}
	const n = 3
	for range n {
		if _, err := c.Publish(context.Background(), "POST_CREATE", "SERVER", nil); err != nil {
			t.Fatal(err)
		}
	}
	js, err := jetstream.New(connectAs(t, s, "trigger-admin"))
	if err != nil {
		t.Fatal(err)
	}
	archived := func(want uint64) {
		t.Helper()
		natstest.CheckFor(t, waitLong, poll, func() error {
			if got := runs.Load(); uint64(got) != want {
				return fmt.Errorf("count ran %d times, want %d", got, want)
			}
			st, err := js.Stream(context.Background(), "TRIGGER_ARCHIVE")
			if err != nil {
				return err
			}
			info, err := st.Info(context.Background())
			if err != nil {
				return err
			}
			if info.State.Msgs != want {
				return fmt.Errorf("archive holds %d events, want %d", info.State.Msgs, want)
			}
			return nil
		})
	}
	archived(n)
	env := []string{"TRIGGER_NATS_USER=trigger-admin", "TRIGGER_NATS_PASSWORD=" + password(t, "trigger-admin")}
	code, out, errOut := run(t, env, "replay", "--since", "1h", "--function", "count", "--nats-url", s.ClientURL())
	if code != 0 || strings.TrimSpace(out) != "matched 3, published 3, skipped 0, failed 0" {
		t.Fatalf("replay as trigger-admin: exit %d\n%s\n%s", code, out, errOut)
	}
	archived(2 * n)
	vmu.Lock()
	defer vmu.Unlock()
	if len(violations) > 0 {
		t.Errorf("errors on the worker's or orchestrator's connections: %v", violations)
	}
}
