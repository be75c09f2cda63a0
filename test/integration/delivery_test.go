package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/pkg/client"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// TestQueueGroupHandlesEachEventOnce runs two workers of one queue group on
// two connections: every POST event runs on exactly one of them.
func TestQueueGroupHandlesEachEventOnce(t *testing.T) {
	t.Parallel()
	const events = 10_000
	s := natstest.RunServer(t)

	seen := newRecorder[string, int]() // event id -> workers that ran it
	var total atomic.Int64
	for i := range 2 {
		startWorker(t, natstest.Connect(t, s), worker.Config{},
			fn("count", "POST_CREATE", []string{"SERVER"}, 0, func(_ context.Context, ev *event.Event) (handlers.Result, error) {
				seen.add(ev.ID, i)
				total.Add(1)
				return handlers.Result{ExitState: handlers.Success}, nil
			}))
	}

	c := newClient(t, s, client.Options{})
	ctx := context.Background()
	published := make(map[string]bool, events)
	for i := range events {
		id, err := c.Publish(ctx, "POST_CREATE", "SERVER", &event.Event{Input: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))})
		if err != nil {
			t.Fatalf("Publish #%d: %v", i, err)
		}
		published[id] = true
	}
	if len(published) != events {
		t.Fatalf("Publish returned %d distinct ids for %d events", len(published), events)
	}

	natstest.CheckFor(t, waitLong, poll, func() error {
		if n := total.Load(); n < events {
			return fmt.Errorf("%d of %d events handled", n, events)
		}
		return nil
	})
	perWorker := [2]int{}
	got := seen.snapshot()
	for id := range published {
		ws := got[id]
		if len(ws) != 1 {
			t.Errorf("event %s ran %d times (workers %v), want once", id, len(ws), ws)
			continue
		}
		perWorker[ws[0]]++
	}
	if len(got) != events {
		t.Errorf("%d distinct event ids ran, want %d", len(got), events)
	}
	if perWorker[0] == 0 || perWorker[1] == 0 {
		t.Errorf("events per worker = %v, want both workers to get some", perWorker)
	}
	t.Logf("events per worker: %v", perWorker)
}

// TestAnyAndSpecificOptions registers one function for ANY and one for
// SERVER: SERVER events run both in priority order, DISK events only the
// ANY one.
func TestAnyAndSpecificOptions(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	nc := natstest.Connect(t, s)
	ran := newRecorder[string, string]() // event id -> refs in the order they ran
	var calls atomic.Int64
	record := func(ref string) handlers.Func {
		return func(_ context.Context, ev *event.Event) (handlers.Result, error) {
			ran.add(ev.ID, ref)
			calls.Add(1)
			return handlers.Result{}, nil
		}
	}
	// audit_all sorts first by priority although its ref sorts last.
	w := startWorker(t, nc, worker.Config{},
		fn("z_audit_all", "POST_CREATE", []string{"ANY"}, -10, record("z_audit_all")),
		fn("a_server_only", "POST_CREATE", []string{"SERVER"}, 0, record("a_server_only")),
	)
	if got, want := w.Subjects(), []string{"trigger.POST_CREATE.*"}; !slices.Equal(got, want) {
		t.Errorf("Subjects() = %v, want %v (the wildcard covers SERVER)", got, want)
	}

	c := newClient(t, s, client.Options{})
	ctx := context.Background()
	const each = 20
	var servers, disks []string
	for range each {
		id, err := c.Publish(ctx, "POST_CREATE", "SERVER", nil)
		if err != nil {
			t.Fatal(err)
		}
		servers = append(servers, id)
		id, err = c.Publish(ctx, "POST_CREATE", "DISK", nil)
		if err != nil {
			t.Fatal(err)
		}
		disks = append(disks, id)
	}
	waitCount(t, "function calls", &calls, 3*each)

	for _, id := range servers {
		if got, want := ran.get(id), []string{"z_audit_all", "a_server_only"}; !slices.Equal(got, want) {
			t.Errorf("SERVER event %s ran %v, want %v", id, got, want)
		}
	}
	for _, id := range disks {
		if got, want := ran.get(id), []string{"z_audit_all"}; !slices.Equal(got, want) {
			t.Errorf("DISK event %s ran %v, want %v", id, got, want)
		}
	}
}
