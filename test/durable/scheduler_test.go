package durable_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/schedule"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// fire is one run of the SCHEDULED function.
type fire struct {
	worker                int
	scheduled, freq, when int64 // input: [scheduledTimeMs, frequencyMs, nowMs]
	attempt               int
}

type fires struct {
	mu   sync.Mutex
	list []fire
}

// fn returns the SCHEDULED function "tick" (every second) of worker w.
func (f *fires) fn(t *testing.T, w int) worker.Function {
	t.Helper()
	sc, err := schedule.Parse(time.Second, "", "", "")
	if err != nil {
		t.Fatal(err)
	}
	h := handlers.Func(func(ctx context.Context, ev *event.Event) (handlers.Result, error) {
		var in []int64
		if err := json.Unmarshal(ev.Input, &in); err != nil || len(in) != 3 {
			return handlers.Result{}, fmt.Errorf("input %s is not [scheduledTimeMs, frequencyMs, nowMs]", ev.Input)
		}
		c, _ := handlers.CallFrom(ctx)
		f.mu.Lock()
		f.list = append(f.list, fire{worker: w, scheduled: in[0], freq: in[1], when: in[2], attempt: c.Attempt})
		f.mu.Unlock()
		return handlers.Result{}, nil
	})
	return worker.Function{Ref: "tick", TriggerType: "SCHEDULED", Schedule: sc, Handler: h}
}

// ticks returns the distinct ticks fired so far.
func (f *fires) ticks() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	seen := map[int64]bool{}
	for _, x := range f.list {
		seen[x.scheduled] = true
	}
	return len(seen)
}

func (f *fires) all() []fire {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.list)
}

func (f *fires) waitTicks(t *testing.T, n int) {
	t.Helper()
	natstest.CheckFor(t, time.Duration(n)*time.Second+waitLong, poll, func() error {
		if got := f.ticks(); got < n {
			return fmt.Errorf("%d of %d ticks fired", got, n)
		}
		return nil
	})
}

// TestScheduleFleet runs a one-second schedule on three workers, loses one
// of them abruptly (connection closed, no Stop) and starts a fourth part-way.
// Each tick is stored once and runs once: no duplicate and no gap from the
// first tick to the last, with the input of the contract.
//
// 30 ticks; 12 under the race detector or -short.
func TestScheduleFleet(t *testing.T) {
	ticks := scale(30, 12)
	s := natstest.RunServer(t, natstest.WithJetStream())
	f := &fires{}
	dc := &worker.DurableConfig{AckWait: 2 * time.Second, Backoff: []time.Duration{50 * time.Millisecond}}
	conns := make([]*nats.Conn, 4)
	workers := make([]*worker.Worker, 4)
	startFleetWorker := func(i int) {
		conns[i] = natstest.Connect(t, s)
		workers[i] = startWorker(t, conns[i], worker.Config{Durable: dc}, f.fn(t, i))
	}
	for i := range 3 {
		startFleetWorker(i)
	}
	f.waitTicks(t, ticks/3)
	conns[0].Close()
	startFleetWorker(3)
	f.waitTicks(t, ticks)
	// Stop the live workers, so that nothing fires while the stream is read.
	for _, w := range workers[1:] {
		if err := w.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
	}

	all := f.all()
	first := map[int64]int{} // runs at attempt 1, by tick
	var scheduled []int64
	for _, x := range all {
		if x.freq != 1000 {
			t.Errorf("fire %+v: frequencyMs %d, want 1000", x, x.freq)
		}
		if x.scheduled%1000 != 0 || x.when < x.scheduled {
			t.Errorf("fire %+v: scheduledTimeMs not on a second, or nowMs before it", x)
		}
		if x.attempt == 1 {
			first[x.scheduled]++
		} else {
			// The lost worker held that tick when its connection closed.
			t.Logf("tick %d ran again at attempt %d on worker %d", x.scheduled, x.attempt, x.worker)
		}
		scheduled = append(scheduled, x.scheduled)
	}
	slices.Sort(scheduled)
	scheduled = slices.Compact(scheduled)
	for i := 1; i < len(scheduled); i++ {
		if gap := scheduled[i] - scheduled[i-1]; gap != 1000 {
			t.Errorf("ticks %d and %d are %dms apart: %d ticks missing", scheduled[i-1], scheduled[i], gap, gap/1000-1)
		}
	}
	for tk, n := range first {
		if n != 1 {
			t.Errorf("tick %d ran %d times at attempt 1, want once", tk, n)
		}
	}
	// Each tick was stored once: the stream's sequence counts the ticks
	// that ran and those still waiting in it.
	js, err := jetstream.New(natstest.Connect(t, s))
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(context.Background(), eventStream)
	if err != nil {
		t.Fatal(err)
	}
	si, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if si.State.LastSeq != uint64(len(scheduled))+si.State.Msgs {
		t.Errorf("stream stored %d ticks (%d waiting), want %d run + %d waiting: a tick was stored twice or lost",
			si.State.LastSeq, si.State.Msgs, len(scheduled), si.State.Msgs)
	}
	byWorker := map[int]int{}
	for _, x := range all {
		byWorker[x.worker]++
	}
	t.Logf("%d ticks from %d to %d, %d fires, by worker %v", len(scheduled), scheduled[0], scheduled[len(scheduled)-1], len(all), byWorker)
}
