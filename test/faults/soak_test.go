package faults_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/internal/proctest"
	"github.com/triggerbus/triggerbus/pkg/client"
	"github.com/triggerbus/triggerbus/pkg/event"
)

// Soak thresholds: how much the long-lived worker may grow between the
// first and the last third of the run (after a warm-up) for its resident
// memory and goroutines to count as flat.
const (
	soakRSSFactor    = 1.5
	soakRSSSlack     = 32 << 20
	soakGoroutineAdd = 50
)

// soakScripts are the FDL scripts of the durable fleet: a PRE decision, a
// POST function that reports to faults.handled, and a SCHEDULED function
// that reports its ticks.
const soakScripts = `
function register() return { "soak_quota", "soak_record", "soak_tick" } end

function soak_quota(p)
  if p == nil then
    return { ref = "soak_quota", triggerType = "PRE_CREATE", triggerOptions = { "SERVER" }, api = "TRIGGER" }
  end
  if type(p.input) == "table" and tonumber(p.input.cpu) ~= nil and tonumber(p.input.cpu) > 16 then
    return { exitState = "FAILED", errorCode = "QUOTA_EXCEEDED", errorMessage = "too many CPUs" }
  end
  return { exitState = "SUCCESS" }
end

function soak_record(p)
  if p == nil then
    return { ref = "soak_record", triggerType = "POST_CREATE", triggerOptions = { "ANY" }, api = "TRIGGER" }
  end
  local reply, err = trigger.request("faults.handled", { id = p.id }, 2000)
  if reply == nil then error("the recorder did not answer: " .. tostring(err)) end
  return { exitState = "SUCCESS" }
end

function soak_tick(p)
  if p == nil then
    return { ref = "soak_tick", triggerType = "SCHEDULED", api = "TRIGGER", schedule = { frequency = { SECOND = 5 } } }
  end
  trigger.request("faults.tick", { id = p.id, at = p.input[1] }, 2000)
  return { exitState = "SUCCESS" }
end
`

// soakCoreScript is the POST function of the core-mode worker: it reports
// to faults.core.
const soakCoreScript = `
function register() return { "soak_core" } end

function soak_core(p)
  if p == nil then
    return { ref = "soak_core", triggerType = "POST_DELETE", triggerOptions = { "ANY" }, api = "TRIGGER" }
  end
  trigger.publish("faults.core", { id = p.id })
  return { exitState = "SUCCESS" }
end
`

func envDuration(t *testing.T, name string, def time.Duration) time.Duration {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Fatalf("%s=%q: want a positive duration such as 30m", name, v)
	}
	return d
}

// soakSample is one reading of the long-lived worker.
type soakSample struct {
	at         time.Duration
	rss        float64
	goroutines float64
}

