package main

// The worker side of a run: `trigger-bench __worker`, one process per run.
// It sets up the raw subscriber/responder or a triggerbus worker, says
// "ready" on stdout, then obeys its stdin:
//
//	start  reset the counters and the latency histogram, note the CPU time
//	       (and start the CPU profile); answer "started"
//	stop   answer "stats <JSON childStats>", then shut down and exit
//
// While it runs, the function (or raw callback) counts the events it
// handled and publishes the count on <ctl>.progress every progressEvery
// events; <ctl>.count answers the count at once. Both go over a connection
// of their own, not the measured one.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/triggerbus/triggerbus/internal/gcfloor"
	"github.com/triggerbus/triggerbus/internal/natsconn"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// progressEvery is how often (in events) the worker side reports its count,
// which the driver's in-flight window waits on.
const progressEvery = 64

// The worker-side modes.
const (
	modePostCore    = "post-core"
	modePostDurable = "post-durable"
	modePre         = "pre"
	modeIdle        = "idle"
)

// Subject prefixes: every mode and side has its own, so that the durable
// streams capture only their own scenario's events.
func prefixOf(mode, side string) string {
	p, ok := map[string]string{modePostCore: "core", modePostDurable: "dur", modePre: "pre", modePreRegistry: "prereg", modeIdle: "idle"}[mode]
	if !ok {
		p = strings.ReplaceAll(mode, "-", "")
	}
	if side == sideRaw {
		return "raw" + p
	}
	return "tb" + p
}

const (
	sideRaw  = "raw"
	sideOurs = "ours"

	rawQueue     = "raw-workers"
	rawDurStream = "RAWDUR_EVENTS"
	// rawDecision is the fixed reply of the raw PRE responder, the size of
	// the worker's decision for one no-op function.
	rawDecision = `{"id":"01JDQ7Z6W3S6K4V0Q5H3YB3M8C","allowed":true,"functions":[{"ref":"noop","result":"CONTINUE","ms":0.004}]}`
)

// childStats is what the worker side reports at "stop", over the measured
// phase (from "start").
type childStats struct {
	// Events is the number of events the function (raw: callback) handled.
	Events int64 `json:"events"`
	// CPUSeconds is the process's user+system CPU time.
	CPUSeconds float64 `json:"cpuSeconds"`
	// PeakRSSKB is VmHWM (the whole life of the process), RSSKB VmRSS now.
	PeakRSSKB int64 `json:"peakRssKb"`
	RSSKB     int64 `json:"rssKb"`
	// FirstNs and LastNs are the wall-clock times of the first and the
	// last event handled.
	FirstNs int64 `json:"firstNs"`
	LastNs  int64 `json:"lastNs"`
	// Latency is the end-to-end latency of POST events (send to function).
	Latency    sparse `json:"latency"`
	Goroutines int    `json:"goroutines"`
	// GoroutinesCreated and Mallocs are the goroutines started and the
	// heap objects allocated by the whole process (runtime/metrics), the
	// harness's own counting included.
	GoroutinesCreated uint64 `json:"goroutinesCreated"`
	Mallocs           uint64 `json:"mallocs"`
}

// The runtime/metrics the worker side reads at start and stop.
var runtimeSamples = []string{"/sched/goroutines-created:goroutines", "/gc/heap/allocs:objects"}

// runtimeCounts returns the goroutines started and the heap objects
// allocated so far by this process.
func runtimeCounts() (goroutines, mallocs uint64) {
	s := make([]metrics.Sample, len(runtimeSamples))
	for i, name := range runtimeSamples {
		s[i].Name = name
	}
	metrics.Read(s)
	if s[0].Value.Kind() == metrics.KindUint64 {
		goroutines = s[0].Value.Uint64()
	}
	if s[1].Value.Kind() == metrics.KindUint64 {
		mallocs = s[1].Value.Uint64()
	}
	return goroutines, mallocs
}

// counter counts handled events and records their latency.
type counter struct {
	ctl      *nats.Conn
	progress string
	total    atomic.Int64
	base     atomic.Int64 // total at start
	firstNs  atomic.Int64
	lastNs   atomic.Int64
	hist     atomic.Pointer[atomicHist]
}

