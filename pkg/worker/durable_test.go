package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/pkg/client"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/subjects"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// Names of the JetStream objects of the default prefix and queue.
const (
	durableStream   = "TRIGGER_EVENTS"
	durableDLQ      = "TRIGGER_DLQ"
	durableConsumer = subjects.DefaultQueue
)

// durableTestConfig is a durable delivery with short waits for tests.
func durableTestConfig() *worker.DurableConfig {
	return &worker.DurableConfig{
		MaxDeliver: 3,
		Backoff:    []time.Duration{50 * time.Millisecond},
		AckWait:    2 * time.Second,
	}
}

// durableRig is a JetStream server with a worker's metrics and a durable
// publisher.
type durableRig struct {
	s       *server.Server
	nc      *nats.Conn // the worker's
	js      jetstream.JetStream
	client  *client.Client
	metrics *worker.Metrics
}

func newDurableRig(t *testing.T) *durableRig {
	t.Helper()
	s := natstest.RunServer(t, natstest.WithJetStream())
	pub := natstest.Connect(t, s)
	c, err := client.New(pub, client.Options{Durable: true})
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(pub)
	if err != nil {
		t.Fatal(err)
	}
	m, err := worker.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return &durableRig{s: s, nc: natstest.Connect(t, s), js: js, client: c, metrics: m}
}

// start runs a durable worker with dc and fns on the rig's connection.
func (r *durableRig) start(t *testing.T, dc *worker.DurableConfig, fns ...worker.Function) *worker.Worker {
	t.Helper()
	return startWorker(t, r.nc, worker.Config{Durable: dc, Metrics: r.metrics}, fns...)
}

func (r *durableRig) publish(t *testing.T, typ, option string, input string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id, err := r.client.Publish(ctx, typ, option, &event.Event{Input: json.RawMessage(input)})
	if err != nil {
		t.Fatalf("Publish(%s, %s): %v", typ, option, err)
	}
	return id
}

// waitDurableSettled waits until the consumer has nothing pending or unacked and
// the stream (interest retention) has let go of every event: from then on
// the server delivers nothing more.
func waitDurableSettled(t *testing.T, js jetstream.JetStream, timeout time.Duration) {
	t.Helper()
	natstest.WaitSettled(t, js, durableStream, durableConsumer, timeout)
}

// durableConsumerInfo returns the shared consumer's info.
func durableConsumerInfo(t *testing.T, js jetstream.JetStream) *jetstream.ConsumerInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := js.Consumer(ctx, durableStream, durableConsumer)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// durableCall is one run of a function as the function saw it.
type durableCall struct {
	id      string
	attempt int
	at      time.Time
}

// durableCalls records the runs of a function.
type durableCalls struct {
	mu   sync.Mutex
	list []durableCall
	ch   chan durableCall // buffered: tests read at most that many
}

func newDurableCalls() *durableCalls { return &durableCalls{ch: make(chan durableCall, 100)} }

// startCounting runs a durable worker with the test config and one function
// "count" for every option of typ, which records its calls and continues.
func (r *durableRig) startCounting(t *testing.T, typ string) *durableCalls {
	t.Helper()
	got := newDurableCalls()
	r.start(t, durableTestConfig(), fn("count", typ, []string{"ANY"}, 0,
		func(ctx context.Context, e *event.Event) (handlers.Result, error) {
			got.record(ctx, e)
			return handlers.Result{}, nil
		}))
	return got
}

func (c *durableCalls) record(ctx context.Context, ev *event.Event) {
	hc, _ := handlers.CallFrom(ctx)
	cl := durableCall{id: ev.ID, attempt: hc.Attempt, at: time.Now()}
	c.mu.Lock()
	c.list = append(c.list, cl)
	c.mu.Unlock()
	select {
	case c.ch <- cl:
	default:
	}
}

func (c *durableCalls) all() []durableCall {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]durableCall(nil), c.list...)
}