// TestSoak runs mixed load against a fleet of trigger-worker processes for
// TRIGGERBUS_SOAK_DURATION (default 30m) and disrupts it every
// TRIGGERBUS_SOAK_KILL_EVERY (default 1m), in turn: SIGKILL of a durable
// worker, a restart of the NATS server, SIGKILL of another worker, SIGTERM
// of a worker; killed workers are started again at once. The load: PRE
// decisions, durable POST events (reported by the function, so acked means
// handled), core POST events to a core-mode worker, and a SCHEDULED
// function every 5 s. One durable worker is never disrupted: its resident
// memory and goroutines, read from its /metrics every 10 s, must stay flat
// (the last third of the run within soakRSSFactor x + soakRSSSlack and
// soakGoroutineAdd of the first third, after a warm-up). Every durable
// event the stream acknowledged must be handled; core-mode loss is
// reported.
//
// It runs only with TRIGGERBUS_SOAK=1; see the package documentation.
func TestSoak(t *testing.T) {
	if os.Getenv("TRIGGERBUS_SOAK") != "1" {
		t.Skip("set TRIGGERBUS_SOAK=1 to run the soak test (TRIGGERBUS_SOAK_DURATION, default 30m)")
	}
	duration := envDuration(t, "TRIGGERBUS_SOAK_DURATION", 30*time.Minute)
	killEvery := envDuration(t, "TRIGGERBUS_SOAK_KILL_EVERY", time.Minute)
	t.Logf("soak: %v of load, a disruption every %v", duration, killEvery)

	s := natstest.RunServer(t, natstest.WithJetStream())
	aux := publisherConn(t, s.ClientURL())
	handled := recorder(t, aux)
	ticks := newIDSet()
	core := newIDSet()
	if _, err := aux.Subscribe("faults.tick", func(m *nats.Msg) {
		var v struct {
			At float64
		}
		_ = json.Unmarshal(m.Data, &v)
		ticks.add(fmt.Sprint(int64(v.At)))
		_ = m.Respond([]byte(`{}`))
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := aux.Subscribe("faults.core", func(m *nats.Msg) {
		var v struct{ ID string }
		_ = json.Unmarshal(m.Data, &v)
		core.add(v.ID)
	}); err != nil {
		t.Fatal(err)
	}
	if err := aux.Flush(); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	proctest.WriteFile(t, dir, "soak.lua", soakScripts)
	cfg := durableWorkerConfig(t, dir, s.ClientURL())
	coreDir := t.TempDir()
	proctest.WriteFile(t, coreDir, "core.lua", soakCoreScript)
	coreCfg := proctest.WriteWorkerConfig(t, coreDir, s.ClientURL(), coreDir, map[string]any{"subjects.prefix": "core"})

	anchor := startWorkerProcess(t, "anchor", cfg)
	anchorURL := anchor.WaitReady(t)
	procs := []*proctest.Process{startWorkerProcess(t, "worker-1", cfg), startWorkerProcess(t, "worker-2", cfg)}
	coreProc := startWorkerProcess(t, "core", coreCfg)
	for _, p := range append(procs, coreProc) {
		p.WaitReady(t)
	}

	// Load.
	pubConn := publisherConn(t, s.ClientURL())
	durableC, err := client.New(pubConn, client.Options{Durable: true})
	if err != nil {
		t.Fatal(err)
	}
	coreC, err := client.New(pubConn, client.Options{Prefix: "core"})
	if err != nil {
		t.Fatal(err)
	}
	durableLoad := startLoad(durableC, "POST_CREATE", "SERVER", 5*time.Millisecond)
	defer durableLoad.stopLoad()
	coreLoad := startLoad(coreC, "POST_DELETE", "SERVER", 10*time.Millisecond)
	defer coreLoad.stopLoad()
	preC, err := client.New(pubConn, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pres := []*preLoop{startPreLoop(preC, time.Second, 2*time.Millisecond), startPreLoop(preC, time.Second, 2*time.Millisecond)}

	// Disruptions and samples.
	start := time.Now()
	end := start.Add(duration)
	sampleTick := time.NewTicker(10 * time.Second)
	defer sampleTick.Stop()
	killTick := time.NewTicker(killEvery)
	defer killTick.Stop()
	var samples []soakSample
	var disruptions []string
	var sampleErrs atomic.Int64
	var mu sync.Mutex
	sample := func() {
		mfs, err := scrape(anchorURL)
		if err != nil {
			sampleErrs.Add(1)
			return
		}
		mu.Lock()
		samples = append(samples, soakSample{
			at:         time.Since(start).Round(time.Second),
			rss:        sum(mfs, "process_resident_memory_bytes", nil),
			goroutines: sum(mfs, "go_goroutines", nil),
		})
		mu.Unlock()
	}
	sample()
	for n := 0; time.Now().Before(end); {
		select {
		case <-sampleTick.C:
			sample()
			continue
		case <-killTick.C:
		case <-time.After(time.Until(end)):
			continue
		}
		var what string
		switch n % 4 {
		case 0, 2:
			i := n / 2 % 2
			_ = procs[i].Kill()
			procs[i].Wait(t)
			procs[i] = startWorkerProcess(t, fmt.Sprintf("worker-%d (%d)", i+1, n), cfg)
			procs[i].WaitReady(t)
			what = "SIGKILL worker-" + fmt.Sprint(i+1)
		case 1:
			s = natstest.Restart(t, s)
			what = "restart nats-server"
		case 3:
			procs[1].Signal(t, syscall.SIGTERM)
			if code := procs[1].Wait(t); code != 0 {
				t.Errorf("worker-2 exited %d after SIGTERM", code)
			}
			procs[1] = startWorkerProcess(t, fmt.Sprintf("worker-2 (%d)", n), cfg)
			procs[1].WaitReady(t)
			what = "SIGTERM worker-2"
		}
		n++
		disruptions = append(disruptions, fmt.Sprintf("%v %s", time.Since(start).Round(time.Second), what))
	}
	durableLoad.stopLoad()
	coreLoad.stopLoad()
	var codes []string
	for _, l := range pres {
		c, worst := l.stopLoop(t)
		checkRefused(t, c)
		codes = append(codes, fmt.Sprintf("%v (latest %v after the deadline)", c, worst.Round(time.Millisecond)))
	}
	sample()

	acked := durableLoad.allIDs()
	natstest.CheckFor(t, 2*waitLong, poll, func() error {
		if m := handled.missing(acked); len(m) > 0 {
			return fmt.Errorf("%d of %d acked durable events not handled, e.g. %s", len(m), len(acked), m[0])
		}
		return nil
	})
	t.Logf("disruptions: %s", strings.Join(disruptions, "; "))
	t.Logf("durable POST: published %d, acked %d, all handled, %d handled more than once, publish errors %d %v",
		durableLoad.published.Load(), len(acked), handled.dups(), durableLoad.failed.Load(), durableLoad.errs)
	t.Logf("core POST: published %d, publish errors %d, handled %d, lost %d",
		coreLoad.published.Load(), coreLoad.failed.Load(), core.len(), coreLoad.published.Load()-coreLoad.failed.Load()-int64(core.len()))
	t.Logf("PRE decisions by code: %s", strings.Join(codes, "; "))
	t.Logf("SCHEDULED every 5s: %d distinct ticks over %v, %d reported twice", ticks.len(), duration, ticks.dups())

	mu.Lock()
	defer mu.Unlock()
	var lines []string
	for _, s := range samples {
		lines = append(lines, fmt.Sprintf("%v rss=%.1fMiB goroutines=%.0f", s.at, s.rss/(1<<20), s.goroutines))
	}
	t.Logf("long-lived worker (%d samples, %d scrape errors):\n  %s", len(samples), sampleErrs.Load(), strings.Join(lines, "\n  "))
	if len(samples) < 6 {
		t.Fatalf("%d samples: run the soak for at least a minute", len(samples))
	}
	// Warm-up: the first tenth; then compare the first and last thirds.
	rest := samples[len(samples)/10:]
	third := len(rest) / 3
	first, last := rest[:third], rest[len(rest)-third:]
	peak := func(ss []soakSample, f func(soakSample) float64) float64 {
		return slices.Max(func() []float64 {
			var v []float64
			for _, s := range ss {
				v = append(v, f(s))
			}
			return v
		}())
	}
	rss := func(s soakSample) float64 { return s.rss }
	gor := func(s soakSample) float64 { return s.goroutines }
	if a, b := peak(first, rss), peak(last, rss); b > a*soakRSSFactor+soakRSSSlack {
		t.Errorf("resident memory grew from %.1f MiB to %.1f MiB", a/(1<<20), b/(1<<20))
	}
	if a, b := peak(first, gor), peak(last, gor); b > a+soakGoroutineAdd {
		t.Errorf("goroutines grew from %.0f to %.0f", a, b)
	}
	// The fleet still answers.
	ctx, cancel := context.WithTimeout(context.Background(), waitShort)
	defer cancel()
	d, err := preC.Decide(ctx, "PRE_CREATE", "SERVER", &event.Event{Input: json.RawMessage(`{"cpu":64}`)})
	if err != nil || d.Code != "QUOTA_EXCEEDED" {
		t.Errorf("Decide at the end = %+v, %v, want QUOTA_EXCEEDED", d, err)
	}
}
