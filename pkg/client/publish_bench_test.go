package client_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/pkg/client"
	"github.com/triggerbus/triggerbus/pkg/event"
)

func BenchmarkPublishCore(b *testing.B) {
	s := natstest.RunServer(b)
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	c, err := client.New(nc, client.Options{})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	in := json.RawMessage(`{"resourceName":"web-1","cpu":4,"ram":8192,"sentNs":1764950000000000000}`)
	b.ReportAllocs()
	for b.Loop() {
		ev := &event.Event{BEUUID: "b1c6e2d4", Customer: json.RawMessage(`{"resourceUUID":"c2d3e4f5","resourceName":"Acme"}`), User: json.RawMessage(`{"resourceUUID":"u9f8e7d6","email":"ann@acme.example"}`), Input: in}
		if _, err := c.Publish(ctx, "POST_CREATE", "SERVER", ev); err != nil {
			b.Fatal(err)
		}
	}
}