func (c *durableCalls) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.list)
}

func TestDurablePostHandledOnceAndAcked(t *testing.T) {
	r := newDurableRig(t)
	got := newDurableCalls()
	var ev atomic.Pointer[event.Event]
	r.start(t, durableTestConfig(), fn("on_create", "POST_CREATE", []string{"SERVER"}, 0,
		func(ctx context.Context, e *event.Event) (handlers.Result, error) {
			ev.Store(e)
			got.record(ctx, e)
			return handlers.Result{ExitState: handlers.Success}, nil
		}))
	id := r.publish(t, "POST_CREATE", "SERVER", `{"cpu":4}`)
	c := natstest.ChanRecv(t, got.ch, 5*time.Second)
	if c.id != id || c.attempt != 1 {
		t.Errorf("call = %+v, want event %s at attempt 1", c, id)
	}
	if e := ev.Load(); e.TriggerType != "POST_CREATE" || e.TriggerOption != "SERVER" || string(e.Input) != `{"cpu":4}` {
		t.Errorf("event = %+v", e)
	}
	waitDurableSettled(t, r.js, 10*time.Second)
	if n := got.count(); n != 1 {
		t.Errorf("function ran %d times, want 1", n)
	}
	if info := durableConsumerInfo(t, r.js); info.NumRedelivered != 0 {
		t.Errorf("consumer redelivered %d events, want 0", info.NumRedelivered)
	}
	if v := testutil.ToFloat64(r.metrics.Redeliveries.WithLabelValues("POST_CREATE")); v != 0 {
		t.Errorf("trigger_redeliveries_total = %v, want 0", v)
	}
}

// TestDurableBacklog publishes while no worker runs: the stream keeps the
// events for the durable consumer, and the next worker handles them all.
func TestDurableBacklog(t *testing.T) {
	const n = 1000
	r := newDurableRig(t)
	var handled sync.Map
	var count atomic.Int64
	h := fn("on_create", "POST_CREATE", []string{"ANY"}, 0, func(_ context.Context, e *event.Event) (handlers.Result, error) {
		if _, dup := handled.LoadOrStore(e.ID, true); !dup {
			count.Add(1)
		}
		return handlers.Result{}, nil
	})
	// A first worker creates the stream and the consumer, then stops.
	w := r.start(t, durableTestConfig(), h)
	if err := w.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	ids := make([]string, n)
	var wg sync.WaitGroup
	const publishers = 4
	for p := range publishers {
		wg.Go(func() {
			for i := p; i < n; i += publishers {
				ids[i] = r.publish(t, "POST_CREATE", "DISK", `{"i":`+strconv.Itoa(i)+`}`)
			}
		})
	}
	wg.Wait()
	ctx := context.Background()
	st, err := r.js.Stream(ctx, durableStream)
	if err != nil {
		t.Fatal(err)
	}
	si, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if si.State.Msgs != n || count.Load() != 0 {
		t.Fatalf("with no worker running: stream holds %d events, %d handled; want %d and 0", si.State.Msgs, count.Load(), n)
	}

	r.nc = natstest.Connect(t, r.s)
	r.start(t, durableTestConfig(), h)
	natstest.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		if c := count.Load(); c != n {
			return fmt.Errorf("%d of %d events handled", c, n)
		}
		return nil
	})
	for _, id := range ids {
		if _, ok := handled.Load(id); !ok {
			t.Errorf("event %s not handled", id)
		}
	}
	waitDurableSettled(t, r.js, 10*time.Second)
}

