package worker_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/pkg/client"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/subjects"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// TestPreWatchdogReuse: the watchdog of a request whose function overruns
// answers TIMEOUT and is not reused while that function still runs. The
// requests answered in the meantime (which take reused watchdogs) each get
// their own decision, and when the overrunning function returns at last, its
// request gets no second answer.
func TestPreWatchdogReuse(t *testing.T) {
	s := natstest.RunServer(t)
	wnc := natstest.Connect(t, s)
	release, returned := make(chan struct{}), make(chan struct{})
	w := startWorker(t, wnc, worker.Config{},
		// Ignores its context: only release ends it.
		fn("stubborn", "PRE_DELETE", []string{"SERVER"}, 0, func(context.Context, *event.Event) (handlers.Result, error) {
			<-release
			defer close(returned)
			return handlers.Result{}, nil
		}),
		fn("fast", "PRE_CREATE", []string{"SERVER"}, 0, func(context.Context, *event.Event) (handlers.Result, error) {
			return handlers.Result{}, nil
		}))

	nc := natstest.Connect(t, s)
	inbox := nats.NewInbox()
	replies := make(chan *nats.Msg, 8)
	if _, err := nc.ChanSubscribe(inbox, replies); err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg("trigger.PRE_DELETE.SERVER")
	m.Reply = inbox
	m.Header.Set(subjects.HeaderDeadline, strconv.FormatInt(time.Now().Add(300*time.Millisecond).UnixMilli(), 10))
	m.Data = []byte(`{"id":"stubborn-1","triggerType":"PRE_DELETE","triggerOption":"SERVER","timeStamp":1764420000000,"input":{}}`)
	if err := nc.PublishMsg(m); err != nil {
		t.Fatal(err)
	}
	var first *nats.Msg
	select {
	case first = <-replies:
	case <-time.After(10 * time.Second):
		t.Fatal("no decision for the overrunning request")
	}
	d, err := event.DecodeDecision(first.Data)
	if err != nil {
		t.Fatal(err)
	}
	if d.Allowed || d.Code != event.CodeTimeout || d.Function != "stubborn" || d.ID != "stubborn-1" {
		t.Fatalf("overrunning request: %+v, want TIMEOUT by stubborn", d)
	}

	// While stubborn still runs, other requests with deadlines take reused
	// watchdogs.
	c, err := client.New(natstest.Connect(t, s), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ev := &event.Event{ID: "fast-" + strconv.Itoa(i)}
		d, err := c.Decide(ctx, "PRE_CREATE", "SERVER", ev)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if !d.Allowed || d.Code != "" || d.ID != ev.ID || len(d.Functions) != 1 || d.Functions[0].Ref != "fast" {
			t.Fatalf("request %d: %+v, want allowed by fast", i, d)
		}
	}

	close(release)
	<-returned
	// The worker has answered everything it will once it stops; its
	// connection's round trip puts its replies ahead of ours.
	if err := w.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := wnc.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if n := len(replies); n != 0 {
		extra, _ := event.DecodeDecision((<-replies).Data)
		t.Fatalf("the overrunning request got %d more answers after its TIMEOUT, first %+v", n, extra)
	}
}
