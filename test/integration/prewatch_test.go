package integration

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/internal/proctest"
	"github.com/triggerbus/triggerbus/pkg/client"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// requestSpy counts the PRE requests that reach the server for the
// subjects of a test, with a plain subscription of its own (it never
// answers).
type requestSpy struct {
	nc       *nats.Conn
	seen     atomic.Int64
	sentinel chan struct{}
}

// spyOn subscribes to every trigger subject on a connection of its own.
// Messages on trigger.SENTINEL are not counted: they mark the end of what
// a connection sent before them.
func spyOn(t *testing.T, s *server.Server) *requestSpy {
	t.Helper()
	sp := &requestSpy{nc: natstest.Connect(t, s), sentinel: make(chan struct{}, 1)}
	_, err := sp.nc.Subscribe("trigger.>", func(m *nats.Msg) {
		if m.Subject == "trigger.SENTINEL" {
			sp.sentinel <- struct{}{}
			return
		}
		sp.seen.Add(1)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := sp.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return sp
}

// sent returns how many trigger messages nc had sent, and the spy
// received, before this call: a sentinel published on nc after them
// arrives after them (NATS keeps the order of one publisher's messages).
func (sp *requestSpy) sent(t *testing.T, nc *nats.Conn) int64 {
	t.Helper()
	if err := nc.Publish("trigger.SENTINEL", nil); err != nil {
		t.Fatal(err)
	}
	natstest.ChanRecv(t, sp.sentinel, waitShort)
	return sp.seen.Load()
}

// watchedClient returns a client with its own connection, started watching
// the registry and waited for until its copy is current.
func watchedClient(t *testing.T, s *server.Server, opts client.Options) (*client.Client, *nats.Conn) {
	t.Helper()
	nc := natstest.Connect(t, s, nats.ReconnectWait(50*time.Millisecond), nats.MaxReconnects(-1))
	c, err := client.New(nc, opts)
	if err != nil {
		t.Fatalf("client.New: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	decide(t, context.Background(), c, "PRE_AUTH", "ANY", nil) // starts the watch
	natstest.CheckFor(t, waitShort, poll, func() error {
		if !c.RegistryWatched() {
			return errors.New("the registry watch has not delivered the registry yet")
		}
		return nil
	})
	return c, nc
}

// TestDecideSkipsUnregisteredSubjects: once its copy of the registry is
// current, Decide answers NO_TRIGGER for a subject no worker registered
// without sending the request, and sends the requests of registered
// subjects.
func TestDecideSkipsUnregisteredSubjects(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t, natstest.WithJetStream())
	var calls atomic.Int64
	startWorker(t, natstest.Connect(t, s), worker.Config{Registry: true},
		fn("deny_servers", "PRE_CREATE", []string{"SERVER"}, 0, deny(&calls, "NO", "no servers")),
		fn("check_modify", "PRE_MODIFY", []string{"ANY"}, 0, cont(&calls)))
	c, nc := watchedClient(t, s, client.Options{})
	spy := spyOn(t, s)
	ctx := context.Background()
	before := spy.sent(t, nc)

	for range 20 {
		d := decide(t, ctx, c, "PRE_DELETE", "DISK", nil)
		if !d.Allowed || d.Code != event.CodeNoTrigger || d.ID == "" {
			t.Fatalf("unregistered subject: %+v, want allowed NO_TRIGGER with an id", d)
		}
		if d = decide(t, ctx, c, "PRE_CREATE", "DISK", nil); d.Code != event.CodeNoTrigger {
			t.Fatalf("other option of a registered type: %+v, want NO_TRIGGER", d)
		}
	}
	if n := spy.sent(t, nc) - before; n != 0 {
		t.Fatalf("%d requests sent for unregistered subjects, want none", n)
	}

	// Registered subjects, by option and by ANY, are asked.
	if d := decide(t, ctx, c, "PRE_CREATE", "SERVER", nil); d.Allowed || d.Code != "NO" {
		t.Errorf("registered subject: %+v, want the function's refusal", d)
	}
	if d := decide(t, ctx, c, "PRE_MODIFY", "DISK", nil); !d.Allowed || d.Code == event.CodeNoTrigger || len(d.Functions) != 1 {
		t.Errorf("subject registered by ANY: %+v, want the function's decision", d)
	}
	if n := spy.sent(t, nc) - before; n != 2 {
		t.Errorf("%d requests sent, want the 2 of registered subjects", n)
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("functions ran %d times, want 2", n)
	}
}

// TestDecideWithoutRegistryWatch: with NoRegistryWatch every Decide sends
// its request, and an unregistered subject is still NO_TRIGGER.
func TestDecideWithoutRegistryWatch(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t, natstest.WithJetStream())
	startWorker(t, natstest.Connect(t, s), worker.Config{Registry: true},
		fn("deny_servers", "PRE_CREATE", []string{"SERVER"}, 0, deny(new(atomic.Int64), "NO", "no servers")))
	spy := spyOn(t, s)
	nc := natstest.Connect(t, s)
	c, err := client.New(nc, client.Options{NoRegistryWatch: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// The spy is a responder, so the request times out rather than finding
	// no responders: the spy saw it.
	for range 3 {
		tctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		decide(t, tctx, c, "PRE_DELETE", "DISK", nil)
		cancel()
	}
	if c.RegistryWatched() {
		t.Error("RegistryWatched with NoRegistryWatch")
	}
	if n := spy.sent(t, nc); n != 3 {
		t.Errorf("%d requests sent, want 3", n)
	}
}

// TestDecideSeesNewRegistrations: a worker that starts serving a subject
// after the client's copy was current is asked, once its registration
// reaches the copy; a worker writes its registration before it subscribes,
// so no request its function could answer is skipped for longer than that.
// When it stops serving the subject, Decide skips the subject again.
func TestDecideSeesNewRegistrations(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t, natstest.WithJetStream())
	startWorker(t, natstest.Connect(t, s), worker.Config{Registry: true},
		fn("deny_servers", "PRE_CREATE", []string{"SERVER"}, 0, deny(new(atomic.Int64), "NO", "no servers")))
	c, _ := watchedClient(t, s, client.Options{})
	ctx := context.Background()
	if d := decide(t, ctx, c, "PRE_DELETE", "DISK", nil); d.Code != event.CodeNoTrigger {
		t.Fatalf("before the registration: %+v, want NO_TRIGGER", d)
	}

	var calls atomic.Int64
	w2 := startWorker(t, natstest.Connect(t, s), worker.Config{Registry: true},
		fn("keep_disks", "PRE_DELETE", []string{"DISK"}, 0, deny(&calls, "KEEP", "disks stay")))
	natstest.CheckFor(t, waitShort, poll, func() error {
		if d := decide(t, ctx, c, "PRE_DELETE", "DISK", nil); d.Code != "KEEP" {
			return fmt.Errorf("decision %+v, want the new function's KEEP", d)
		}
		return nil
	})
	if !c.RegistryWatched() {
		t.Error("the copy is no longer current")
	}

	// Without the function the worker leaves the key, and the copy drops it.
	if err := w2.Replace(ctx); err != nil {
		t.Fatalf("Replace: %v", err)
	}
	natstest.CheckFor(t, waitShort, poll, func() error {
		if d := decide(t, ctx, c, "PRE_DELETE", "DISK", nil); d.Code != event.CodeNoTrigger {
			return fmt.Errorf("decision %+v, want NO_TRIGGER", d)
		}
		return nil
	})
}

// TestDecideWatchLost: while the connection has lost its server, the copy
// is not used (Decide sends the request, which cannot be answered: the
// timeout policy decides); once reconnected, a new watch makes it current
// again. Registered subjects with no worker answering are refused
// NO_WORKER throughout.
func TestDecideWatchLost(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t, natstest.WithJetStream())
	w := startWorker(t, natstest.Connect(t, s), worker.Config{Registry: true},
		fn("deny_servers", "PRE_CREATE", []string{"SERVER"}, 0, deny(new(atomic.Int64), "NO", "no servers")))
	c, nc := watchedClient(t, s, client.Options{})
	ctx := context.Background()

	// Registered, but no worker answers: refused, as without the copy.
	if err := w.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if d := decide(t, ctx, c, "PRE_CREATE", "SERVER", nil); d.Allowed || d.Code != event.CodeNoWorker {
		t.Fatalf("registered, no worker: %+v, want refused NO_WORKER", d)
	}

	s.Shutdown()
	s.WaitForShutdown()
	natstest.CheckFor(t, waitShort, poll, func() error {
		if nc.IsConnected() {
			return errors.New("the client has not seen the server go")
		}
		return nil
	})
	if c.RegistryWatched() {
		t.Fatal("RegistryWatched while disconnected")
	}
	tctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if d := decide(t, tctx, c, "PRE_DELETE", "DISK", nil); d.Allowed || d.Code != event.CodeTimeout {
		t.Fatalf("unregistered subject while disconnected: %+v, want the request sent and refused TIMEOUT", d)
	}

	s = natstest.Restart(t, s)
	natstest.CheckFor(t, waitLong, poll, func() error {
		if !c.RegistryWatched() {
			return errors.New("the registry watch has not come back")
		}
		return nil
	})
	if d := decide(t, ctx, c, "PRE_CREATE", "SERVER", nil); d.Allowed || d.Code != event.CodeNoWorker {
		t.Errorf("registered, no worker, after the reconnect: %+v, want refused NO_WORKER", d)
	}
	spy := spyOn(t, s)
	before := spy.sent(t, nc)
	if d := decide(t, ctx, c, "PRE_DELETE", "DISK", nil); d.Code != event.CodeNoTrigger {
		t.Errorf("after the reconnect: %+v, want NO_TRIGGER", d)
	}
	if n := spy.sent(t, nc) - before; n != 0 {
		t.Errorf("%d requests sent after the watch came back, want none", n)
	}
}

// TestDecideBucketMadeAgain: when the registry bucket is deleted under a
// watching client, its copy stops being trusted (Decide sends requests), and
// once a worker makes the bucket again the client reads the new bucket: the
// new worker's function is asked.
func TestDecideBucketMadeAgain(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t, natstest.WithJetStream())
	startWorker(t, natstest.Connect(t, s), worker.Config{Registry: true},
		fn("deny_servers", "PRE_CREATE", []string{"SERVER"}, 0, deny(new(atomic.Int64), "NO", "no servers")))
	c, nc := watchedClient(t, s, client.Options{})
	ctx := context.Background()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := js.DeleteKeyValue(ctx, "TRIGGER_REGISTRY"); err != nil {
		t.Fatalf("delete the bucket: %v", err)
	}
	natstest.CheckFor(t, waitLong, poll, func() error {
		if c.RegistryWatched() {
			return errors.New("the copy of the deleted bucket is still trusted")
		}
		return nil
	})

	startWorker(t, natstest.Connect(t, s), worker.Config{Registry: true},
		fn("keep_disks", "PRE_DELETE", []string{"DISK"}, 0, deny(new(atomic.Int64), "KEEP", "disks stay")))
	natstest.CheckFor(t, waitLong, poll, func() error {
		if !c.RegistryWatched() {
			return errors.New("the new bucket is not watched yet")
		}
		return nil
	})
	if d := decide(t, ctx, c, "PRE_DELETE", "DISK", nil); d.Code != "KEEP" {
		t.Errorf("the new worker's subject: %+v, want its KEEP", d)
	}
}

// TestRegistrationBeforeSubscription: a worker writes the registration of
// a PRE subject before it subscribes to it, so a function that is called
// always finds its key in the registry (the SDK never skips a subject a
// worker already serves because its key was not yet written).
func TestRegistrationBeforeSubscription(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t, natstest.WithJetStream())
	probe := natstest.Connect(t, s)
	js, err := jetstream.New(probe)
	if err != nil {
		t.Fatal(err)
	}
	// The bucket exists before the worker starts, as in a running fleet.
	kv, err := js.CreateOrUpdateKeyValue(context.Background(), jetstream.KeyValueConfig{Bucket: "TRIGGER_REGISTRY", History: 1})
	if err != nil {
		t.Fatal(err)
	}
	var missing atomic.Int64
	check := func(ctx context.Context, _ *event.Event) (handlers.Result, error) {
		if _, err := kv.Get(ctx, "PRE_DELETE.DISK"); err != nil {
			missing.Add(1)
		}
		return handlers.Result{}, nil
	}
	w := proctest.NewWorker(t, natstest.Connect(t, s), worker.Config{Registry: true},
		fn("check", "PRE_DELETE", []string{"DISK"}, 0, check))
	started := make(chan error, 1)
	go func() { started <- w.Start(context.Background()) }()
	// Ask until the worker answers, while it starts.
	answered := false
	for range 100000 {
		reply, err := probe.Request("trigger.PRE_DELETE.DISK", []byte(`{"id":"x","triggerType":"PRE_DELETE","triggerOption":"DISK"}`), waitShort)
		if errors.Is(err, nats.ErrNoResponders) {
			continue
		}
		if err != nil {
			t.Fatalf("request: %v", err)
		}
		decodeDecision(t, reply.Data)
		answered = true
		break
	}
	if err := natstest.ChanRecv(t, started, waitShort); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = w.Stop(context.Background()) })
	if !answered {
		t.Fatal("the worker never answered")
	}
	if n := missing.Load(); n != 0 {
		t.Errorf("the function ran %d times before its registration was written", n)
	}
}
