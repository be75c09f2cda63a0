package worker_test

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/subjects"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// orderProbe is a durable function that records the events it runs (their
// input, a number) in the order it starts them, and the most calls it saw
// at once. Once slow is set, each call waits until another call runs beside
// it, or a while.
type orderProbe struct {
	slow    atomic.Bool
	running atomic.Int32
	most    atomic.Int32
	mu      sync.Mutex
	order   []int
	other   chan struct{} // closed when two calls run at once (since the last reset)
	closed  bool
}

func newOrderProbe() *orderProbe { return &orderProbe{other: make(chan struct{})} }

func (p *orderProbe) handle(_ context.Context, ev *event.Event) (handlers.Result, error) {
	n := p.running.Add(1)
	defer p.running.Add(-1)
	for {
		m := p.most.Load()
		if n <= m || p.most.CompareAndSwap(m, n) {
			break
		}
	}
	i, _ := strconv.Atoi(string(ev.Input))
	p.mu.Lock()
	p.order = append(p.order, i)
	if n >= 2 && !p.closed {
		close(p.other)
		p.closed = true
	}
	other := p.other
	p.mu.Unlock()
	if !p.slow.Load() {
		// Long enough for dispatchers to overlap, well under the tests'
		// inline bound.
		time.Sleep(time.Millisecond)
		return handlers.Result{}, nil
	}
	// Run inline, nothing else can start meanwhile: the wait ends after a
	// while, and the call counts as slow.
	select {
	case <-other:
	case <-time.After(300 * time.Millisecond):
	}
	return handlers.Result{}, nil
}

// reset forgets the calls so far.
func (p *orderProbe) reset() {
	p.mu.Lock()
	p.order = nil
	p.other, p.closed = make(chan struct{}), false
	p.mu.Unlock()
	p.most.Store(0)
}

func (p *orderProbe) calls() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]int(nil), p.order...)
}

// startProbe runs a durable worker with one POST_CREATE function p whose
// timeout is well under the test AckWait.
func startProbe(t *testing.T, r *durableRig, p *orderProbe) {
	t.Helper()
	f := fn("probe", "POST_CREATE", []string{"ANY"}, 0, p.handle)
	f.Timeout = 450 * time.Millisecond // above a slow call, at most AckWait/4
	r.start(t, durableTestConfig(), f)
}

// publishNumbered publishes the events from..to-1, one after another, each
// with its number as input: the stream holds them in that order.
func publishNumbered(t *testing.T, r *durableRig, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		r.publish(t, "POST_CREATE", "SERVER", strconv.Itoa(i))
	}
}

