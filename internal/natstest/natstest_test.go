package natstest_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/triggerbus/triggerbus/internal/natstest"
)

func TestRunServerRoundTrip(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	if !strings.HasPrefix(s.ClientURL(), "nats://127.0.0.1:") {
		t.Fatalf("ClientURL() = %q, want nats://127.0.0.1:<port>", s.ClientURL())
	}
	if s.JetStreamEnabled() {
		t.Fatalf("JetStreamEnabled() = true without WithJetStream")
	}
	nc := natstest.Connect(t, s)

	ch := make(chan *nats.Msg, 1)
	if _, err := nc.ChanSubscribe("trigger.POST_CREATE.SERVER", ch); err != nil {
		t.Fatalf("ChanSubscribe: %v", err)
	}
	if err := nc.Publish("trigger.POST_CREATE.SERVER", []byte("hello")); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	msg := natstest.ChanRecv(t, ch, 5*time.Second)
	if string(msg.Data) != "hello" {
		t.Fatalf("received %q, want %q", msg.Data, "hello")
	}
}

func TestRunServerWithOptions(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t, natstest.WithOptions(func(o *server.Options) {
		o.Username = "worker"
		o.Password = "s3cret"
	}))

	if nc, err := nats.Connect(s.ClientURL()); err == nil {
		nc.Close()
		t.Fatalf("Connect without credentials succeeded, want an authorization error")
	}
	nc := natstest.Connect(t, s, nats.UserInfo("worker", "s3cret"))
	if err := nc.Flush(); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}

func TestRunServerJetStream(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t, natstest.WithJetStream())
	if !s.JetStreamEnabled() {
		t.Fatalf("JetStreamEnabled() = false with WithJetStream")
	}
	js := jetStream(t, natstest.Connect(t, s))
	ctx := testContext(t)

	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "EVENTS", Subjects: []string{"trigger.>"}}); err != nil {
		t.Fatalf("CreateStream: %v", err)
	}
	ack, err := js.Publish(ctx, "trigger.POST_CREATE.SERVER", []byte("{}"))
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if ack.Stream != "EVENTS" || ack.Sequence != 1 {
		t.Fatalf("Publish ack = %+v, want stream EVENTS sequence 1", ack)
	}
}

// TestWaitSettled: WaitSettled returns once the one message of a work-queue
// stream has been fetched and acknowledged through its consumer.
func TestWaitSettled(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t, natstest.WithJetStream())
	js := jetStream(t, natstest.Connect(t, s))
	ctx := testContext(t)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "WORK", Subjects: []string{"work.>"}, Retention: jetstream.WorkQueuePolicy}); err != nil {
		t.Fatalf("CreateStream: %v", err)
	}
	cons, err := js.CreateConsumer(ctx, "WORK", jetstream.ConsumerConfig{Durable: "workers", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatalf("CreateConsumer: %v", err)
	}
	if _, err := js.Publish(ctx, "work.a", []byte("x")); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	batch, err := cons.Fetch(1)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	for m := range batch.Messages() {
		if err := m.DoubleAck(ctx); err != nil {
			t.Fatalf("DoubleAck: %v", err)
		}
	}
	natstest.WaitSettled(t, js, "WORK", "workers", 10*time.Second)
}

func TestRunCluster(t *testing.T) {
	t.Parallel()
	servers := natstest.RunCluster(t, 3)
	if len(servers) != 3 {
		t.Fatalf("RunCluster(t, 3) returned %d servers", len(servers))
	}

	// Interest registered on one node reaches a publisher on another.
	sub := natstest.Connect(t, servers[0])
	ch := make(chan *nats.Msg, 1)
	if _, err := sub.ChanSubscribe("trigger.>", ch); err != nil {
		t.Fatalf("ChanSubscribe: %v", err)
	}
	if err := sub.Flush(); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	pub := natstest.Connect(t, servers[2])
	natstest.CheckFor(t, 30*time.Second, 10*time.Millisecond, func() error {
		if err := pub.Publish("trigger.POST_DELETE.DISK", []byte("x")); err != nil {
			return err
		}
		select {
		case <-ch:
			return nil
		case <-time.After(50 * time.Millisecond):
			return errors.New("message not routed to the subscriber's server")
		}
	})
}

