package supercluster_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/pkg/client"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/subjects"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// ledger records which worker handled each event.
type ledger struct {
	mu       sync.Mutex
	runs     map[string][]string // event id -> instances that handled it
	byRegion map[string]int      // cluster -> events handled there
	firstB   chan struct{}       // closed when a worker of cluster B has handled an event
}

func newLedger() *ledger {
	return &ledger{runs: map[string][]string{}, byRegion: map[string]int{}, firstB: make(chan struct{})}
}

// fn returns the POST function of the worker named instance (its first
// letter is its cluster). With gate, the function waits until a worker of
// cluster B has handled an event before it handles its own: so cluster A's
// workers, one event in flight each, cannot take every event, and B's are
// sure to get some.
func (l *ledger) fn(instance string, gate bool) worker.Function {
	return worker.Function{Ref: "record", TriggerType: "POST_CREATE", Options: []string{subjects.Any},
		Handler: handlers.Func(func(ctx context.Context, ev *event.Event) (handlers.Result, error) {
			if gate {
				select {
				case <-l.firstB:
				case <-ctx.Done():
					return handlers.Result{}, fmt.Errorf("no worker of cluster B handled an event: %w", ctx.Err())
				}
			}
			l.mu.Lock()
			defer l.mu.Unlock()
			region := instance[:1]
			if region == "B" && l.byRegion["B"] == 0 {
				close(l.firstB)
			}
			l.runs[ev.ID] = append(l.runs[ev.ID], instance)
			l.byRegion[region]++
			return handlers.Result{}, nil
		})}
}

// check reports an error unless every one of ids has been handled, and
// each once; extra ids are reported too.
func (l *ledger) check(ids []string, final bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var missing []string
	for _, id := range ids {
		switch n := len(l.runs[id]); {
		case n == 0:
			missing = append(missing, id)
		case n > 1:
			return fmt.Errorf("event %s handled %d times, by %v", id, n, l.runs[id])
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%d of %d events not handled, e.g. %s", len(missing), len(ids), missing[0])
	}
	if final && len(l.runs) != len(ids) {
		return fmt.Errorf("%d events handled, %d published", len(l.runs), len(ids))
	}
	return nil
}

// TestDurableOnceFleetWide runs two durable workers in each cluster of a
// two-cluster supercluster. The operator has placed the event stream in
// cluster B; cluster A's workers start first, create the dead-letter stream
// and the done bucket in A, and leave the event stream where it is. Durable
// POST events published in both clusters are each handled exactly once, by
// workers of both clusters: A's take theirs from B's stream across the
// gateway.
func TestDurableOnceFleetWide(t *testing.T) {
	t.Parallel()
	sc := natstest.RunSupercluster(t, 2, 2, natstest.WithJetStream())
	a, b := sc[0], sc[1]
	scheme := defaultScheme(t)

	// The operator's placement, made from a connection in cluster A.
	ops := connect(t, a[0])
	js, err := jetstream.New(ops)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name:      scheme.EventStream(),
		Subjects:  []string{scheme.Pattern("POST_CREATE", subjects.Any)},
		Retention: jetstream.InterestPolicy,
		Placement: &jetstream.Placement{Cluster: "B"},
	}); err != nil {
		t.Fatalf("create the event stream in cluster B: %v", err)
	}

	l := newLedger()
	dc := &worker.DurableConfig{AckWait: waitLong}
	for i, s := range []*server.Server{a[0], a[1], b[0], b[1]} {
		instance := s.ClusterName() + strconv.Itoa(i%2+1)
		startWorker(t, connect(t, s), worker.Config{Durable: dc, MaxInFlight: 1, Instance: instance},
			l.fn(instance, s.ClusterName() == "A"))
	}
	for stream, want := range map[string]string{
		scheme.EventStream():                   "B",
		scheme.DeadLetterStream():              "A",
		"KV_" + scheme.EventStream() + "_DONE": "A",
	} {
		if got := streamCluster(t, ops, stream); got != want {
			t.Errorf("stream %s in cluster %q, want %s", stream, got, want)
		}
	}
	st, err := js.Stream(ctx, scheme.EventStream())
	if err != nil {
		t.Fatal(err)
	}
	if cfg := st.CachedInfo().Config; len(cfg.Subjects) < 2 || cfg.Discard != jetstream.DiscardNew {
		t.Errorf("the workers did not apply their configuration to the placed stream: subjects %v, discard %v", cfg.Subjects, cfg.Discard)
	}

	// Publishers in both clusters.
	n := 100
	var (
		mu  sync.Mutex
		ids []string
	)
	var wg sync.WaitGroup
	for _, s := range []*server.Server{a[1], b[0]} {
		c := newClient(t, connect(t, s), client.Options{Durable: true})
		wg.Go(func() {
			for i := range n {
				id, err := c.Publish(ctx, "POST_CREATE", "SERVER", &event.Event{Input: json.RawMessage(`{"n":` + strconv.Itoa(i) + `}`)})
				if err != nil {
					t.Errorf("publish from cluster %s: %v", s.ClusterName(), err)
					return
				}
				mu.Lock()
				ids = append(ids, id)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	natstest.CheckFor(t, waitLong, 20*time.Millisecond, func() error { return l.check(ids, false) })
	natstest.WaitSettled(t, js, scheme.EventStream(), subjects.DefaultQueue, waitLong)
	if err := l.check(ids, true); err != nil {
		t.Fatal(err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byRegion["A"] == 0 || l.byRegion["B"] == 0 {
		t.Fatalf("events handled by cluster: %v, want some in each", l.byRegion)
	}
	var regions []string
	for r, k := range l.byRegion {
		regions = append(regions, fmt.Sprintf("%s %d", r, k))
	}
	t.Logf("%d events published in both clusters, each handled once; by cluster: %s", len(ids), strings.Join(regions, ", "))
}
