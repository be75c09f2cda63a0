package worker_test

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/pkg/client"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/subjects"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// The hot paths of the worker against raw NATS on the same in-process
// server, for `go test -bench . -benchmem ./pkg/worker` and for profiles
// (-cpuprofile). Compare BenchmarkDecidePre with BenchmarkRawRequest and
// BenchmarkDispatchPost with BenchmarkRawQueuePost: the difference is what
// triggerbus adds. cmd/trigger-bench measures the same across processes.

// benchInput is the input of a realistic event (about 300 bytes in all with
// the fields pkg/client adds).
var benchInput = json.RawMessage(`{"resourceName":"web-1","cpu":4,"ram":8192}`)

func benchEvent() *event.Event {
	return &event.Event{
		BEUUID:   "b1c6e2d4",
		Customer: json.RawMessage(`{"resourceUUID":"c2d3e4f5","resourceName":"Acme","billingEntityUUID":"b1c6e2d4"}`),
		User:     json.RawMessage(`{"resourceUUID":"u9f8e7d6","email":"ann@acme.example"}`),
		Input:    benchInput,
	}
}

// benchRawEvent is benchEvent as pkg/client encodes it.
const benchRawEvent = `{"id":"01JDQ7Z6W3S6K4V0Q5H3YB3M8C","triggerType":"PRE_CREATE","triggerOption":"SERVER",` +
	`"timeStamp":1764420000000,"beUUID":"b1c6e2d4",` +
	`"customer":{"resourceUUID":"c2d3e4f5","resourceName":"Acme","billingEntityUUID":"b1c6e2d4"},` +
	`"user":{"resourceUUID":"u9f8e7d6","email":"ann@acme.example"},` +
	`"input":{"resourceName":"web-1","cpu":4,"ram":8192}}`

// benchStartWorker runs a worker with fns on its own connection to a new
// server and returns a client connection to the same server.
func benchStartWorker(b *testing.B, fns ...worker.Function) *nats.Conn {
	b.Helper()
	s := natstest.RunServer(b)
	w, err := worker.New(natstest.Connect(b, s), worker.Config{}, fns...)
	if err != nil {
		b.Fatal(err)
	}
	if err := w.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = w.Stop(context.Background()) })
	return natstest.Connect(b, s)
}

// BenchmarkDecidePre is one PRE decision through pkg/client and a worker
// with one no-op Go function: request, dispatch, decision, reply.
func BenchmarkDecidePre(b *testing.B) {
	nc := benchStartWorker(b, worker.Function{Ref: "noop", TriggerType: "PRE_CREATE", Options: []string{"SERVER"},
		Handler: handlers.Func(func(context.Context, *event.Event) (handlers.Result, error) { return handlers.Result{}, nil })})
	c, err := client.New(nc, client.Options{})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	ev := benchEvent()
	b.ReportAllocs()
	for b.Loop() {
		d, err := c.Decide(ctx, "PRE_CREATE", "SERVER", ev)
		if err != nil {
			b.Fatal(err)
		}
		if !d.Allowed || len(d.Functions) != 1 {
			b.Fatalf("decision %+v, want allowed by one function", d)
		}
	}
}

// rawResponder starts a server and a queue subscriber on
// trigger.PRE_CREATE.SERVER that replies a fixed decision, and returns a
// connection to send requests on.
func rawResponder(b *testing.B) *nats.Conn {
	s := natstest.RunServer(b)
	reply := []byte(`{"id":"01JDQ7Z6W3S6K4V0Q5H3YB3M8C","allowed":true,"functions":[{"ref":"noop","result":"CONTINUE","ms":0.004}]}`)
	responder := natstest.Connect(b, s)
	if _, err := responder.QueueSubscribe("trigger.PRE_CREATE.SERVER", "raw", func(m *nats.Msg) { _ = m.Respond(reply) }); err != nil {
		b.Fatal(err)
	}
	if err := responder.Flush(); err != nil {
		b.Fatal(err)
	}
	return natstest.Connect(b, s)
}