// TestDurableRetryWithBackoff: a function that fails twice then succeeds
// runs exactly three times, each retry after its backoff.
func TestDurableRetryWithBackoff(t *testing.T) {
	r := newDurableRig(t)
	backoff := []time.Duration{300 * time.Millisecond, 600 * time.Millisecond}
	got := newDurableCalls()
	r.start(t, &worker.DurableConfig{MaxDeliver: 5, Backoff: backoff, AckWait: 5 * time.Second},
		fn("flaky", "POST_DELETE", []string{"SERVER"}, 0, func(ctx context.Context, e *event.Event) (handlers.Result, error) {
			got.record(ctx, e)
			if got.count() <= 2 {
				return handlers.Result{}, errors.New("backend unavailable")
			}
			return handlers.Result{ExitState: handlers.Success}, nil
		}))
	id := r.publish(t, "POST_DELETE", "SERVER", `{}`)
	for range 3 {
		natstest.ChanRecv(t, got.ch, 10*time.Second)
	}
	waitDurableSettled(t, r.js, 10*time.Second)
	cs := got.all()
	if len(cs) != 3 {
		t.Fatalf("function ran %d times, want 3: %+v", len(cs), cs)
	}
	// Timers may fire a little early against our clock; 20ms is plenty.
	const tolerance = 20 * time.Millisecond
	for i, c := range cs {
		if c.id != id || c.attempt != i+1 {
			t.Errorf("run %d = %+v, want event %s attempt %d", i, c, id, i+1)
		}
		if i == 0 {
			continue
		}
		if gap := c.at.Sub(cs[i-1].at); gap < backoff[i-1]-tolerance {
			t.Errorf("run %d came %v after the one before, want at least the backoff %v", i+1, gap, backoff[i-1])
		}
	}
	if v := testutil.ToFloat64(r.metrics.Redeliveries.WithLabelValues("POST_DELETE")); v != 2 {
		t.Errorf("trigger_redeliveries_total{trigger_type=POST_DELETE} = %v, want 2", v)
	}
	if v := testutil.ToFloat64(r.metrics.DeadLetters.WithLabelValues("flaky")); v != 0 {
		t.Errorf("trigger_dead_letters_total{function=flaky} = %v, want 0", v)
	}
}

// TestDurableDeadLetter: a function that always fails runs MaxDeliver times,
// then the event goes to the dead-letter stream with the reason and is
// acked.
func TestDurableDeadLetter(t *testing.T) {
	r := newDurableRig(t)
	got := newDurableCalls()
	dc := durableTestConfig() // MaxDeliver 3
	r.start(t, dc, fn("always_fails", "POST_CREATE", []string{"SERVER"}, 0,
		func(ctx context.Context, e *event.Event) (handlers.Result, error) {
			got.record(ctx, e)
			// Changed in place: the dead letter still holds the event as
			// it came.
			copy(e.Input, `{"cpu":99}`)
			return handlers.Result{}, errors.New("quota service says no")
		}))
	before := time.Now()
	id := r.publish(t, "POST_CREATE", "SERVER", `{"cpu":64}`)

	ctx := context.Background()
	dlq, err := r.js.Stream(ctx, durableDLQ)
	if err != nil {
		t.Fatal(err)
	}
	var dl *jetstream.RawStreamMsg
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		m, err := dlq.GetMsg(ctx, 1)
		if err != nil {
			return err
		}
		dl = m
		return nil
	})
	waitDurableSettled(t, r.js, 10*time.Second)
	if n := got.count(); n != dc.MaxDeliver {
		t.Errorf("function ran %d times, want MaxDeliver = %d", n, dc.MaxDeliver)
	}
	for i, c := range got.all() {
		if c.id != id || c.attempt != i+1 {
			t.Errorf("run %d = %+v, want event %s attempt %d", i, c, id, i+1)
		}
	}
	if dl.Subject != "trigger.dlq.POST_CREATE.SERVER" {
		t.Errorf("dead letter subject = %q, want trigger.dlq.POST_CREATE.SERVER", dl.Subject)
	}
	wantHeaders := map[string]string{
		worker.HeaderFailedFunction: "always_fails",
		worker.HeaderAttempts:       "3",
		worker.HeaderSubject:        "trigger.POST_CREATE.SERVER",
	}
	for k, want := range wantHeaders {
		if got := dl.Header.Get(k); got != want {
			t.Errorf("dead letter header %s = %q, want %q", k, got, want)
		}
	}
	if e := dl.Header.Get(worker.HeaderError); !strings.Contains(e, "quota service says no") {
		t.Errorf("dead letter header %s = %q, want the function's error", worker.HeaderError, e)
	}
	at, err := strconv.ParseInt(dl.Header.Get(worker.HeaderFailedAt), 10, 64)
	if err != nil || at < before.UnixMilli() || at > time.Now().UnixMilli() {
		t.Errorf("dead letter header %s = %q, want Unix ms between the publish and now", worker.HeaderFailedAt, dl.Header.Get(worker.HeaderFailedAt))
	}
	var dead event.Event
	if err := json.Unmarshal(dl.Data, &dead); err != nil || dead.ID != id || string(dead.Input) != `{"cpu":64}` {
		t.Errorf("dead letter data = %s (%v), want the event %s", dl.Data, err, id)
	}
	if v := testutil.ToFloat64(r.metrics.DeadLetters.WithLabelValues("always_fails")); v != 1 {
		t.Errorf("trigger_dead_letters_total{function=always_fails} = %v, want 1", v)
	}
	si, err := dlq.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if si.State.Msgs != 1 {
		t.Errorf("dead-letter stream holds %d messages, want 1", si.State.Msgs)
	}
}