// publishBurst publishes the events from..to-1 as publishNumbered does,
// but without waiting for the stream's acks in between (core publishes on
// one connection, which the stream stores in order), so that they reach
// the worker about at once.
func publishBurst(t *testing.T, r *durableRig, from, to int) {
	t.Helper()
	nc := natstest.Connect(t, r.s)
	last := streamLastSeq(t, r)
	for i := from; i < to; i++ {
		if err := nc.Publish(subjects.DefaultPrefix+".POST_CREATE.SERVER", []byte(`{"input":`+strconv.Itoa(i)+`}`)); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	// The server takes core publishes into the stream after the flush's
	// answer: wait until it holds them, so that a wait for the consumer to
	// settle does not see the stream before they are in it.
	want := last + uint64(to-from)
	for deadline := time.Now().Add(10 * time.Second); streamLastSeq(t, r) < want; {
		if time.Now().After(deadline) {
			t.Fatalf("the event stream did not take events %d to %d within 10s", from, to-1)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// streamLastSeq returns the sequence of the event stream's last message.
func streamLastSeq(t *testing.T, r *durableRig) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := r.js.Stream(ctx, durableStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.LastSeq
}

// warmProbe publishes events enough for the probe to be known fast, and
// waits until they are handled.
func warmProbe(t *testing.T, r *durableRig, p *orderProbe) {
	t.Helper()
	publishNumbered(t, r, 0, 20)
	waitDurableSettled(t, r.js, 10*time.Second)
	p.reset()
}

// checkInOrder publishes the events from..to-1 in a burst, waits until
// they are handled and checks that the calls were theirs, in stream order,
// one at a time.
func checkInOrder(t *testing.T, r *durableRig, p *orderProbe, from, to int) {
	t.Helper()
	publishBurst(t, r, from, to)
	waitDurableSettled(t, r.js, 10*time.Second)
	got := p.calls()
	if len(got) != to-from {
		t.Fatalf("%d calls, want %d", len(got), to-from)
	}
	for i, n := range got {
		if n != from+i {
			t.Fatalf("call %d ran event %d, want %d (calls %v)", i, n, from+i, got)
		}
	}
	if m := p.most.Load(); m != 1 {
		t.Errorf("%d calls ran at once, want 1", m)
	}
}

// TestDurableFastFunctionRunsInOrder: once a function is known to be fast,
// the consumer runs its durable events itself, in stream order, one at a
// time.
func TestDurableFastFunctionRunsInOrder(t *testing.T) {
	worker.SetInlineBound(t, 50*time.Millisecond) // far above a call of the probe, even on a busy machine
	r := newDurableRig(t)
	p := newOrderProbe()
	startProbe(t, r, p)
	warmProbe(t, r, p)
	checkInOrder(t, r, p, 100, 200)
}

// TestDurableSlowFunctionRunsConcurrently: the events of a slow function
// go to the dispatchers, which run several at once.
func TestDurableSlowFunctionRunsConcurrently(t *testing.T) {
	r := newDurableRig(t)
	p := newOrderProbe()
	p.slow.Store(true)
	startProbe(t, r, p)
	publishBurst(t, r, 0, 12) // more than a function needs to be known
	waitDurableSettled(t, r.js, 20*time.Second)
	if m := p.most.Load(); m < 2 {
		t.Errorf("at most %d calls ran at once, want 2 or more", m)
	}
	if n := len(p.calls()); n != 12 {
		t.Errorf("%d calls, want 12", n)
	}
}

// TestDurableFunctionTurnedSlowLeavesInline: the first slow call of a
// function that ran inline sends its next events to the dispatchers, which
// run them at once.
func TestDurableFunctionTurnedSlowLeavesInline(t *testing.T) {
	worker.SetInlineBound(t, 50*time.Millisecond) // the slow calls take 300ms or run beside another
	r := newDurableRig(t)
	p := newOrderProbe()
	startProbe(t, r, p)
	warmProbe(t, r, p)
	checkInOrder(t, r, p, 100, 150)

	p.reset()
	p.slow.Store(true)
	publishBurst(t, r, 200, 206)
	waitDurableSettled(t, r.js, 20*time.Second)
	if m := p.most.Load(); m < 2 {
		t.Errorf("at most %d calls ran at once after the function turned slow, want 2 or more", m)
	}
	if n := len(p.calls()); n != 6 {
		t.Errorf("%d calls, want 6", n)
	}
}

// ioProbe is an orderProbe whose handler says it waits on I/O, as the
// webhook and exec kinds do.
type ioProbe struct{ *orderProbe }

func (p ioProbe) Handle(ctx context.Context, ev *event.Event) (handlers.Result, error) {
	return p.handle(ctx, ev)
}

func (ioProbe) WaitsOnIO() bool { return true }

// TestDurableIOFunctionNeverInline: the events of a function that waits on
// I/O go to the dispatchers however fast its calls were.
func TestDurableIOFunctionNeverInline(t *testing.T) {
	worker.SetInlineBound(t, time.Second) // above every call below, the slow ones too
	r := newDurableRig(t)
	p := newOrderProbe()
	f := worker.Function{Ref: "probe", TriggerType: "POST_CREATE", Options: []string{"ANY"},
		Timeout: 450 * time.Millisecond, Handler: ioProbe{p}}
	r.start(t, durableTestConfig(), f)
	warmProbe(t, r, p)
	// Each call now waits for another one beside it: on the consumer's
	// goroutine none would come.
	p.slow.Store(true)
	publishBurst(t, r, 100, 106)
	waitDurableSettled(t, r.js, 20*time.Second)
	if m := p.most.Load(); m < 2 {
		t.Errorf("at most %d calls ran at once, want 2 or more", m)
	}
}