// handled records one event; data is the event or its input, which carries
// the send time (POST).
func (c *counter) handled(data []byte, stamp bool) {
	now := time.Now().UnixNano()
	if stamp {
		if ts, ok := stampOf(data); ok {
			c.hist.Load().record(time.Duration(now - ts))
		}
	}
	c.lastNs.Store(now)
	n := c.total.Add(1)
	if n == c.base.Load()+1 {
		c.firstNs.Store(now)
	}
	if n%progressEvery == 0 {
		_ = c.ctl.Publish(c.progress, strconv.AppendInt(nil, n, 10))
	}
}

// runChild is the __worker subcommand.
func runChild(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) (err error) {
	fs := flag.NewFlagSet("__worker", flag.ContinueOnError)
	url := fs.String("url", "", "NATS URL")
	side := fs.String("side", sideOurs, "raw or ours")
	mode := fs.String("mode", modePre, "post-core, post-durable, pre or idle")
	fns := fs.Int("fns", 1, "ours, pre: registered functions (one matches)")
	lua := fs.Bool("lua", false, "ours, pre: the matching function is a Lua script")
	decisionLog := fs.Bool("decision-log", false, "ours, pre: the decision log on")
	ctlSubj := fs.String("ctl", "_bench.ctl", "control subject prefix")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the measured phase to this file")
	gcFloor := fs.Int64("gc-floor", 0, "heap floor of the garbage collector in bytes, as trigger-worker's gc.heap_floor_bytes (0: Go's default)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	say := func(format string, a ...any) { fmt.Fprintf(stdout, format+"\n", a...) }
	defer func() {
		if err != nil {
			say("error %s", strings.ReplaceAll(err.Error(), "\n", "; "))
		}
	}()

	ctl, err := nats.Connect(*url, nats.Name("trigger-bench-ctl"))
	if err != nil {
		return fmt.Errorf("control connection: %w", err)
	}
	defer ctl.Close()
	c := &counter{ctl: ctl, progress: *ctlSubj + ".progress"}
	c.hist.Store(new(atomicHist))
	if _, err := ctl.Subscribe(*ctlSubj+".count", func(m *nats.Msg) {
		_ = m.Respond(strconv.AppendInt(nil, c.total.Load(), 10))
	}); err != nil {
		return err
	}
	if err := ctl.Flush(); err != nil {
		return err
	}

	ms, err := setup(ctx, *url, *side, *mode, *fns, *lua, *decisionLog, c)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, ms.stop()) }()
	// As trigger-worker does once it serves (cmd/trigger-worker/gcfloor.go).
	if _, _, set := gcfloor.EnvSets(); *gcFloor > 0 && !set {
		defer gcfloor.Start(uint64(*gcFloor)).Stop()
	}
	say("ready")

	var base int64
	var cpu0 float64
	var gor0, mal0 uint64
	lines := bufio.NewScanner(stdin)
	for lines.Scan() {
		switch lines.Text() {
		case "start":
			c.hist.Store(new(atomicHist))
			base = c.total.Load()
			c.base.Store(base)
			c.firstNs.Store(0)
			if *cpuprofile != "" {
				f, err := os.Create(*cpuprofile)
				if err != nil {
					return err
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return err
				}
			}
			cpu0 = cpuSeconds()
			gor0, mal0 = runtimeCounts()
			if ms.begin != nil {
				if err := ms.begin(); err != nil {
					return err
				}
			}
			say("started")
		case "stop":
			cpu := cpuSeconds() - cpu0
			gor, mal := runtimeCounts()
			if *cpuprofile != "" {
				pprof.StopCPUProfile()
			}
			st := childStats{
				Events:            c.total.Load() - base,
				CPUSeconds:        cpu,
				PeakRSSKB:         procStatusKB("VmHWM"),
				RSSKB:             procStatusKB("VmRSS"),
				FirstNs:           c.firstNs.Load(),
				LastNs:            c.lastNs.Load(),
				Latency:           c.hist.Load().snapshot().sparse(),
				Goroutines:        runtime.NumGoroutine(),
				GoroutinesCreated: gor - gor0,
				Mallocs:           mal - mal0,
			}
			data, err := json.Marshal(st)
			if err != nil {
				return err
			}
			say("stats %s", data)
			return nil
		}
	}
	return errors.New("stdin closed before stop")
}