// BenchmarkRawRequest is the raw NATS baseline of BenchmarkDecidePre: a
// request of the same event to a queue subscriber that replies a fixed
// decision.
func BenchmarkRawRequest(b *testing.B) {
	nc := rawResponder(b)
	data := []byte(benchRawEvent)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := nc.Request("trigger.PRE_CREATE.SERVER", data, 5*time.Second); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRawRequestDeadline is BenchmarkRawRequest with a
// Trigger-Deadline header, as publishers other than pkg/client may send
// (pkg/client puts the deadline in the event): what the header alone costs
// the requester, the server and the responder (nats.go parses the headers
// of every message that has any).
func BenchmarkRawRequestDeadline(b *testing.B) {
	nc := rawResponder(b)
	data := []byte(benchRawEvent)
	b.ReportAllocs()
	for b.Loop() {
		m := &nats.Msg{Subject: "trigger.PRE_CREATE.SERVER", Data: data, Header: nats.Header{}}
		m.Header.Set(subjects.HeaderDeadline, strconv.FormatInt(time.Now().Add(5*time.Second).UnixMilli(), 10))
		if _, err := nc.RequestMsg(m, 5*time.Second); err != nil {
			b.Fatal(err)
		}
	}
}

// postWindow is how many POST events the POST benchmarks keep in flight.
// The last window events of a run are handled after the timer stops, a
// negligible share of b.N.
const postWindow = 256

// waitHandled blocks until handled reaches want.
func waitHandled(b *testing.B, handled *atomic.Int64, signal <-chan struct{}, want int64) {
	for handled.Load() < want {
		select {
		case <-signal:
		case <-time.After(10 * time.Second):
			b.Fatalf("handled %d events of %d after 10s", handled.Load(), want)
		}
	}
}

// countingPost is a no-op POST_CREATE SERVER function that counts the events
// it runs in handled and wakes signal.
func countingPost(handled *atomic.Int64, signal chan<- struct{}) worker.Function {
	return worker.Function{Ref: "noop", TriggerType: "POST_CREATE", Options: []string{"SERVER"},
		Handler: handlers.Func(func(context.Context, *event.Event) (handlers.Result, error) {
			handled.Add(1)
			select {
			case signal <- struct{}{}:
			default:
			}
			return handlers.Result{}, nil
		})}
}

// BenchmarkDispatchPost is one POST event published with pkg/client (core)
// and run by a worker's no-op Go function, pipelined with postWindow events
// in flight.
func BenchmarkDispatchPost(b *testing.B) {
	var handled atomic.Int64
	signal := make(chan struct{}, 1) // a wake-up; one pending is enough
	nc := benchStartWorker(b, countingPost(&handled, signal))
	c, err := client.New(nc, client.Options{})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	ev := benchEvent()
	var sent int64
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Publish(ctx, "POST_CREATE", "SERVER", ev); err != nil {
			b.Fatal(err)
		}
		sent++
		if sent-handled.Load() >= postWindow {
			waitHandled(b, &handled, signal, sent-postWindow/2)
		}
	}
	waitHandled(b, &handled, signal, sent)
}

// BenchmarkRawQueuePost is the raw NATS baseline of BenchmarkDispatchPost:
// the same event published to a queue subscriber that counts it.
func BenchmarkRawQueuePost(b *testing.B) {
	s := natstest.RunServer(b)
	var handled atomic.Int64
	signal := make(chan struct{}, 1) // a wake-up; one pending is enough
	sub := natstest.Connect(b, s)
	if _, err := sub.QueueSubscribe("trigger.POST_CREATE.SERVER", "raw", func(*nats.Msg) {
		handled.Add(1)
		select {
		case signal <- struct{}{}:
		default:
		}
	}); err != nil {
		b.Fatal(err)
	}
	if err := sub.Flush(); err != nil {
		b.Fatal(err)
	}
	nc := natstest.Connect(b, s)
	data := []byte(benchRawEvent)
	var sent int64
	b.ReportAllocs()
	for b.Loop() {
		if err := nc.Publish("trigger.POST_CREATE.SERVER", data); err != nil {
			b.Fatal(err)
		}
		sent++
		if sent-handled.Load() >= postWindow {
			waitHandled(b, &handled, signal, sent-postWindow/2)
		}
	}
	waitHandled(b, &handled, signal, sent)
}

// BenchmarkDrainDurable is one durable POST event drained by a worker's
// no-op Go function and acked: b.N events are stored in the stream before
// the timer starts, then the worker takes them (its consumer follows the
// active revision, so it takes none before). Allocation counts are the
// worker's alone (and the server's, in the same process).
func BenchmarkDrainDurable(b *testing.B) {
	s := natstest.RunServer(b, natstest.WithJetStream())
	var handled atomic.Int64
	signal := make(chan struct{}, 1) // a wake-up; one pending is enough
	fn := countingPost(&handled, signal)
	ctx := context.Background()
	// A short AckWait: a pull the client gave up on (a busy machine
	// misses heartbeats) is delivered again within waitHandled's patience.
	w, err := worker.New(natstest.Connect(b, s), worker.Config{Durable: &worker.DurableConfig{FollowActive: true, AckWait: 2 * time.Second}})
	if err != nil {
		b.Fatal(err)
	}
	if err := w.Start(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = w.Stop(context.Background()) })
	if err := w.ReplaceRevision(ctx, 1, fn); err != nil {
		b.Fatal(err)
	}
	js, err := jetstream.New(natstest.Connect(b, s), jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		b.Fatal(err)
	}
	for i := range b.N {
		m := nats.NewMsg("trigger.POST_CREATE.SERVER")
		m.Data = []byte(strings.Replace(benchRawEvent, "PRE_CREATE", "POST_CREATE", 1))
		m.Header.Set("Nats-Msg-Id", strconv.Itoa(i))
		if _, err := js.PublishMsgAsync(m); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		b.Fatal("events not stored within a minute")
	}
	b.ReportAllocs()
	b.ResetTimer()
	if err := w.SetActive(ctx, 1); err != nil {
		b.Fatal(err)
	}
	waitHandled(b, &handled, signal, int64(b.N))
}