// TestDurableSkipsDoneFunctions: with two functions on an event and the
// second failing once, the redelivery runs only the second.
func TestDurableSkipsDoneFunctions(t *testing.T) {
	r := newDurableRig(t)
	first, second := newDurableCalls(), newDurableCalls()
	r.start(t, durableTestConfig(),
		fn("first", "POST_MODIFY", []string{"SERVER"}, 0, func(ctx context.Context, e *event.Event) (handlers.Result, error) {
			first.record(ctx, e)
			return handlers.Result{ExitState: handlers.Success}, nil
		}),
		fn("second", "POST_MODIFY", []string{"ANY"}, 1, func(ctx context.Context, e *event.Event) (handlers.Result, error) {
			second.record(ctx, e)
			if second.count() == 1 {
				return handlers.Result{}, errors.New("transient")
			}
			return handlers.Result{}, nil
		}))
	id := r.publish(t, "POST_MODIFY", "SERVER", `{}`)
	natstest.ChanRecv(t, second.ch, 5*time.Second)
	natstest.ChanRecv(t, second.ch, 5*time.Second)
	waitDurableSettled(t, r.js, 10*time.Second)
	if cs := first.all(); len(cs) != 1 || cs[0].id != id || cs[0].attempt != 1 {
		t.Errorf("first ran %+v, want once, at attempt 1", cs)
	}
	if cs := second.all(); len(cs) != 2 || cs[1].id != id || cs[1].attempt != 2 {
		t.Errorf("second ran %+v, want twice, the second time at attempt 2", cs)
	}
}