// measuredSide is the worker side of a run: stop shuts it down; begin, when
// not nil, is called at "start" (after the counters are read), for modes
// that take no events before the measured phase.
type measuredSide struct {
	stop  func() error
	begin func() error
}

// setupFunc starts the measured side of a mode registered with addMode.
type setupFunc func(ctx context.Context, url, prefix string, c *counter) (measuredSide, error)

// modes holds the worker sides of modes that live in files of their own
// (addMode), by mode and side.
var modes = map[string]setupFunc{}

// addMode registers the worker side of a mode for one side (sideRaw or
// sideOurs); called from init in the mode's file.
func addMode(mode, side string, f setupFunc) { modes[mode+"/"+side] = f }

// setup starts the measured side.
func setup(ctx context.Context, url, side, mode string, fns int, lua, decisionLog bool, c *counter) (measuredSide, error) {
	prefix := prefixOf(mode, side)
	if f, ok := modes[mode+"/"+side]; ok {
		return f(ctx, url, prefix, c)
	}
	var stop func() error
	var err error
	switch side {
	case sideRaw:
		stop, err = setupRaw(ctx, url, mode, prefix, c)
	case sideOurs:
		stop, err = setupOurs(ctx, url, mode, prefix, fns, lua, decisionLog, c)
	default:
		return measuredSide{}, fmt.Errorf("unknown side %q", side)
	}
	return measuredSide{stop: stop}, err
}

// setupRaw starts the raw NATS baseline: a queue subscriber (POST core), a
// JetStream pull consumer that acks (POST durable), or a responder that
// replies a fixed JSON document (PRE).
func setupRaw(ctx context.Context, url, mode, prefix string, c *counter) (func() error, error) {
	nc, err := nats.Connect(url, nats.Name("trigger-bench-raw"))
	if err != nil {
		return nil, err
	}
	switch mode {
	case modePostCore, modePre:
		typ, reply := "POST_CREATE", []byte(nil)
		if mode == modePre {
			typ, reply = "PRE_CREATE", []byte(rawDecision)
		}
		sub, err := nc.QueueSubscribe(prefix+"."+typ+"."+benchOption, rawQueue, func(m *nats.Msg) {
			if reply != nil {
				c.handled(nil, false)
				_ = m.Respond(reply)
				return
			}
			c.handled(m.Data, true)
		})
		if err != nil {
			nc.Close()
			return nil, err
		}
		// The worker's pending limits, so both sides buffer alike.
		if err := sub.SetPendingLimits(worker.DefaultPendingMsgs, worker.DefaultPendingBytes); err != nil {
			nc.Close()
			return nil, err
		}
		if err := nc.Flush(); err != nil {
			nc.Close()
			return nil, err
		}
		return func() error { return nc.Drain() }, nil
	case modePostDurable:
		js, err := jetstream.New(nc)
		if err != nil {
			nc.Close()
			return nil, err
		}
		cons, err := rawDurableConsumer(ctx, js, rawDurStream, prefix)
		if err != nil {
			nc.Close()
			return nil, err
		}
		cc, err := cons.Consume(func(m jetstream.Msg) {
			c.handled(m.Data(), true)
			_ = m.Ack()
		}, jetstream.PullMaxMessages(worker.DefaultMaxInFlight))
		if err != nil {
			nc.Close()
			return nil, err
		}
		return func() error {
			cc.Drain()
			<-cc.Closed()
			return nc.Drain()
		}, nil
	}
	nc.Close()
	return nil, fmt.Errorf("raw side has no mode %q", mode)
}