func TestRunClusterJetStream(t *testing.T) {
	t.Parallel()
	servers := natstest.RunCluster(t, 3, natstest.WithJetStream())
	names := map[string]bool{}
	for _, s := range servers {
		if s.StoreDir() == "" {
			t.Fatalf("server %s has no JetStream store dir", s.Name())
		}
		names[s.Name()] = true
	}
	if len(names) != 3 {
		t.Fatalf("server names %v are not unique", names)
	}

	nc, err := nats.Connect(natstest.ClusterURLs(servers), nats.ReconnectWait(50*time.Millisecond), nats.MaxReconnects(-1))
	if err != nil {
		t.Fatalf("Connect(%s): %v", natstest.ClusterURLs(servers), err)
	}
	t.Cleanup(nc.Close)
	js := jetStream(t, nc)
	ctx := testContext(t)

	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "EVENTS", Subjects: []string{"trigger.>"}, Replicas: 3})
	if err != nil {
		t.Fatalf("CreateStream R3: %v", err)
	}
	if _, err := js.Publish(ctx, "trigger.POST_CREATE.SERVER", []byte("1")); err != nil {
		t.Fatalf("Publish: %v", err)
	}

	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatalf("stream Info: %v", err)
	}
	if info.Cluster == nil || info.Cluster.Leader == "" {
		t.Fatalf("stream has no leader: %+v", info.Cluster)
	}
	oldLeader := info.Cluster.Leader
	for _, s := range servers {
		if s.Name() == oldLeader {
			s.Shutdown()
			s.WaitForShutdown()
		}
	}

	// A new stream leader is elected among the two remaining nodes and the
	// client fails over to one of them.
	natstest.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		ack, err := js.Publish(pctx, "trigger.POST_CREATE.SERVER", []byte("2"))
		if err != nil {
			return err
		}
		if ack.Sequence != 2 {
			return fmt.Errorf("ack sequence %d, want 2", ack.Sequence)
		}
		return nil
	})
	info, err = stream.Info(ctx)
	if err != nil {
		t.Fatalf("stream Info after failover: %v", err)
	}
	if info.Cluster.Leader == oldLeader || info.Cluster.Leader == "" {
		t.Fatalf("stream leader after failover = %q, want a new leader (was %q)", info.Cluster.Leader, oldLeader)
	}
}

func TestRestart(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t, natstest.WithJetStream())
	port := s.Addr().(*net.TCPAddr).Port
	storeDir := s.StoreDir()

	disconnected := make(chan struct{}, 1)
	reconnected := make(chan struct{}, 1)
	nc := natstest.Connect(t, s,
		nats.ReconnectWait(20*time.Millisecond),
		nats.MaxReconnects(-1),
		nats.DisconnectErrHandler(func(*nats.Conn, error) { notify(disconnected) }),
		nats.ReconnectHandler(func(*nats.Conn) { notify(reconnected) }),
	)
	js := jetStream(t, nc)
	ctx := testContext(t)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "EVENTS", Subjects: []string{"trigger.>"}}); err != nil {
		t.Fatalf("CreateStream: %v", err)
	}
	if _, err := js.Publish(ctx, "trigger.POST_CREATE.SERVER", []byte("before")); err != nil {
		t.Fatalf("Publish: %v", err)
	}

	s2 := natstest.Restart(t, s)
	natstest.ChanRecv(t, disconnected, 5*time.Second)
	if s.Running() {
		t.Fatalf("old server still running after Restart")
	}
	if got := s2.Addr().(*net.TCPAddr).Port; got != port {
		t.Fatalf("restarted server port = %d, want %d", got, port)
	}
	if got := s2.StoreDir(); got != storeDir {
		t.Fatalf("restarted server store dir = %q, want %q", got, storeDir)
	}
	natstest.ChanRecv(t, reconnected, 10*time.Second)

	stream, err := js.Stream(ctx, "EVENTS")
	if err != nil {
		t.Fatalf("Stream after restart: %v", err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatalf("stream Info after restart: %v", err)
	}
	if info.State.Msgs != 1 {
		t.Fatalf("stream has %d messages after restart, want 1", info.State.Msgs)
	}
	if _, err := js.Publish(ctx, "trigger.POST_CREATE.SERVER", []byte("after")); err != nil {
		t.Fatalf("Publish after restart: %v", err)
	}

	// A server can be restarted more than once.
	s3 := natstest.Restart(t, s2)
	if got := s3.Addr().(*net.TCPAddr).Port; got != port {
		t.Fatalf("second restart port = %d, want %d", got, port)
	}
}

