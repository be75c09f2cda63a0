package worker

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
)

// handleBenchEvent is a POST event as pkg/client encodes it.
const handleBenchEvent = `{"id":"01JDQ7Z6W3S6K4V0Q5H3YB3M8C","triggerType":"POST_CREATE","triggerOption":"SERVER",` +
	`"timeStamp":1764420000000,"beUUID":"b1c6e2d4",` +
	`"customer":{"resourceUUID":"c2d3e4f5","resourceName":"Acme","billingEntityUUID":"b1c6e2d4"},` +
	`"user":{"resourceUUID":"u9f8e7d6","email":"ann@acme.example"},` +
	`"input":{"resourceName":"web-1","cpu":4,"ram":8192}}`

// BenchmarkHandlePost is what a dispatcher does for one core POST event
// with one no-op Go function, without NATS around it: parse, count, match,
// decode, call (metrics, origin, timeout). It is the worker's own part of
// BenchmarkDispatchPost and of cmd/trigger-bench's POST core row.
func BenchmarkHandlePost(b *testing.B) {
	s := natstest.RunServer(b)
	w, err := New(natstest.Connect(b, s), Config{}, Function{Ref: "noop", TriggerType: "POST_CREATE", Options: []string{"SERVER"},
		Handler: handlers.Func(func(context.Context, *event.Event) (handlers.Result, error) { return handlers.Result{}, nil })})
	if err != nil {
		b.Fatal(err)
	}
	subject, err := w.scheme.Build("POST_CREATE", "SERVER")
	if err != nil {
		b.Fatal(err)
	}
	data := []byte(handleBenchEvent)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		// A core message's data is its own, as nats.go delivers it.
		w.handle(ctx, &nats.Msg{Subject: subject, Data: data})
	}
}