// TestDurableReplayKeepsItsOwnDoneRecords: a replay (Trigger-Replay, its
// own Nats-Msg-Id) of an event whose first function was recorded done by
// the original runs that function again when the replay is redelivered:
// the done-records of the original do not apply to it.
func TestDurableReplayKeepsItsOwnDoneRecords(t *testing.T) {
	r := newDurableRig(t)
	first, second := newDurableCalls(), newDurableCalls()
	// first: succeeds for the original, fails once on the replay, then
	// succeeds. second: fails once on each, then succeeds.
	r.start(t, durableTestConfig(),
		fn("first", "POST_MODIFY", []string{"SERVER"}, 0, func(ctx context.Context, e *event.Event) (handlers.Result, error) {
			first.record(ctx, e)
			if first.count() == 2 {
				return handlers.Result{}, errors.New("transient")
			}
			return handlers.Result{}, nil
		}),
		fn("second", "POST_MODIFY", []string{"ANY"}, 1, func(ctx context.Context, e *event.Event) (handlers.Result, error) {
			second.record(ctx, e)
			if n := second.count(); n == 1 || n == 3 {
				return handlers.Result{}, errors.New("transient")
			}
			return handlers.Result{}, nil
		}))
	id := r.publish(t, "POST_MODIFY", "SERVER", `{}`)
	natstest.ChanRecv(t, second.ch, 5*time.Second)
	natstest.ChanRecv(t, second.ch, 5*time.Second)
	waitDurableSettled(t, r.js, 10*time.Second)

	ev := event.Event{ID: id, TriggerType: "POST_MODIFY", TriggerOption: "SERVER", TimeStamp: time.Now().UnixMilli(), Input: json.RawMessage(`{}`)}
	data, err := ev.Encode()
	if err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg("trigger.POST_MODIFY.SERVER")
	m.Data = data
	m.Header.Set(subjects.HeaderMsgID, id+".replay.1.1")
	m.Header.Set(worker.HeaderReplay, id)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := r.js.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
	natstest.ChanRecv(t, second.ch, 5*time.Second)
	natstest.ChanRecv(t, second.ch, 5*time.Second)
	waitDurableSettled(t, r.js, 10*time.Second)
	if cs := first.all(); len(cs) != 3 || cs[2].attempt != 2 {
		t.Errorf("first ran %+v, want three times: the original, then the replay's two attempts", cs)
	}
	if cs := second.all(); len(cs) != 4 {
		t.Errorf("second ran %+v, want four times", cs)
	}
}

// slowFunction records each call in got, then works for twice ackWait.
func slowFunction(got *durableCalls, ackWait time.Duration) worker.Function {
	return worker.Function{Ref: "slow", TriggerType: "POST_CREATE", Options: []string{"ANY"}, Timeout: 30 * time.Second,
		Handler: handlers.Func(func(ctx context.Context, e *event.Event) (handlers.Result, error) {
			got.record(ctx, e)
			select {
			case <-time.After(2 * ackWait):
			case <-ctx.Done():
				return handlers.Result{}, ctx.Err()
			}
			return handlers.Result{}, nil
		})}
}

// TestDurableLongFunctionNotRedelivered: a function that runs longer than
// AckWait keeps its event (progress acks): it is delivered once.
func TestDurableLongFunctionNotRedelivered(t *testing.T) {
	r := newDurableRig(t)
	// AckWait is long enough that a progress signal (every fifth of it)
	// reaches the server in time on a loaded machine.
	const ackWait = 2 * time.Second
	got := newDurableCalls()
	r.start(t, &worker.DurableConfig{AckWait: ackWait, Backoff: []time.Duration{50 * time.Millisecond}}, slowFunction(got, ackWait))
	r.publish(t, "POST_CREATE", "SERVER", `{}`)
	natstest.ChanRecv(t, got.ch, 20*time.Second)
	waitDurableSettled(t, r.js, 30*time.Second)
	if cs := got.all(); len(cs) != 1 || cs[0].attempt != 1 {
		t.Errorf("function ran %+v, want once", cs)
	}
	if info := durableConsumerInfo(t, r.js); info.NumRedelivered != 0 {
		t.Errorf("consumer redelivered %d events, want 0", info.NumRedelivered)
	}
	if v := testutil.ToFloat64(r.metrics.Redeliveries.WithLabelValues("POST_CREATE")); v != 0 {
		t.Errorf("trigger_redeliveries_total = %v, want 0", v)
	}
}