func TestRestartClusterNode(t *testing.T) {
	t.Parallel()
	servers := natstest.RunCluster(t, 3)
	seedPort := servers[0].ClusterAddr().Port
	servers[0] = natstest.Restart(t, servers[0])
	if got := servers[0].ClusterAddr().Port; got != seedPort {
		t.Fatalf("restarted seed cluster port = %d, want %d", got, seedPort)
	}
	natstest.CheckFor(t, 10*time.Second, 25*time.Millisecond, func() error {
		for _, s := range servers {
			rz, err := s.Routez(nil)
			if err != nil {
				return err
			}
			peers := map[string]bool{}
			for _, r := range rz.Routes {
				peers[r.RemoteName] = true
			}
			if len(peers) != 2 {
				return fmt.Errorf("server %s has routes to %v, want 2 peers", s.Name(), peers)
			}
		}
		return nil
	})
}

func TestWithStoreDirAndPort(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	first := natstest.RunServer(t, natstest.WithStoreDir(dir))
	if !first.JetStreamEnabled() {
		t.Fatalf("WithStoreDir did not enable JetStream")
	}
	port := first.Addr().(*net.TCPAddr).Port
	ctx := testContext(t)
	if _, err := jetStream(t, natstest.Connect(t, first)).CreateStream(ctx, jetstream.StreamConfig{Name: "KEEP"}); err != nil {
		t.Fatalf("CreateStream: %v", err)
	}
	first.Shutdown()
	first.WaitForShutdown()

	second := natstest.RunServer(t, natstest.WithStoreDir(dir), natstest.WithPort(port))
	if got := second.Addr().(*net.TCPAddr).Port; got != port {
		t.Fatalf("WithPort(%d): server listens on %d", port, got)
	}
	if _, err := jetStream(t, natstest.Connect(t, second)).Stream(ctx, "KEEP"); err != nil {
		t.Fatalf("stream KEEP not found in the same store dir: %v", err)
	}
}

func TestRunServerLogging(t *testing.T) {
	t.Setenv("NATSTEST_LOG", "1")
	s := natstest.RunServer(t)
	nc := natstest.Connect(t, s)
	if err := nc.Flush(); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}

func TestCheckFor(t *testing.T) {
	t.Parallel()
	calls := 0
	natstest.CheckFor(t, 10*time.Second, time.Millisecond, func() error {
		calls++
		if calls < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if calls != 3 {
		t.Fatalf("CheckFor called f %d times, want 3", calls)
	}

	msg := failure(t, func(tb testing.TB) {
		natstest.CheckFor(tb, 20*time.Millisecond, time.Millisecond, func() error { return errors.New("still broken") })
	})
	if !strings.Contains(msg, "still broken") {
		t.Fatalf("CheckFor failure = %q, want it to contain the last error", msg)
	}
}

func TestChanRecv(t *testing.T) {
	t.Parallel()
	ch := make(chan int, 1)
	ch <- 42
	if got := natstest.ChanRecv(t, ch, time.Second); got != 42 {
		t.Fatalf("ChanRecv = %d, want 42", got)
	}

	msg := failure(t, func(tb testing.TB) {
		natstest.ChanRecv(tb, make(chan int), 10*time.Millisecond)
	})
	if !strings.Contains(msg, "nothing received") {
		t.Fatalf("ChanRecv failure = %q, want a timeout", msg)
	}
}

// fakeTB records the first Fatalf and ends the goroutine, as testing.T does.
type fakeTB struct {
	testing.TB
	msg string
}

func (*fakeTB) Helper() {}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// failure runs f with a fake testing.TB and returns the message it failed
// with; it fails t if f did not fail.
func failure(t *testing.T, f func(testing.TB)) string {
	t.Helper()
	tb := &fakeTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(tb)
	}()
	natstest.ChanRecv(t, done, 5*time.Second)
	if tb.msg == "" {
		t.Fatalf("helper did not fail")
	}
	return tb.msg
}

func notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func jetStream(t *testing.T, nc *nats.Conn) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream.New: %v", err)
	}
	return js
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}
