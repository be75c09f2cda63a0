package main

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/pkg/client"
)

// TestPayloadLikeForLike checks that the raw side sends the very bytes
// pkg/client encodes for our side, at every size: a POST event, and a PRE
// request with the deadline client.Decide puts in it.
func TestPayloadLikeForLike(t *testing.T) {
	for _, size := range []int{0, 300, 400, 1000, 4096} {
		p := newPayload(size)
		sent := time.Now().UnixNano()
		raw := p.rawWithID("01JDQ7Z6W3S6K4V0Q5H3YB3M8C", "POST_CREATE", sent, 0)
		if size > 400 && len(raw) != size {
			t.Errorf("newPayload(%d): raw event is %d bytes", size, len(raw))
		}
		ev := p.event(sent)
		ev.ID, ev.TriggerType, ev.TriggerOption, ev.TimeStamp = "01JDQ7Z6W3S6K4V0Q5H3YB3M8C", "POST_CREATE", benchOption, sent/int64(time.Millisecond)
		ours, err := ev.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if string(raw) != string(ours) {
			t.Errorf("newPayload(%d):\nraw  %s\nours %s", size, raw, ours)
		}
		if ts, ok := stampOf(raw); !ok || ts != sent {
			t.Errorf("newPayload(%d): stampOf = %d, %v, want %d", size, ts, ok, sent)
		}
	}
}

// TestPayloadPreLikeForLike checks the raw side's PRE request against what
// client.Decide sends, read off the wire.
func TestPayloadPreLikeForLike(t *testing.T) {
	s := natstest.RunServer(t)
	nc := natstest.Connect(t, s)
	got := make(chan *nats.Msg, 1)
	sub, err := nc.Subscribe("trigger.PRE_CREATE."+benchOption, func(m *nats.Msg) {
		got <- m
		_ = m.Respond([]byte(rawDecision))
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	c, err := client.New(nc, client.Options{NoRegistryWatch: true})
	if err != nil {
		t.Fatal(err)
	}
	p := newPayload(300)
	sent := time.Now().UnixNano()
	if _, err := c.Decide(context.Background(), "PRE_CREATE", benchOption, p.event(sent)); err != nil {
		t.Fatal(err)
	}
	m := <-got
	if len(m.Header) != 0 {
		t.Errorf("Decide sent headers %v; the raw side sends none", m.Header)
	}
	var ev struct {
		ID       string `json:"id"`
		Deadline int64  `json:"deadline"`
	}
	if err := json.Unmarshal(m.Data, &ev); err != nil {
		t.Fatal(err)
	}
	// Decide's deadline is its clock's, read after sent; the raw side's
	// is counted from sent.
	if want := preDeadlineOf(sent); ev.Deadline < want || ev.Deadline > want+1000 {
		t.Fatalf("Decide's deadline %d, want about %d", ev.Deadline, want)
	}
	raw := p.rawWithID(ev.ID, "PRE_CREATE", sent, ev.Deadline)
	if string(raw) != string(m.Data) {
		t.Errorf("PRE request:\nraw  %s\nours %s", raw, m.Data)
	}
	if d := p.rawPre(sent); len(d) != len(m.Data) {
		t.Errorf("rawPre is %d bytes, Decide's request %d:\n%s\n%s", len(d), len(m.Data), d, m.Data)
	}
}
