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

// ask sends a PRE request on option and returns its decision.
func (r *laneRig) ask(option string, i int) (*event.Decision, error) {
	m := nats.NewMsg("trigger.PRE_CREATE." + option)
	m.Data = []byte(`{"id":"` + option + "-" + strconv.Itoa(i) + `"}`)
	m.Header.Set(subjects.HeaderDeadline, strconv.FormatInt(time.Now().Add(time.Minute).UnixMilli(), 10))
	reply, err := r.caller.RequestMsg(m, 30*time.Second)
	if err != nil {
		return nil, err
	}
	return event.DecodeDecision(reply.Data)
}

// slowAsked sends n DISK requests in the background and waits until all
// n functions run; their decisions come on the channel returned.
func (r *laneRig) slowAsked(t *testing.T, n int) <-chan error {
	t.Helper()
	before := r.started.Load()
	errs := make(chan error, n)
	for i := range n {
		go func() {
			d, err := r.ask("DISK", i)
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
// ticking, the worker having been idle; and many such functions run at
// once, as without the lane. The worker runs no lane when MaxInFlight is 1.
func TestPreLaneHelp(t *testing.T) {
	r := newLaneRig(t, 40)
	if r.w.lane == nil {
		t.Fatal("no PRE lane with MaxInFlight 40")
	}
	fast := func(round string) {
		t.Helper()
		for i := range 20 {
			d, err := r.ask("SERVER", i)
			if err != nil || !d.Allowed || d.ID != "SERVER-"+strconv.Itoa(i) {
				t.Fatalf("%s: fast request %d: %+v, %v; want allowed", round, i, d, err)
			}
		}
	}
	fast("idle worker")
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