// rawDurableConsumer creates the raw stream and consumer with the settings
// the worker uses for its own (durable.go): interest retention, file
// storage, the same de-duplication window and ack settings.
func rawDurableConsumer(ctx context.Context, js jetstream.JetStream, stream, prefix string) (jetstream.Consumer, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:       stream,
		Subjects:   []string{prefix + ".POST_CREATE.*"},
		Retention:  jetstream.InterestPolicy,
		MaxAge:     worker.DefaultStreamMaxAge,
		MaxBytes:   worker.DefaultStreamMaxBytes,
		Duplicates: worker.DefaultDuplicateWindow,
		Storage:    jetstream.FileStorage,
		Discard:    jetstream.DiscardNew,
	})
	if err != nil {
		return nil, fmt.Errorf("raw stream: %w", err)
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, stream, jetstream.ConsumerConfig{
		Durable:        rawQueue,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        worker.DefaultAckWait,
		MaxDeliver:     -1,
		MaxAckPending:  worker.DefaultMaxAckPending,
		FilterSubjects: []string{prefix + ".POST_CREATE." + benchOption},
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("raw consumer: %w", err)
	}
	return cons, nil
}

// workerLogger is our worker sides' logger: trigger-worker's default
// (text, info), writing to a writer that drops the lines, so that an
// event costs what it costs with logging on.
func workerLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// setupOurs starts a triggerbus worker with no-op Go functions (or the Lua
// script) on its own connection, configured as trigger-worker would be,
// with the decision log on when decisionLog is set.
func setupOurs(ctx context.Context, url, mode, prefix string, n int, lua, decisionLog bool, c *counter) (func() error, error) {
	opts, err := natsconn.Options(natsconn.Config{URL: url, Name: "trigger-bench-worker"}, natsconn.Events{})
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, err
	}
	post := handlers.Func(func(_ context.Context, ev *event.Event) (handlers.Result, error) {
		c.handled(ev.Input, true)
		return handlers.Result{}, nil
	})
	pre := handlers.Func(func(context.Context, *event.Event) (handlers.Result, error) {
		c.handled(nil, false)
		return handlers.Result{}, nil
	})
	cfg := worker.Config{Prefix: prefix, Registry: mode == modePreRegistry, Logger: workerLogger()}
	if decisionLog {
		cfg.DecisionLog = &worker.DecisionLogConfig{}
	}
	var fns []worker.Function
	var closers []io.Closer
	switch mode {
	case modePostCore, modePostDurable:
		fns = append(fns, worker.Function{Ref: "noop", TriggerType: "POST_CREATE", Options: []string{benchOption}, Handler: post})
		if mode == modePostDurable {
			cfg.Durable = &worker.DurableConfig{}
		}
	case modePre, modePreRegistry:
		if lua {
			f, closer, err := luaFunction()
			if err != nil {
				nc.Close()
				return nil, err
			}
			fns = append(fns, f)
			closers = append(closers, closer)
		} else {
			fns = append(fns, worker.Function{Ref: "noop", TriggerType: "PRE_CREATE", Options: []string{benchOption}, Handler: pre})
		}
		fns = append(fns, fillers(n-1)...)
	case modeIdle:
		fns = append(fns,
			worker.Function{Ref: "noop_pre", TriggerType: "PRE_CREATE", Options: []string{benchOption}, Handler: pre},
			worker.Function{Ref: "noop_post", TriggerType: "POST_CREATE", Options: []string{benchOption}, Handler: post})
	default:
		nc.Close()
		return nil, fmt.Errorf("our side has no mode %q", mode)
	}
	closeAll := func() error {
		var errs []error
		for _, cl := range closers {
			errs = append(errs, cl.Close())
		}
		return errors.Join(errs...)
	}
	w, err := worker.New(nc, cfg, fns...)
	if err != nil {
		nc.Close()
		return nil, errors.Join(err, closeAll())
	}
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := w.Start(sctx); err != nil {
		_ = w.Stop(context.Background())
		nc.Close()
		return nil, errors.Join(err, closeAll())
	}
	return func() error {
		err := w.Stop(context.Background())
		nc.Close()
		return errors.Join(err, closeAll())
	}, nil
}

// subjectOf is the subject of the scenario's event for a mode and side.
func subjectOf(mode, side string) string {
	typ := "POST_CREATE"
	if mode == modePre {
		typ = "PRE_CREATE"
	}
	return prefixOf(mode, side) + "." + typ + "." + benchOption
}
