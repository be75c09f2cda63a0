package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/schedule"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// tickFire is one run of a SCHEDULED function: its input and attempt.
type tickFire struct {
	ref                   string
	scheduled, freq, when int64 // input: [scheduledTimeMs, frequencyMs, nowMs]
	attempt               int
}

// tickRecorder records the fires of SCHEDULED functions.
type tickRecorder struct {
	mu    sync.Mutex
	fires []tickFire
	ch    chan tickFire // buffered: tests read at most that many
}

func newTickRecorder() *tickRecorder { return &tickRecorder{ch: make(chan tickFire, 100)} }

func (r *tickRecorder) fn(t testing.TB, ref string, every time.Duration) worker.Function {
	t.Helper()
	sc, err := schedule.Parse(every, "", "", "")
	if err != nil {
		t.Fatal(err)
	}
	h := handlers.Func(func(ctx context.Context, ev *event.Event) (handlers.Result, error) {
		var in []int64
		if err := json.Unmarshal(ev.Input, &in); err != nil || len(in) != 3 {
			return handlers.Result{}, fmt.Errorf("input %s is not [scheduledTimeMs, frequencyMs, nowMs]", ev.Input)
		}
		c, _ := handlers.CallFrom(ctx)
		f := tickFire{ref: c.Ref, scheduled: in[0], freq: in[1], when: in[2], attempt: c.Attempt}
		r.mu.Lock()
		r.fires = append(r.fires, f)
		r.mu.Unlock()
		select {
		case r.ch <- f:
		default:
		}
		return handlers.Result{}, nil
	})
	return worker.Function{Ref: ref, TriggerType: "SCHEDULED", Schedule: sc, Handler: h}
}

func (r *tickRecorder) all() []tickFire {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]tickFire(nil), r.fires...)
}

func TestScheduledNeedsJetStream(t *testing.T) {
	s := natstest.RunServer(t)
	nc := natstest.Connect(t, s)
	set := []worker.Function{newTickRecorder().fn(t, "tick", time.Minute)}
	if _, err := worker.New(nc, worker.Config{}, set...); !errors.Is(err, worker.ErrScheduleNeedsJetStream) {
		t.Errorf("New with a SCHEDULED function and no JetStream: %v, want ErrScheduleNeedsJetStream", err)
	}
	w, err := worker.New(nc, worker.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Replace(context.Background(), set...); !errors.Is(err, worker.ErrScheduleNeedsJetStream) {
		t.Errorf("Replace with a SCHEDULED function and no JetStream: %v, want ErrScheduleNeedsJetStream", err)
	}
}

// TestScheduledFiresOwnTicks: two SCHEDULED functions with their own
// schedules each get their own ticks only, with the input of the contract.
func TestScheduledFiresOwnTicks(t *testing.T) {
	s := natstest.RunServer(t, natstest.WithJetStream())
	rec := newTickRecorder()
	startWorker(t, natstest.Connect(t, s), worker.Config{Durable: durableTestConfig()},
		rec.fn(t, "every_second", time.Second), rec.fn(t, "every_two", 2*time.Second))
	seen := map[string]int{}
	for seen["every_two"] < 2 || seen["every_second"] < 2 {
		f := natstest.ChanRecv(t, rec.ch, 10*time.Second)
		seen[f.ref]++
	}
	// A function that ran for the other's tick would show its frequency.
	ticks := map[string]map[int64]bool{}
	for _, f := range rec.all() {
		want := map[string]int64{"every_second": 1000, "every_two": 2000}[f.ref]
		if f.freq != want || f.scheduled%want != 0 {
			t.Errorf("%s fired with scheduledTimeMs %d, frequencyMs %d; want a multiple of %d and %d", f.ref, f.scheduled, f.freq, want, want)
		}
		if f.when < f.scheduled {
			t.Errorf("%s: nowMs %d is before scheduledTimeMs %d", f.ref, f.when, f.scheduled)
		}
		if ticks[f.ref] == nil {
			ticks[f.ref] = map[int64]bool{}
		}
		if ticks[f.ref][f.scheduled] {
			t.Errorf("%s fired twice for tick %d", f.ref, f.scheduled)
		}
		ticks[f.ref][f.scheduled] = true
	}
}

// TestScheduledRestartNoDoubleFire: a worker that starts again right after
// a tick fires it again (catch-up), and the stream drops that copy as a
// duplicate, so the function runs once per tick.
func TestScheduledRestartNoDoubleFire(t *testing.T) {
	s := natstest.RunServer(t, natstest.WithJetStream())
	const every = 2 * time.Second
	rec := newTickRecorder()
	tick := rec.fn(t, "tick", every)

	// A worker fires the latest due tick as soon as it starts.
	w1 := startWorker(t, natstest.Connect(t, s), worker.Config{Durable: durableTestConfig()}, tick)
	first := natstest.ChanRecv(t, rec.ch, 10*time.Second)
	if err := w1.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	logs := &tickLog{}
	restarted := time.Now()
	startWorker(t, natstest.Connect(t, s), worker.Config{Durable: durableTestConfig(), Logger: slog.New(logs)}, tick)
	// Two more ticks.
	for n := 0; n < 2; {
		if f := natstest.ChanRecv(t, rec.ch, 10*time.Second); f.scheduled > first.scheduled {
			n++
		}
	}
	fires := rec.all()
	count := map[int64]int{}
	for _, f := range fires {
		count[f.scheduled]++
	}
	for tk, n := range count {
		if n != 1 {
			t.Errorf("tick %d ran %d times, want once", tk, n)
		}
	}
	if restarted.Sub(time.UnixMilli(first.scheduled)) < every-200*time.Millisecond {
		// The second worker started while the first tick was the latest:
		// it published it again, and the stream said duplicate.
		if !logs.duplicate(first.scheduled) {
			t.Errorf("the restarted worker did not publish tick %d again (or it was not a duplicate)", first.scheduled)
		}
	} else {
		t.Logf("restart took %v: the catch-up copy was not exercised", restarted.Sub(time.UnixMilli(first.scheduled)))
	}
	// Each tick was stored once.
	js, err := jetstream.New(natstest.Connect(t, s))
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(context.Background(), durableStream)
	if err != nil {
		t.Fatal(err)
	}
	si, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if si.State.LastSeq != uint64(len(count)) {
		t.Errorf("stream stored %d ticks, want %d (one per tick)", si.State.LastSeq, len(count))
	}
}

// tickLog is a slog handler that keeps the ticks published as duplicates.
type tickLog struct {
	mu   sync.Mutex
	dups map[int64]bool
}

func (l *tickLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *tickLog) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *tickLog) WithGroup(string) slog.Handler            { return l }

func (l *tickLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "tick published" {
		return nil
	}
	var tick time.Time
	dup := false
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "tick":
			tick, _ = a.Value.Any().(time.Time)
		case "duplicate":
			dup = a.Value.Bool()
		}
		return true
	})
	if dup {
		l.mu.Lock()
		if l.dups == nil {
			l.dups = map[int64]bool{}
		}
		l.dups[tick.UnixMilli()] = true
		l.mu.Unlock()
	}
	return nil
}

func (l *tickLog) duplicate(ms int64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.dups[ms]
}
