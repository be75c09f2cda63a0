package worker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/subjects"
)

// laneRig is a started worker with a PRE lane: PRE_CREATE.SERVER is fast,
// PRE_CREATE.DISK blocks until release is closed.
type laneRig struct {
	w       *Worker
	caller  *nats.Conn
	started atomic.Int32 // DISK requests begun
	release chan struct{}
	once    sync.Once
}

// releaseAll lets every DISK function return.
func (r *laneRig) releaseAll() { r.once.Do(func() { close(r.release) }) }

func newLaneRig(t *testing.T, maxInFlight int) *laneRig {
	t.Helper()
	s := natstest.RunServer(t)
	r := &laneRig{caller: natstest.Connect(t, s), release: make(chan struct{})}
	fast := handlers.Func(func(context.Context, *event.Event) (handlers.Result, error) { return handlers.Result{}, nil })
	slow := handlers.Func(func(ctx context.Context, _ *event.Event) (handlers.Result, error) {
		r.started.Add(1)
		select {
		case <-r.release:
		case <-ctx.Done():
		}
		return handlers.Result{}, nil
	})
	w, err := New(natstest.Connect(t, s), Config{MaxInFlight: maxInFlight},
		Function{Ref: "fast", TriggerType: "PRE_CREATE", Options: []string{"SERVER"}, Handler: fast},
		Function{Ref: "slow", TriggerType: "PRE_CREATE", Options: []string{"DISK"}, Timeout: time.Minute, Handler: slow})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.w = w
	t.Cleanup(func() {
		r.releaseAll()
		_ = w.Stop(context.Background())
	})
	return r
}

// ask sends a PRE request on option, with a Trigger-Deadline a minute
// ahead, and returns its decision.
func (r *laneRig) ask(option string, i int) (*event.Decision, error) {
	return r.askWith(option, i, true)
}

// askWith is ask, without a Trigger-Deadline unless deadline.
func (r *laneRig) askWith(option string, i int, deadline bool) (*event.Decision, error) {
	m := nats.NewMsg("trigger.PRE_CREATE." + option)
	m.Data = []byte(`{"id":"` + option + "-" + strconv.Itoa(i) + `"}`)
	if deadline {
		m.Header.Set(subjects.HeaderDeadline, strconv.FormatInt(time.Now().Add(time.Minute).UnixMilli(), 10))
	}
	reply, err := r.caller.RequestMsg(m, 30*time.Second)
	if err != nil {
		return nil, err
	}
	return event.DecodeDecision(reply.Data)
}

// askInEvent is ask with the deadline in the event, as pkg/client sends it.
func (r *laneRig) askInEvent(option string, i int) (*event.Decision, error) {
	m := nats.NewMsg("trigger.PRE_CREATE." + option)
	m.Data = []byte(`{"id":"` + option + "-" + strconv.Itoa(i) + `","deadline":` + strconv.FormatInt(time.Now().Add(time.Minute).UnixMilli(), 10) + `}`)
	reply, err := r.caller.RequestMsg(m, 30*time.Second)
	if err != nil {
		return nil, err
	}
	return event.DecodeDecision(reply.Data)
}

// slowAsked sends n DISK requests in the background and waits until all
// n functions run; their decisions come on the channel returned.
func (r *laneRig) slowAsked(t *testing.T, n int) <-chan error {
	return r.slowAskedWith(t, n, true)
}

// slowAskedWith is slowAsked, without a Trigger-Deadline unless deadline.
func (r *laneRig) slowAskedWith(t *testing.T, n int, deadline bool) <-chan error {
	t.Helper()
	before := r.started.Load()
	errs := make(chan error, n)
	for i := range n {
		go func() {
			d, err := r.askWith("DISK", i, deadline)
			if err == nil && (!d.Allowed || len(d.Functions) != 1) {
				err = fmt.Errorf("DISK decision %+v, want allowed by slow", d)
			}
			errs <- err
		}()
	}
	natstest.CheckFor(t, 20*time.Second, time.Millisecond, func() error {
		if got := r.started.Load() - before; got != int32(n) {
			return fmt.Errorf("%d slow functions running, want %d", got, n)
		}
		return nil
	})
	return errs
}

