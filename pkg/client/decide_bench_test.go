package client_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/pkg/client"
	"github.com/triggerbus/triggerbus/pkg/event"
)

// benchDecision is the fixed reply of the responders of the Decide
// benchmarks: one function allowed.
const benchDecision = `{"id":"01JDQ7Z6W3S6K4V0Q5H3YB3M8C","allowed":true,"functions":[{"ref":"noop","result":"CONTINUE","ms":0.004}]}`

// decideBench starts a server and a queue subscriber on PRE_CREATE.SERVER
// that answers benchDecision, and returns a connection to send on.
func decideBench(b *testing.B) *nats.Conn {
	s := natstest.RunServer(b)
	responder := natstest.Connect(b, s)
	reply := []byte(benchDecision)
	if _, err := responder.QueueSubscribe("trigger.PRE_CREATE.SERVER", "q", func(m *nats.Msg) { _ = m.Respond(reply) }); err != nil {
		b.Fatal(err)
	}
	if err := responder.Flush(); err != nil {
		b.Fatal(err)
	}
	return natstest.Connect(b, s)
}

// benchInput is the input of the benchmarks' event.
const benchInput = `{"resourceName":"web-1","cpu":4,"ram":8192,"sentNs":1764950000000000000}`

// benchEvent is the event the Decide benchmarks give the SDK, which fills
// in its id, type, option and time stamp.
func benchEvent(in json.RawMessage) *event.Event {
	return &event.Event{BEUUID: "b1c6e2d4", Customer: json.RawMessage(`{"resourceUUID":"c2d3e4f5","resourceName":"Acme"}`),
		User: json.RawMessage(`{"resourceUUID":"u9f8e7d6","email":"ann@acme.example"}`), Input: in}
}

// benchRequest is the whole event the raw baselines send, encoded once.
func benchRequest(b *testing.B) []byte {
	ev := benchEvent(json.RawMessage(benchInput))
	ev.ID, ev.TriggerType, ev.TriggerOption, ev.TimeStamp = event.NewID(), "PRE_CREATE", "SERVER", 1764950000000
	data, err := ev.Encode()
	if err != nil {
		b.Fatal(err)
	}
	return data
}

// BenchmarkDecide is the SDK's side of a PRE request: client.Decide to a
// responder that answers a fixed decision at once, 16 requesters per CPU.
func BenchmarkDecide(b *testing.B) {
	nc := decideBench(b)
	c, err := client.New(nc, client.Options{NoRegistryWatch: true})
	if err != nil {
		b.Fatal(err)
	}
	in := json.RawMessage(benchInput)
	b.ReportAllocs()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			d, err := c.Decide(ctx, "PRE_CREATE", "SERVER", benchEvent(in))
			if err != nil || !d.Allowed {
				b.Errorf("decision %+v, %v", d, err)
				return
			}
		}
	})
}

// BenchmarkRequestRaw is the raw NATS baseline of BenchmarkDecide: a
// request of the same event, encoded once, with nc.Request.
func BenchmarkRequestRaw(b *testing.B) {
	nc := decideBench(b)
	data := benchRequest(b)
	b.ReportAllocs()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := nc.Request("trigger.PRE_CREATE.SERVER", data, 5*time.Second); err != nil {
				b.Errorf("request: %v", err)
				return
			}
		}
	})
}

// BenchmarkDecideSeq is BenchmarkDecide with one requester, one request
// after the other: the round trip a sequential caller waits for.
func BenchmarkDecideSeq(b *testing.B) {
	nc := decideBench(b)
	c, err := client.New(nc, client.Options{NoRegistryWatch: true})
	if err != nil {
		b.Fatal(err)
	}
	in := json.RawMessage(benchInput)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		d, err := c.Decide(ctx, "PRE_CREATE", "SERVER", benchEvent(in))
		if err != nil || !d.Allowed {
			b.Fatalf("decision %+v, %v", d, err)
		}
	}
}

// BenchmarkRequestRawSeq is the raw NATS baseline of BenchmarkDecideSeq:
// nc.Request, one after the other.
func BenchmarkRequestRawSeq(b *testing.B) {
	nc := decideBench(b)
	data := benchRequest(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := nc.Request("trigger.PRE_CREATE.SERVER", data, 5*time.Second); err != nil {
			b.Fatalf("request: %v", err)
		}
	}
}