// TestDurableLoopGuard: a durable event flagged with Trigger-Origin is
// dropped and acked.
func TestDurableLoopGuard(t *testing.T) {
	r := newDurableRig(t)
	got := newDurableCalls()
	r.start(t, durableTestConfig(), fn("count", "POST_DELETE", []string{"ANY"}, 0,
		func(ctx context.Context, e *event.Event) (handlers.Result, error) {
			got.record(ctx, e)
			return handlers.Result{}, nil
		}))
	ctx, cancel := context.WithTimeout(event.WithOrigin(context.Background(), "somefn/01JDQ7Z6W3S6K4V0Q5H3YB3M8C"), 10*time.Second)
	defer cancel()
	if _, err := r.client.Publish(ctx, "POST_DELETE", "SERVER", nil); err != nil {
		t.Fatal(err)
	}
	dropped := r.metrics.EventsDropped.WithLabelValues("POST_DELETE", worker.ReasonTriggerOriginated)
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if v := testutil.ToFloat64(dropped); v != 1 {
			return fmt.Errorf("dropped = %v", v)
		}
		return nil
	})
	waitDurableSettled(t, r.js, 10*time.Second)
	if n := got.count(); n != 0 {
		t.Errorf("function ran %d times for a flagged event, want 0", n)
	}
	if info := durableConsumerInfo(t, r.js); info.NumRedelivered != 0 {
		t.Errorf("consumer redelivered %d events, want 0", info.NumRedelivered)
	}
}

// TestDurableInvalidEvent: an event that is not JSON is dropped, counted
// and terminated: never redelivered.
func TestDurableInvalidEvent(t *testing.T) {
	r := newDurableRig(t)
	got := r.startCounting(t, "POST_CREATE")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := r.js.Publish(ctx, "trigger.POST_CREATE.SERVER", []byte(`{"cpu": 4,`)); err != nil {
		t.Fatal(err)
	}
	invalid := r.metrics.EventsDropped.WithLabelValues("POST_CREATE", worker.ReasonInvalid)
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if v := testutil.ToFloat64(invalid); v != 1 {
			return fmt.Errorf("dropped as invalid = %v", v)
		}
		return nil
	})
	// Terminated: nothing pending or unacked, so nothing can come again.
	waitDurableSettled(t, r.js, 10*time.Second)
	if info := durableConsumerInfo(t, r.js); info.NumRedelivered != 0 {
		t.Errorf("consumer redelivered %d events, want 0", info.NumRedelivered)
	}
	if v := testutil.ToFloat64(invalid); v != 1 {
		t.Errorf("dropped as invalid = %v, want 1", v)
	}
	if v := testutil.ToFloat64(r.metrics.EventsReceived.WithLabelValues("POST_CREATE", "SERVER")); v != 1 {
		t.Errorf("received = %v, want 1", v)
	}
	if n := got.count(); n != 0 {
		t.Errorf("function ran %d times, want 0", n)
	}
}

// TestDurableLongFunctionsShareProgress: several events whose functions run
// longer than AckWait at the same time are all kept by the one progress
// ticker: each is delivered once.
func TestDurableLongFunctionsShareProgress(t *testing.T) {
	r := newDurableRig(t)
	// AckWait is long enough that a progress signal (every fifth of it)
	// reaches the server in time on a loaded machine.
	const ackWait = 2 * time.Second
	const events = 3
	got := newDurableCalls()
	r.start(t, &worker.DurableConfig{AckWait: ackWait, Backoff: []time.Duration{50 * time.Millisecond}}, slowFunction(got, ackWait))
	for _, opt := range []string{"SERVER", "DISK", "NIC"}[:events] {
		r.publish(t, "POST_CREATE", opt, `{}`)
	}
	for range events {
		natstest.ChanRecv(t, got.ch, 20*time.Second)
	}
	waitDurableSettled(t, r.js, 30*time.Second)
	if cs := got.all(); len(cs) != events {
		t.Errorf("function ran %d times, want %d: %+v", len(cs), events, cs)
	}
	for _, c := range got.all() {
		if c.attempt != 1 {
			t.Errorf("call %+v at attempt %d, want 1", c, c.attempt)
		}
	}
	if info := durableConsumerInfo(t, r.js); info.NumRedelivered != 0 {
		t.Errorf("consumer redelivered %d events, want 0", info.NumRedelivered)
	}
}
