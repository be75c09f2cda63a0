package faults_test

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

	"github.com/nats-io/nats.go"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/internal/proctest"
	"github.com/triggerbus/triggerbus/pkg/client"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// recordFn is a POST function that adds each event's id to ids.
func recordFn(ref, typ string, ids *idSet) worker.Function {
	return worker.Function{Ref: ref, TriggerType: typ, Options: []string{"ANY"},
		Handler: handlers.Func(func(_ context.Context, ev *event.Event) (handlers.Result, error) {
			ids.add(ev.ID)
			return handlers.Result{ExitState: handlers.Success}, nil
		})}
}

// denyBigFn is a PRE function that refuses inputs with cpu > 16.
func denyBigFn(ref, typ string) worker.Function {
	return worker.Function{Ref: ref, TriggerType: typ, Options: []string{"ANY"},
		Handler: handlers.Func(func(_ context.Context, ev *event.Event) (handlers.Result, error) {
			var in struct{ CPU int }
			_ = json.Unmarshal(ev.Input, &in)
			if in.CPU > 16 {
				return handlers.Result{ExitState: handlers.Failed, ErrorCode: "QUOTA_EXCEEDED", ErrorMessage: "too many CPUs"}, nil
			}
			return handlers.Result{ExitState: handlers.Success}, nil
		})}
}

// publisherConn connects a publisher that reconnects quickly and forever.
func publisherConn(t testing.TB, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond),
		nats.ReconnectJitter(10*time.Millisecond, 10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// loadGen publishes POST events on one goroutine until stopped, pacing
// them with a ticker, and records what it published.
type loadGen struct {
	phase     atomic.Int32 // tag of the events published from now on
	published atomic.Int64
	failed    atomic.Int64
	acked     atomic.Int64

	mu       sync.Mutex
	byTag    map[int32][]string // ids of the events published (acked, when durable), by phase
	errs     []error
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

// startLoad publishes an event of typ and option with c every interval
// until stopLoad. A durable client's events count once the stream acked
// them.
func startLoad(c *client.Client, typ, option string, interval time.Duration) *loadGen {
	g := &loadGen{byTag: map[int32][]string{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(g.done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-g.stop:
				return
			case <-tick.C:
			}
			tag := g.phase.Load()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			id, err := c.Publish(ctx, typ, option, &event.Event{Input: json.RawMessage(`{"n":` + strconv.Itoa(i) + `}`)})
			cancel()
			g.published.Add(1)
			g.mu.Lock()
			if err != nil {
				g.failed.Add(1)
				if len(g.errs) < 5 {
					g.errs = append(g.errs, err)
				}
			} else {
				g.acked.Add(1)
				g.byTag[tag] = append(g.byTag[tag], id)
			}
			g.mu.Unlock()
		}
	}()
	return g
}

func (g *loadGen) stopLoad() {
	g.stopOnce.Do(func() { close(g.stop) })
	<-g.done
}

func (g *loadGen) ids(tag int32) []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.byTag[tag]...)
}

func (g *loadGen) allIDs() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []string
	for _, ids := range g.byTag {
		out = append(out, ids...)
	}
	return out
}

// waitOK waits until n more events than at the call were published
// without error (for a durable client: acknowledged by the stream).
func (g *loadGen) waitOK(t testing.TB, n int64) {
	t.Helper()
	from := g.acked.Load()
	natstest.CheckFor(t, waitLong, poll, func() error {
		if got := g.acked.Load() - from; got < n {
			return fmt.Errorf("%d of %d events published", got, n)
		}
		return nil
	})
}

// preLoop asks PRE decisions one after the other until stopped, and
// records their codes and how late the latest one returned.
type preLoop struct {
	mu    sync.Mutex
	codes map[string]int
	worst time.Duration
	stop  chan struct{}
	done  chan struct{}
}

