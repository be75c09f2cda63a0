package client_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/pkg/client"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/subjects"
)

// TestPublishMsgID: Nats-Msg-Id goes where the same event may be sent
// again (a durable publish, an id the caller chose, a PRE request); a core
// publish of an id the SDK made goes out as a plain message without
// headers.
func TestPublishMsgID(t *testing.T) {
	s := natstest.RunServer(t, natstest.WithJetStream())
	sub := natstest.Connect(t, s)
	msgs := make(chan *nats.Msg, 16)
	if _, err := sub.ChanSubscribe("trigger.>", msgs); err != nil {
		t.Fatal(err)
	}
	// The PRE request needs an answer: any reply will do here.
	if _, err := sub.Subscribe("trigger.PRE_CREATE.SERVER", func(m *nats.Msg) {
		_ = m.Respond([]byte(`{"id":"x","allowed":true,"modified":false,"functions":[]}`))
	}); err != nil {
		t.Fatal(err)
	}
	if err := sub.Flush(); err != nil {
		t.Fatal(err)
	}
	nc := natstest.Connect(t, s)
	core, err := client.New(nc, client.Options{NoRegistryWatch: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	next := func() *nats.Msg {
		t.Helper()
		select {
		case m := <-msgs:
			return m
		case <-time.After(10 * time.Second):
			t.Fatal("no message")
			return nil
		}
	}

	id, err := core.Publish(ctx, "POST_CREATE", "SERVER", nil)
	if err != nil {
		t.Fatal(err)
	}
	if m := next(); m.Header != nil {
		t.Errorf("core publish of a new id: headers %v, want none", m.Header)
	} else if ev, err := event.Decode(m.Data, subjects.Subject{}, event.Limits{}); err != nil || ev.ID != id {
		t.Errorf("core publish: event id %q (%v), want %q", ev.ID, err, id)
	}

	if _, err := core.Publish(ctx, "POST_CREATE", "SERVER", &event.Event{ID: "mine-1"}); err != nil {
		t.Fatal(err)
	}
	if got := next().Header.Get(subjects.HeaderMsgID); got != "mine-1" {
		t.Errorf("core publish of the caller's id: Nats-Msg-Id %q, want mine-1", got)
	}

	if _, err := core.Decide(ctx, "PRE_CREATE", "SERVER", nil); err != nil {
		t.Fatal(err)
	}
	if m := next(); m.Header.Get(subjects.HeaderMsgID) == "" || m.Header.Get(subjects.HeaderDeadline) == "" {
		t.Errorf("PRE request headers %v, want Nats-Msg-Id and Trigger-Deadline", m.Header)
	}

	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "EVENTS", Subjects: []string{"trigger.POST_CREATE.>"}}); err != nil {
		t.Fatal(err)
	}
	durable, err := client.New(nc, client.Options{Durable: true})
	if err != nil {
		t.Fatal(err)
	}
	id, err = durable.Publish(ctx, "POST_CREATE", "SERVER", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := next().Header.Get(subjects.HeaderMsgID); got != id {
		t.Errorf("durable publish: Nats-Msg-Id %q, want the event id %q", got, id)
	}
}
