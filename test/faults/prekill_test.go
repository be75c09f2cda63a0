package faults_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/internal/proctest"
	"github.com/triggerbus/triggerbus/pkg/client"
	"github.com/triggerbus/triggerbus/pkg/event"
)

// holdScript is an FDL script whose PRE_CREATE SERVER function answers at
// once, or, for an input with hold = true, first asks faults.hold, which
// the test never answers: the request stays in flight in the worker until
// the worker dies (or the request's deadline passes).
const holdScript = `
function register() return { "hold_create" } end

function hold_create(p)
  if p == nil then
    return { ref = "hold_create", triggerType = "PRE_CREATE", triggerOptions = { "SERVER" }, api = "TRIGGER" }
  end
  if type(p.input) == "table" and p.input.hold == true then
    trigger.request("faults.hold", { id = p.id }, 30000)
  end
  return { exitState = "SUCCESS" }
end
`

// TestPreWorkerKilled sends 200 concurrent PRE requests, each with a 5 s
// deadline, to a trigger-worker process, and kills the process (SIGKILL)
// while three quarters of them are held in its function. Every caller gets
// exactly one answer, and never an allowed one for a held request: the
// requests that finished before the kill get the function's decision, the
// held ones a TIMEOUT refusal, returned no earlier than their deadline (the
// SDK gives up at the deadline, not before). That every call returns is
// bounded by a generous wait; how late after its deadline the latest one
// returned is logged, not asserted (a loaded machine may take long to
// schedule 200 goroutines). The decisions the worker sent, seen by a
// subscriber on every reply inbox, are at most one per request; its own
// count of decisions (scraped just before the kill) is at most the number
// of requests. After the kill, a request is refused NO_WORKER without
// waiting for its deadline.
func TestPreWorkerKilled(t *testing.T) {
	const (
		requests = 200
		every    = 4 // every 4th request is answered at once, the others held
		timeout  = 5 * time.Second
	)
	s := natstest.RunServer(t)
	dir := t.TempDir()
	proctest.WriteFile(t, dir, "hold.lua", holdScript)
	cfg := proctest.WriteWorkerConfig(t, dir, s.ClientURL(), dir, nil)
	p := startWorkerProcess(t, "trigger-worker", cfg)
	base := p.WaitReady(t)
	waitInterest(t, s, "trigger.PRE_CREATE.SERVER")

	// The requests held in the function.
	aux := natstest.Connect(t, s)
	held := make(chan string, requests)
	if _, err := aux.Subscribe("faults.hold", func(m *nats.Msg) {
		var v struct{ ID string }
		_ = json.Unmarshal(m.Data, &v)
		held <- v.ID
	}); err != nil {
		t.Fatal(err)
	}
	// Every decision sent to any reply inbox, by event id.
	var spyMu sync.Mutex
	spied := map[string]int{}
	if _, err := aux.Subscribe("_INBOX.>", func(m *nats.Msg) {
		d, err := event.DecodeDecision(m.Data)
		if err != nil {
			return // not a decision
		}
		spyMu.Lock()
		spied[d.ID]++
		spyMu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	if err := aux.Flush(); err != nil {
		t.Fatal(err)
	}

	c, err := client.New(natstest.Connect(t, s), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	type answer struct {
		id       string
		hold     bool
		d        *event.Decision
		err      error
		deadline time.Time
		returned time.Time
	}
	answers := make(chan answer, requests)
	fastDone := make(chan struct{}, requests)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range requests {
		hold := i%every != 0
		id := event.NewID()
		in := `{"hold":false}`
		if hold {
			in = `{"hold":true}`
		}
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			dl, _ := ctx.Deadline()
			d, err := c.Decide(ctx, "PRE_CREATE", "SERVER", &event.Event{ID: id, Input: json.RawMessage(in)})
			answers <- answer{id: id, hold: hold, d: d, err: err, deadline: dl, returned: time.Now()}
			if !hold {
				fastDone <- struct{}{}
			}
		})
	}

	// Kill once every held request is in the function and every fast one
	// is answered, or, on a machine too slow for that, shortly before the
	// first deadline.
	wantHeld, wantFast := requests-requests/every, requests/every
	killBy := start.Add(timeout - time.Second)
	nHeld, nFast := 0, 0
	for (nHeld < wantHeld || nFast < wantFast) && time.Now().Before(killBy) {
		select {
		case <-held:
			nHeld++
		case <-fastDone:
			nFast++
		case <-time.After(time.Until(killBy)):
		}
	}
	mfs, err := scrape(base)
	if err != nil {
		t.Fatalf("scrape before the kill: %v", err)
	}
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	killedAt := time.Now()
	t.Logf("killed the worker %v after the first request, with %d requests held in its function and %d answered",
		killedAt.Sub(start).Round(time.Millisecond), nHeld, nFast)
	if nHeld == 0 {
		t.Fatalf("no request reached the function before the kill (the machine is too loaded for this test)")
	}
	sent := sum(mfs, "trigger_pre_decisions_total", nil)
	if sent > requests || sent < float64(nFast) {
		t.Errorf("trigger_pre_decisions_total before the kill = %v, want between %d (answered) and %d (requests)", sent, nFast, requests)
	}

	allReturned := make(chan struct{})
	go func() {
		wg.Wait()
		close(allReturned)
	}()
	natstest.ChanRecv(t, allReturned, timeout+waitShort)
	close(answers)

	seen := map[string]int{}
	var worst time.Duration
	early := map[string]string{} // TIMEOUT answers returned before their deadline
	timeouts := 0
	for a := range answers {
		seen[a.id]++
		if a.err != nil {
			t.Errorf("Decide %s: %v (only a bad type, option or event is an error)", a.id, a.err)
			continue
		}
		switch {
		case a.d.Code == event.CodeTimeout:
			timeouts++
			if over := a.returned.Sub(a.deadline); over > worst {
				worst = over
			}
			if a.returned.Before(a.deadline) {
				early[a.id] = fmt.Sprintf("Decide %s returned TIMEOUT %v before its deadline, and the worker sent no decision for it",
					a.id, a.deadline.Sub(a.returned).Round(time.Millisecond))
			}
			if a.d.Allowed {
				t.Errorf("Decide %s = %+v: a timeout must refuse under the default policy", a.id, a.d)
			}
		case !a.hold && !a.d.Allowed:
			t.Errorf("Decide %s (answered at once) = %+v, want allowed", a.id, a.d)
		case a.hold && a.d.Allowed:
			t.Errorf("Decide %s (held when the worker died) = %+v, want a refusal", a.id, a.d)
		}
	}
	if len(seen) != requests {
		t.Errorf("%d distinct requests returned, want %d", len(seen), requests)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("Decide %s returned %d times", id, n)
		}
	}
	t.Logf("%d requests timed out; the latest returned %v after its deadline", timeouts, worst.Round(time.Millisecond))
	if timeouts < nHeld {
		t.Errorf("%d TIMEOUT answers, want at least the %d requests held at the kill", timeouts, nHeld)
	}

	if err := aux.Flush(); err != nil {
		t.Fatal(err)
	}
	spyMu.Lock()
	total := 0
	for id, n := range spied {
		total += n
		if n > 1 {
			t.Errorf("the worker sent %d decisions for request %s", n, id)
		}
	}
	if total > requests {
		t.Errorf("the worker sent %d decisions for %d requests", total, requests)
	}
	// A TIMEOUT the worker's watchdog sent comes a little before the
	// deadline; one the SDK made itself must not.
	var tooEarly []string
	for id, e := range early {
		if spied[id] == 0 {
			tooEarly = append(tooEarly, e)
		}
	}
	spyMu.Unlock()
	slices.Sort(tooEarly)
	for _, e := range tooEarly {
		t.Error(e)
	}
	t.Logf("the worker sent %d decisions (its metric said %v before the kill)", total, sent)

	// The worker is gone: the next request is refused at once, not at its
	// deadline.
	ctx, cancel := context.WithTimeout(context.Background(), waitShort)
	defer cancel()
	d, err := c.Decide(ctx, "PRE_CREATE", "SERVER", nil)
	if err != nil || d.Allowed || d.Code != event.CodeNoWorker {
		t.Errorf("Decide after the kill = %+v, %v, want refused with NO_WORKER", d, err)
	}
	if ctx.Err() != nil {
		t.Errorf("Decide after the kill waited for its deadline")
	}
}