// startPreLoop asks decisions with the given timeout, one every pace (0:
// one after the other), until stopLoop. It counts them by code, with an
// "allowed " prefix for an allowed decision and "error" for an error, and
// keeps how late after its deadline the latest one returned (for the log:
// on a loaded machine that says nothing about the code).
func startPreLoop(c *client.Client, timeout, pace time.Duration) *preLoop {
	l := &preLoop{codes: map[string]int{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		var tick <-chan time.Time
		if pace > 0 {
			t := time.NewTicker(pace)
			defer t.Stop()
			tick = t.C
		}
		for {
			select {
			case <-l.stop:
				return
			default:
			}
			if tick != nil {
				select {
				case <-l.stop:
					return
				case <-tick:
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			dl, _ := ctx.Deadline()
			d, err := c.Decide(ctx, "PRE_CREATE", "SERVER", &event.Event{Input: json.RawMessage(`{"cpu":64}`)})
			over := time.Since(dl)
			cancel()
			code := "error"
			switch {
			case err == nil && d.Allowed:
				code = "allowed " + d.Code
			case err == nil:
				code = d.Code
			}
			l.mu.Lock()
			l.codes[code]++
			l.worst = max(l.worst, over)
			l.mu.Unlock()
		}
	}()
	return l
}

// checkRefused fails t unless every decision of a preLoop asking for
// 64 CPUs (which the function refuses) was a refusal, and none an error: a
// PRE call fails closed whatever NATS and the worker go through.
func checkRefused(t testing.TB, codes map[string]int) {
	t.Helper()
	for code, n := range codes {
		if code == "error" || strings.HasPrefix(code, "allowed ") {
			t.Errorf("%d PRE decisions %q, want every one refused (fail closed)", n, code)
		}
	}
}

// count returns how many decisions had code so far.
func (l *preLoop) count(code string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.codes[code]
}

// stopLoop stops the loop, waiting (a bounded wait) for its last Decide to
// return, and returns the counts by code and the latest return after a
// deadline.
func (l *preLoop) stopLoop(t testing.TB) (map[string]int, time.Duration) {
	t.Helper()
	close(l.stop)
	natstest.ChanRecv(t, l.done, waitShort)
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.codes, l.worst
}

// TestServerRestartCore restarts the NATS server (natstest.Restart: same
// port) while POST events are published in core mode and PRE requests are
// asked. The worker reconnects and serves again: every event published
// after its subscription is back on the new server is handled, and a PRE
// request gets the function's decision. What core mode lost during the
// restart is counted, not silent: the worker handled everything that
// reached it (received = handled), the publisher counts its failed
// publishes, the rest (published - failed - handled: events written to the
// old server's socket, or flushed from the publisher's reconnect buffer
// before the worker had subscribed again) is reported in the test log, and
// the disconnection shows in the worker's log.
func TestServerRestartCore(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	logs := proctest.NewLogCapture()
	m, _ := newMetrics(t)
	wnc := connectWorker(t, s.ClientURL(), logs.Logger, m)
	handled := newIDSet()
	w := proctest.StartWorker(t, wnc, worker.Config{Metrics: m, Logger: logs.Logger},
		recordFn("record", "POST_CREATE", handled), denyBigFn("deny_big", "PRE_CREATE"))

	pub := publisherConn(t, s.ClientURL())
	c, err := client.New(pub, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	load := startLoad(c, "POST_CREATE", "SERVER", time.Millisecond)
	defer load.stopLoad()
	pre := startPreLoop(c, 500*time.Millisecond, 0)

	load.waitOK(t, int64(scale(1000, 300)))
	s = natstest.Restart(t, s)
	natstest.CheckFor(t, waitLong, poll, func() error {
		if !wnc.IsConnected() || value(m.NATSConnected) != 1 {
			return errors.New("worker not reconnected yet")
		}
		return nil
	})
	waitInterest(t, s, "trigger.POST_CREATE.*")
	waitInterest(t, s, "trigger.PRE_CREATE.*")
	load.phase.Store(1)
	load.waitOK(t, int64(scale(1000, 300)))
	load.stopLoad()
	codes, worst := pre.stopLoop(t)

	after := load.ids(1)
	waitAll(t, "published after the worker was back", handled, after)
	// Everything that reached the worker was handled.
	received := func() float64 { return value(m.EventsReceived.WithLabelValues("POST_CREATE", "SERVER")) }
	natstest.CheckFor(t, waitShort, poll, func() error {
		if r, h := received(), handled.len(); r != float64(h) {
			return fmt.Errorf("worker received %v events and handled %d", r, h)
		}
		return nil
	})
	published, failed := load.published.Load(), load.failed.Load()
	lost := published - failed - int64(handled.len())
	t.Logf("core mode across a server restart: published %d, publish errors %d, handled %d (received by the worker %v), lost in transit %d; %d published after the worker was back, all handled",
		published, failed, handled.len(), received(), lost, len(after))
	if lost < 0 {
		t.Errorf("handled %d events, more than the %d published without error", handled.len(), published-failed)
	}
	if n := handled.dups(); n != 0 {
		t.Errorf("%d events handled twice in core mode", n)
	}
	for _, want := range []string{"disconnected from NATS", "reconnected to NATS"} {
		if logs.Count(want) == 0 {
			t.Errorf("the worker's log has no %q line:\n%s", want, proctest.Tail(logs.String(), 20))
		}
	}

	t.Logf("PRE decisions during the restart, by code: %v; latest return %v after its deadline", codes, worst.Round(time.Millisecond))
	checkRefused(t, codes)
	ctx, cancel := context.WithTimeout(context.Background(), waitShort)
	defer cancel()
	d, err := c.Decide(ctx, "PRE_CREATE", "SERVER", &event.Event{Input: json.RawMessage(`{"cpu":64}`)})
	if err != nil || d.Allowed || d.Code != "QUOTA_EXCEEDED" {
		t.Errorf("Decide after the restart = %+v, %v, want the function's QUOTA_EXCEEDED", d, err)
	}
	stopWorker(t, w) // before the new server's cleanup shuts it down
}

// TestServerRestartDurable restarts the NATS server (same port and
// JetStream store) while durable POST events are published. Every event
// the stream acknowledged is handled, and no publish fails: one whose ack
// was lost when the server went down is retried, with the same event id,
// before its deadline (each publish has 10 s; the restart takes well under
// one).
func TestServerRestartDurable(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t, natstest.WithJetStream())
	logs := proctest.NewLogCapture()
	m, _ := newMetrics(t)
	wnc := connectWorker(t, s.ClientURL(), logs.Logger, m)
	handled := newIDSet()
	w := proctest.StartWorker(t, wnc, worker.Config{Metrics: m, Logger: logs.Logger, MaxInFlight: 32,
		Durable: &worker.DurableConfig{AckWait: 2 * time.Second, Backoff: []time.Duration{100 * time.Millisecond}, MaxDeliver: -1}},
		recordFn("record", "POST_CREATE", handled))

	pub := publisherConn(t, s.ClientURL())
	c, err := client.New(pub, client.Options{Durable: true})
	if err != nil {
		t.Fatal(err)
	}
	load := startLoad(c, "POST_CREATE", "SERVER", time.Millisecond)
	defer load.stopLoad()

	load.waitOK(t, int64(scale(500, 200)))
	natstest.Restart(t, s)
	natstest.CheckFor(t, waitLong, poll, func() error {
		if !wnc.IsConnected() {
			return errors.New("worker not reconnected yet")
		}
		return nil
	})
	load.waitOK(t, int64(scale(500, 200)))
	load.stopLoad()

	acked := load.allIDs()
	waitAll(t, "acked by the stream", handled, acked)
	t.Logf("durable mode across a server restart: published %d, acked %d (all handled), publish errors %d (e.g. %v), handled %d distinct events, %d more than once (at least once)",
		load.published.Load(), len(acked), load.failed.Load(), load.errs, handled.len(), handled.dups())
	// Each publish had 10 s; the server was back long before. A publish
	// whose ack was lost in the restart is retried with the same id
	// within that time, not left waiting for the whole of it.
	if n := load.failed.Load(); n != 0 {
		t.Errorf("%d durable publishes failed across a restart shorter than their deadline: %v", n, load.errs)
	}
	stopWorker(t, w) // before the new server's cleanup shuts it down
}
