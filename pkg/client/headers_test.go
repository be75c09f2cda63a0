package client_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/pkg/client"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/subjects"
)

// TestPublishMsgID: Nats-Msg-Id goes where the same event may be stored
// again (a durable publish, an id the caller chose); a core publish of an
// id the SDK made goes out as a plain message without headers, and so does
// a PRE request: its deadline is in its event.
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
	preRequest := func(name string) {
		t.Helper()
		m := next()
		ev, err := event.Decode(m.Data, subjects.Subject{}, event.Limits{})
		if m.Header != nil || err != nil || ev.Deadline == 0 {
			t.Errorf("%s: headers %v, event %s (%v); want no headers and the deadline in the event", name, m.Header, m.Data, err)
		}
	}
	preRequest("PRE request")
	if _, err := core.Decide(ctx, "PRE_CREATE", "SERVER", &event.Event{ID: "mine-2"}); err != nil {
		t.Fatal(err)
	}
	preRequest("PRE request of the caller's id")

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

// TestDecideID: a decision that comes without an id (a worker answers a
// request it could not read, or did not decode, with the request's
// Nats-Msg-Id, which the SDK does not send) gets the event's id; a
// decision's own id is kept.
func TestDecideID(t *testing.T) {
	s := natstest.RunServer(t)
	responder := natstest.Connect(t, s)
	replies := map[string]string{
		"SERVER": `{"allowed":false,"code":"EXPIRED","functions":[]}`,
		"DISK":   `{"id":"theirs","allowed":true,"functions":[]}`,
	}
	for option, reply := range replies {
		if _, err := responder.Subscribe("trigger.PRE_CREATE."+option, func(m *nats.Msg) { _ = m.Respond([]byte(reply)) }); err != nil {
			t.Fatal(err)
		}
	}
	if err := responder.Flush(); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(natstest.Connect(t, s), client.Options{NoRegistryWatch: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	d, err := c.Decide(ctx, "PRE_CREATE", "SERVER", &event.Event{ID: "mine-1"})
	if err != nil || d.ID != "mine-1" || d.Allowed || d.Code != event.CodeExpired {
		t.Errorf("decision without an id: %+v, %v; want EXPIRED with the event id mine-1", d, err)
	}
	d, err = c.Decide(ctx, "PRE_CREATE", "SERVER", nil)
	if err != nil || len(d.ID) != 26 || d.Allowed {
		t.Errorf("decision without an id, of an id the SDK made: %+v, %v; want the event's new id", d, err)
	}
	d, err = c.Decide(ctx, "PRE_CREATE", "DISK", &event.Event{ID: "mine-2"})
	if err != nil || d.ID != "theirs" || !d.Allowed {
		t.Errorf("decision with its own id: %+v, %v; want id theirs kept", d, err)
	}
}

// requestDeadlines subscribes nc to the PRE_CREATE.SERVER requests and
// passes on the deadline of each request's event, answering reply unless
// it is nil.
func requestDeadlines(t *testing.T, nc *nats.Conn, reply []byte) <-chan int64 {
	t.Helper()
	deadlines := make(chan int64, 8)
	if _, err := nc.Subscribe("trigger.PRE_CREATE.SERVER", func(m *nats.Msg) {
		var ev event.Event
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			t.Errorf("request %s: %v", m.Data, err)
		}
		deadlines <- ev.Deadline
		if reply != nil {
			_ = m.Respond(reply)
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return deadlines
}

// TestDecideTimeout: a request nobody answers gets the OnTimeout policy's
// TIMEOUT decision, whether ctx can be canceled or not (Decide waits on a
// context of its own only for the former), and the event's deadline is the
// DecideTimeout from the send.
func TestDecideTimeout(t *testing.T) {
	s := natstest.RunServer(t)
	deadlines := requestDeadlines(t, natstest.Connect(t, s), nil)
	const timeout = 100 * time.Millisecond
	canceled, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, tt := range []struct {
		name   string
		ctx    context.Context
		policy client.Policy
	}{
		{"background, refuse", context.Background(), client.Refuse},
		{"background, allow", context.Background(), client.Allow},
		{"cancelable, refuse", canceled, client.Refuse},
		{"cancelable, allow", canceled, client.Allow},
	} {
		c, err := client.New(natstest.Connect(t, s), client.Options{NoRegistryWatch: true, DecideTimeout: timeout, OnTimeout: tt.policy})
		if err != nil {
			t.Fatal(err)
		}
		sent := time.Now()
		d, err := c.Decide(tt.ctx, "PRE_CREATE", "SERVER", nil)
		if err != nil || d.Code != event.CodeTimeout || d.Allowed != (tt.policy == client.Allow) || d.ID == "" {
			t.Errorf("%s: %+v, %v; want TIMEOUT, allowed %v, with the event id", tt.name, d, err, tt.policy == client.Allow)
		}
		if dl := time.UnixMilli(<-deadlines); dl.Before(sent.Add(timeout).Add(-time.Millisecond)) || dl.After(time.Now().Add(timeout)) {
			t.Errorf("%s: the event's deadline %v, want DecideTimeout after the send", tt.name, dl)
		}
	}
}

// TestDecideEventDeadline: the request's deadline is the earlier of the
// event's own and the one of ctx (or DecideTimeout).
func TestDecideEventDeadline(t *testing.T) {
	s := natstest.RunServer(t)
	deadlines := requestDeadlines(t, natstest.Connect(t, s), []byte(`{"id":"x","allowed":true,"functions":[]}`))
	c, err := client.New(natstest.Connect(t, s), client.Options{NoRegistryWatch: true, DecideTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	soon := time.Now().Add(20 * time.Second).UnixMilli()
	late := time.Now().Add(time.Hour).UnixMilli()
	ctx, cancel := context.WithDeadline(context.Background(), time.UnixMilli(soon+1000))
	defer cancel()
	for _, tt := range []struct {
		name string
		ctx  context.Context
		ev   *event.Event
		want func(int64) bool
	}{
		{"the event's, earlier than DecideTimeout", context.Background(), &event.Event{Deadline: soon}, func(d int64) bool { return d == soon }},
		{"DecideTimeout, earlier than the event's", context.Background(), &event.Event{Deadline: late}, func(d int64) bool { return d < late && d > soon }},
		{"the event's, earlier than ctx's", ctx, &event.Event{Deadline: soon}, func(d int64) bool { return d == soon }},
		{"ctx's, earlier than the event's", ctx, &event.Event{Deadline: late}, func(d int64) bool { return d == soon+1000 }},
	} {
		if _, err := c.Decide(tt.ctx, "PRE_CREATE", "SERVER", tt.ev); err != nil {
			t.Fatal(err)
		}
		if got := <-deadlines; !tt.want(got) {
			t.Errorf("%s: deadline %d", tt.name, got)
		}
	}
}

// TestDecideRequestsShareNothing: Decide builds its requests in messages
// it uses again, and a request carries nothing of the one before it: not a
// Trigger-Origin (answered by the SDK itself), not the CloudEvents headers
// of another client, not a larger event's bytes.
func TestDecideRequestsShareNothing(t *testing.T) {
	s := natstest.RunServer(t)
	responder := natstest.Connect(t, s)
	seen := make(chan *nats.Msg, 64)
	if _, err := responder.Subscribe("trigger.PRE_CREATE.SERVER", func(m *nats.Msg) {
		seen <- m
		_ = m.Respond([]byte(`{"id":"x","allowed":true,"functions":[]}`))
	}); err != nil {
		t.Fatal(err)
	}
	if err := responder.Flush(); err != nil {
		t.Fatal(err)
	}
	nc := natstest.Connect(t, s)
	plain, err := client.New(nc, client.Options{NoRegistryWatch: true})
	if err != nil {
		t.Fatal(err)
	}
	ce, err := client.New(nc, client.Options{NoRegistryWatch: true, CloudEvents: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	big := &event.Event{Input: json.RawMessage(`{"pad":"` + strings.Repeat("p", 4000) + `"}`)}
	for i := range 20 {
		// From a function's context: answered at once, sends nothing.
		d, err := plain.Decide(event.WithOrigin(ctx, "fn/01JDQ7Z6W3S6K4V0Q5H3YB3M8C"), "PRE_CREATE", "SERVER", nil)
		if err != nil || d.Code != event.CodeTriggerOriginated {
			t.Fatalf("decide from a function: %+v, %v", d, err)
		}
		if _, err := ce.Decide(ctx, "PRE_CREATE", "SERVER", big); err != nil {
			t.Fatal(err)
		}
		id := fmt.Sprintf("small-%d", i)
		if _, err := plain.Decide(ctx, "PRE_CREATE", "SERVER", &event.Event{ID: id}); err != nil {
			t.Fatal(err)
		}
		next := func() *nats.Msg {
			t.Helper()
			select {
			case m := <-seen:
				return m
			case <-time.After(10 * time.Second):
				t.Fatalf("request %d: not sent", i)
				return nil
			}
		}
		next() // the CloudEvent
		m := next()
		if len(m.Header) != 0 {
			t.Fatalf("request %d headers %v, want none", i, m.Header)
		}
		var e event.Event
		err = json.Unmarshal(m.Data, &e)
		if err != nil || e.ID != id || e.Deadline == 0 || len(m.Data) > 512 {
			t.Fatalf("request %d: %d bytes, event %+v, %v; want the small event %s alone", i, len(m.Data), e, err, id)
		}
	}
}
