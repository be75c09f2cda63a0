package worker_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/micro"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// TestReplaceRevision: the functions of a bundle revision decide with that
// revision in the decision, and the discovery metadata shows it; a plain
// Replace serves functions of no revision again.
func TestReplaceRevision(t *testing.T) {
	s := natstest.RunServer(t)
	nc := natstest.Connect(t, s)
	allow := fn("allow", "PRE_CREATE", []string{"SERVER"}, 0, func(context.Context, *event.Event) (handlers.Result, error) {
		return handlers.Result{ExitState: handlers.Success}, nil
	})
	w := startWorker(t, nc, worker.Config{Name: "rev"}, allow)
	ask := func() *event.Decision {
		t.Helper()
		msg, err := nc.Request("trigger.PRE_CREATE.SERVER", []byte(`{}`), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		d, err := event.DecodeDecision(msg.Data)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	if d := ask(); d.Revision != 0 {
		t.Fatalf("decision of functions of no revision: revision %d, want 0", d.Revision)
	}
	if err := w.ReplaceRevision(context.Background(), 7, allow); err != nil {
		t.Fatal(err)
	}
	if d := ask(); d.Revision != 7 || !d.Allowed || w.Revision() != 7 {
		t.Fatalf("decision after ReplaceRevision(7): %+v, Revision() = %d", d, w.Revision())
	}
	infos := decodeAll[micro.Info](t, gather(t, nc, "$SRV.INFO.rev."+w.ServiceID(), 1))
	if len(infos) != 1 || infos[0].Metadata["functions_revision"] != "7" {
		t.Fatalf("discovery info after ReplaceRevision(7): %+v", infos)
	}
	if err := w.Replace(context.Background(), allow); err != nil {
		t.Fatal(err)
	}
	if d := ask(); d.Revision != 0 {
		t.Fatalf("decision after a plain Replace: revision %d, want 0", d.Revision)
	}
}

// TestDurableFollowActive: with FollowActive every worker writes the
// consumer without a filter (every event of the stream), whatever its
// functions; a worker runs
// durable events only while it serves the active revision, so once
// revision 2 is active the worker still on revision 1 runs none and the
// worker on revision 2 runs them all, acking those it has no function for.
func TestDurableFollowActive(t *testing.T) {
	r := newDurableRig(t)
	dc := durableTestConfig()
	dc.FollowActive = true
	old, next := newDurableCalls(), newDurableCalls()
	record := func(c *durableCalls) handlers.Func {
		return func(ctx context.Context, ev *event.Event) (handlers.Result, error) {
			c.record(ctx, ev)
			return handlers.Result{}, nil
		}
	}
	ctx := context.Background()
	serve := func(w *worker.Worker, rev uint64, f worker.Function) {
		t.Helper()
		if err := w.SetActive(ctx, rev); err != nil {
			t.Fatal(err)
		}
		if err := w.ReplaceRevision(ctx, rev, f); err != nil {
			t.Fatal(err)
		}
	}
	w1 := r.start(t, dc)
	serve(w1, 1, fn("on_create_v1", "POST_CREATE", []string{"SERVER"}, 0, record(old)))
	cfg := durableConsumerInfo(t, r.js).Config
	filter := cfg.FilterSubjects
	if len(filter) != 0 || cfg.FilterSubject != "" {
		t.Fatalf("consumer filter = %v %q, want none: every event of the stream", filter, cfg.FilterSubject)
	}
	first := r.publish(t, "POST_CREATE", "SERVER", `{}`)
	if got := natstest.ChanRecv(t, old.ch, 10*time.Second); got.id != first {
		t.Fatalf("revision 1 ran %s, want %s", got.id, first)
	}

	// Revision 2 is active: worker 1, still on revision 1, stops taking
	// events; worker 2 serves revision 2.
	if err := w1.SetActive(ctx, 2); err != nil {
		t.Fatal(err)
	}
	w2 := startWorker(t, natstest.Connect(t, r.s), worker.Config{Durable: dc})
	serve(w2, 2, fn("on_create_v2", "POST_CREATE", []string{"SERVER"}, 0, record(next)))
	var ids []string
	for range 5 {
		ids = append(ids, r.publish(t, "POST_CREATE", "SERVER", `{}`))
	}
	r.publish(t, "POST_DELETE", "SERVER", `{}`) // no function in revision 2: acked
	for range ids {
		if got := natstest.ChanRecv(t, next.ch, 10*time.Second); !slices.Contains(ids, got.id) {
			t.Fatalf("revision 2 ran %s, not one of %v", got.id, ids)
		}
	}
	waitDurableSettled(t, r.js, 10*time.Second)
	if n := old.count(); n != 1 {
		t.Fatalf("revision 1 ran %d events, want only the one published while it was active: %v", n, old.all())
	}
	if got := durableConsumerInfo(t, r.js).Config.FilterSubjects; !slices.Equal(got, filter) {
		t.Fatalf("consumer filter after revision 2 = %v, want it unchanged %v", got, filter)
	}
}
