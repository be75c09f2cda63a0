package client_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/pkg/client"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/subjects"
)

// TestPublishBytes: Publish sends the event's Encode, whatever the size of
// the event before it (the buffer it encodes into is reused), on the
// subject of its type and option.
func TestPublishBytes(t *testing.T) {
	s := natstest.RunServer(t)
	sub := natstest.Connect(t, s)
	msgs := make(chan *nats.Msg, 64)
	if _, err := sub.ChanSubscribe("trigger.>", msgs); err != nil {
		t.Fatal(err)
	}
	if err := sub.Flush(); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(natstest.Connect(t, s), client.Options{NoRegistryWatch: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i, size := range []int{0, 10, 3000, 5, 70 << 10, 0, 600, 1} {
		typ, option := "POST_CREATE", "SERVER"
		if i%2 == 1 {
			typ, option = "POST_DELETE", "NIC"
		}
		in := json.RawMessage(`{"pad":"` + strings.Repeat("x", size) + `","q":"<&>"}`)
		ev := &event.Event{BEUUID: "be", Customer: json.RawMessage(`{ "a" : 1 }`), Input: in, TimeStamp: int64(i + 1)}
		id, err := c.Publish(ctx, typ, option, ev)
		if err != nil {
			t.Fatal(err)
		}
		var m *nats.Msg
		select {
		case m = <-msgs:
		case <-time.After(10 * time.Second):
			t.Fatal("no message")
		}
		want := *ev
		want.ID, want.TriggerType, want.TriggerOption = id, typ, option
		data, err := want.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if string(m.Data) != string(data) {
			t.Errorf("event %d: sent\n%.200s\nwant\n%.200s", i, m.Data, data)
		}
		if m.Subject != "trigger."+typ+"."+option {
			t.Errorf("event %d: subject %q", i, m.Subject)
		}
	}
}

// TestPublishRoutes: a type and option are checked on every call, the
// first and those after it (which reuse the subject built for the first).
func TestPublishRoutes(t *testing.T) {
	s := natstest.RunServer(t)
	c, err := client.New(natstest.Connect(t, s), client.Options{NoRegistryWatch: true, DecideTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for range 2 {
		if _, err := c.Publish(ctx, "POST_CREATE", "SERVER", nil); err != nil {
			t.Errorf("Publish POST_CREATE SERVER: %v", err)
		}
		if _, err := c.Publish(ctx, "PRE_CREATE", "SERVER", nil); err == nil || !strings.Contains(err.Error(), "use Decide") {
			t.Errorf("Publish of a PRE type: %v, want use Decide", err)
		}
		if _, err := c.Decide(ctx, "POST_CREATE", "SERVER", nil); err == nil || !strings.Contains(err.Error(), "use Publish") {
			t.Errorf("Decide of a POST type: %v, want use Publish", err)
		}
		if _, err := c.Publish(ctx, "POST_CREATE", "NO SUCH", nil); err == nil {
			t.Error("Publish with a bad option: no error")
		}
		if _, err := c.Publish(ctx, "POST_NOTHING", "SERVER", nil); err == nil {
			t.Error("Publish of an unknown type: no error")
		}
		if _, err := c.Publish(ctx, "POST_CREATE", subjects.Any, nil); err == nil {
			t.Error("Publish with the any option: no error")
		}
	}
}