// TestPreLaneHelp: while the lane (or every dispatcher) is held by a PRE
// function that does not return, other PRE requests are still answered,
// by the dispatchers its monitor wakes; also after the monitor has stopped
// ticking, the worker having been idle; also when the request holding the
// lane has no Trigger-Deadline, so no watchdog; and many such functions
// run at once, as without the lane. The worker runs no lane when
// MaxInFlight is 1.
func TestPreLaneHelp(t *testing.T) {
	r := newLaneRig(t, 40)
	if r.w.lane == nil {
		t.Fatal("no PRE lane with MaxInFlight 40")
	}
	fastWith := func(round string, deadline bool) {
		t.Helper()
		for i := range 20 {
			d, err := r.askWith("SERVER", i, deadline)
			if err != nil || !d.Allowed || d.ID != "SERVER-"+strconv.Itoa(i) {
				t.Fatalf("%s: fast request %d: %+v, %v; want allowed", round, i, d, err)
			}
		}
	}
	fast := func(round string) {
		t.Helper()
		fastWith(round, true)
	}
	fast("idle worker")
	// Held by a request without a deadline: the lane wakes the monitor.
	undated := r.slowAskedWith(t, 1, false)
	fastWith("lane held by a slow function without a deadline", false)
	r.releaseAll()
	if err := <-undated; err != nil {
		t.Fatal(err)
	}
	r.release, r.once = make(chan struct{}), sync.Once{}
	// The monitor stops ticking once the lane has been idle a while; the
	// lane wakes it when it takes work again.
	natstest.CheckFor(t, 20*time.Second, time.Millisecond, func() error {
		if !r.w.lane.asleep.Load() {
			return errors.New("the lane's monitor still ticks")
		}
		return nil
	})
	// Only the lane waits on the PRE queue: it takes the slow request.
	slow := r.slowAsked(t, 1)
	fast("lane held by a slow function")
	more := r.slowAsked(t, 30)
	fast("31 slow functions running")
	r.releaseAll()
	for _, errs := range []<-chan error{slow, more} {
		for range cap(errs) {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
	}

	one := newLaneRig(t, 1)
	if one.w.lane != nil {
		t.Fatal("a PRE lane with MaxInFlight 1")
	}
	errs := one.slowAsked(t, 1)
	one.releaseAll()
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
}

// TestPreLaneQuiet: while the lane answers PRE requests with a deadline
// (Trigger-Deadline, or the event's) one at a time, its monitor does not
// tick: it stays
// asleep, and never looks at the queue (each request's watchdog would wake
// it if one ran a tick; the tick is an hour here, so none does). Work that
// no watchdog guards, a request without a deadline, wakes it.
func TestPreLaneQuiet(t *testing.T) {
	tick := preLaneTick
	preLaneTick = time.Hour
	t.Cleanup(func() { preLaneTick = tick })
	r := newLaneRig(t, 40)
	l := r.w.lane
	for i := range 50 {
		ask := r.ask
		if i%2 == 1 {
			ask = r.askInEvent
		}
		d, err := ask("SERVER", i)
		if err != nil || !d.Allowed {
			t.Fatalf("request %d: %+v, %v; want allowed", i, d, err)
		}
	}
	if !l.asleep.Load() || l.looks.Load() != 0 {
		t.Fatalf("after 50 requests one at a time the monitor is asleep %v and looked %d times, want asleep and no look",
			l.asleep.Load(), l.looks.Load())
	}
	if d, err := r.askWith("SERVER", 50, false); err != nil || !d.Allowed {
		t.Fatalf("request without a deadline: %+v, %v; want allowed", d, err)
	}
	// The lane wakes the monitor before it runs the request.
	if l.asleep.Load() {
		t.Fatal("a request without a deadline did not wake the monitor")
	}
}
