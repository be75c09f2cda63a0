package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/triggerbus/triggerbus/config"
	"github.com/triggerbus/triggerbus/pkg/subjects"
)

// Scenario names, for --scenarios, in the order they run; rows added with
// addRow come before "idle".
var scenarioNames = []string{"post-core", "post-durable", "pre-seq", "pre-conc", "pre-lua", "pre-dlog", "pre-none", "matcher", "idle"}

// extraRows are the rows defined in files of their own, by scenario name.
var extraRows = map[string]func(b *bench) *scenario{}

// addRow adds a row to the table, run before the idle worker: name is its
// scenario name for --scenarios, build returns its variants. A row lives in
// a file of its own that calls addRow (and addMode for a worker side of its
// own) from init; see drain.go.
func addRow(name string, build func(b *bench) *scenario) {
	extraRows[name] = build
	i := slices.Index(scenarioNames, "idle")
	scenarioNames = slices.Insert(scenarioNames, i, name)
}

// options are the command line of the bench.
type options struct {
	duration    time.Duration
	warmup      time.Duration
	runs        int
	concurrency int
	payloadSize int
	window      int
	drainEvents int
	scale       []int
	scenarios   []string
	url         string
	jsonPath    string
	cpuprofile  string
	idleWait    time.Duration
	gcFloor     int64 // bytes, ours; 0 off
	rawGCFloor  int64 // bytes, raw; 0 off, -1 the same as gcFloor
	quick       bool
	args        []string
}

// floorOf is the heap floor of side's worker-side processes.
func (o options) floorOf(side string) int64 {
	if side == sideRaw && o.rawGCFloor >= 0 {
		return o.rawGCFloor
	}
	return o.gcFloor
}

func parseOptions(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("trigger-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: trigger-bench [flags]\n\n"+
			"Measures triggerbus against raw NATS on the same server and process layout,\n"+
			"interleaving raw and triggerbus runs. Scenarios: %s.\n\nflags:\n", strings.Join(scenarioNames, ", "))
		fs.PrintDefaults()
	}
	fs.DurationVar(&o.duration, "duration", 1750*time.Millisecond, "measured time of each run (quick: 250ms)")
	fs.DurationVar(&o.warmup, "warmup", 250*time.Millisecond, "unmeasured load before each run's measured time (quick: 100ms)")
	fs.IntVar(&o.runs, "runs", 5, "runs of each variant, interleaved (quick: 1)")
	fs.IntVar(&o.concurrency, "concurrency", 32, "concurrent requesters (pre-conc) and publishers (post-durable)")
	fs.IntVar(&o.payloadSize, "payload-size", 300, "event size in bytes (the input is padded to it)")
	fs.IntVar(&o.window, "window", 4096, "POST: most events sent but not yet handled")
	fs.IntVar(&o.drainEvents, "drain-events", 100000, "post-drain: events preloaded into the stream before each run (quick: 2000)")
	scale := fs.String("scale", "10,1000,10000", "matcher: registered function counts, the first one the baseline (quick: 10,100,1000)")
	scen := fs.String("scenarios", strings.Join(scenarioNames, ","), "comma-separated scenarios to run")
	fs.StringVar(&o.url, "url", "", "NATS server to use; empty starts one (nats-server embedded in a child process, JetStream on)")
	fs.StringVar(&o.jsonPath, "json", "", "also write the results as JSON to this file")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of each worker-side process's measured phase into this directory (and, for PRE rows, of the driver's: <name>-driver.pprof)")
	fs.DurationVar(&o.idleWait, "idle-wait", 2*time.Second, "idle: how long the idle worker runs before its RSS is read (quick: 500ms)")
	fs.Int64Var(&o.gcFloor, "gc-floor", config.DefaultHeapFloorBytes, "heap floor of the garbage collector of our worker sides, in bytes, as trigger-worker's gc.heap_floor_bytes (0: Go's default)")
	fs.Int64Var(&o.rawGCFloor, "raw-gc-floor", 0, "heap floor of the raw worker sides, in bytes (0: Go's default, as a nats.go program has; -1: the same as --gc-floor)")
	fs.BoolVar(&o.quick, "quick", false, "a few seconds in all, for CI: 1 short run per variant and a small matcher scale; fails only if a scenario delivers no events")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if o.quick {
		if !set["duration"] {
			o.duration = 250 * time.Millisecond
		}
		if !set["warmup"] {
			o.warmup = 100 * time.Millisecond
		}
		if !set["runs"] {
			o.runs = 1
		}
		if !set["scale"] {
			*scale = "10,100,1000"
		}
		if !set["drain-events"] {
			o.drainEvents = 2000
		}
		if !set["idle-wait"] {
			o.idleWait = 500 * time.Millisecond
		}
	}
	for f := range strings.SplitSeq(*scale, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return o, fmt.Errorf("--scale: %q is not a positive count", f)
		}
		o.scale = append(o.scale, n)
	}
	for s := range strings.SplitSeq(*scen, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !slices.Contains(scenarioNames, s) {
			return o, fmt.Errorf("--scenarios: unknown scenario %q (want some of %s)", s, strings.Join(scenarioNames, ","))
		}
		o.scenarios = append(o.scenarios, s)
	}
	switch {
	case o.duration <= 0 || o.warmup < 0:
		return o, errors.New("--duration must be positive and --warmup not negative")
	case o.runs < 1 || o.concurrency < 1 || o.drainEvents < 1:
		return o, errors.New("--runs, --concurrency and --drain-events must be at least 1")
	case o.window <= 2*progressEvery:
		return o, fmt.Errorf("--window must be more than %d", 2*progressEvery)
	}
	o.args = args
	return o, nil
}

// bench is one invocation: the server, the driver's connections, the
// results.
type bench struct {
	opt     options
	exe     string
	url     string
	server  *child // nil with --url
	nc      *nats.Conn
	ctl     *nats.Conn
	payload *payload
	stderr  io.Writer
	seq     int
}

// driveFunc measures one run of a variant.
type driveFunc func(ctx context.Context, b *bench, r *runEnv) (*measured, error)

func postDrive(conc int) driveFunc {
	return func(ctx context.Context, b *bench, r *runEnv) (*measured, error) { return b.drivePost(ctx, r, conc) }
}

func preDrive(conc int) driveFunc {
	return func(ctx context.Context, b *bench, r *runEnv) (*measured, error) { return b.drivePre(ctx, r, conc) }
}

// variant is one side of a scenario.
type variant struct {
	name  string
	side  string
	mode  string
	args  []string
	drive driveFunc
}

// scenario is a row group of the table: its first variant is the baseline
// the others are compared with.
type scenario struct {
	name     string
	title    string
	variants []variant
	pre      bool // latency ratios matter
	delta    bool // compare p50 as a difference (µs), not a ratio
	target   string
	met      func(r *ratios) bool
}

func (b *bench) scenario(name string) *scenario {
	conc := b.opt.concurrency
	rawOurs := func(mode string, d driveFunc) []variant {
		return []variant{
			{name: sideRaw, side: sideRaw, mode: mode, drive: d},
			{name: sideOurs, side: sideOurs, mode: mode, drive: d},
		}
	}
	switch name {
	case "post-core":
		return &scenario{name: name, title: "POST core", variants: rawOurs(modePostCore, postDrive(1)),
			target: "events/s >= 0.6x raw", met: func(r *ratios) bool { return r.Throughput.Median >= 0.6 }}
	case "post-durable":
		return &scenario{name: name, title: "POST durable", variants: rawOurs(modePostDurable, postDrive(conc)),
			target: "events/s >= 0.7x raw", met: func(r *ratios) bool { return r.Throughput.Median >= 0.7 }}
	case "pre-seq":
		return &scenario{name: name, title: "PRE sequential", variants: rawOurs(modePre, preDrive(1)), pre: true,
			target: "p50 <= 1.2x, p99 <= 1.5x raw", met: func(r *ratios) bool { return r.P50.Median <= 1.2 && r.P99.Median <= 1.5 }}
	case "pre-conc":
		return &scenario{name: name, title: fmt.Sprintf("PRE concurrent (%d)", conc), variants: rawOurs(modePre, preDrive(conc)), pre: true,
			target: "req/s >= 0.7x raw", met: func(r *ratios) bool { return r.Throughput.Median >= 0.7 }}
	case "pre-lua":
		return &scenario{name: name, title: "PRE Lua", pre: true, delta: true,
			variants: []variant{
				{name: "go", side: sideOurs, mode: modePre, drive: preDrive(1)},
				{name: "lua", side: sideOurs, mode: modePre, args: []string{"--lua"}, drive: preDrive(1)},
			},
			target: "p50 <= go + 50 µs", met: func(r *ratios) bool { return r.DeltaP50Us.Median <= 50 }}
	case "pre-dlog":
		return &scenario{name: name, title: "PRE decision log", pre: true,
			variants: []variant{
				{name: "log off", side: sideOurs, mode: modePre, drive: preDrive(1)},
				{name: "log on", side: sideOurs, mode: modePre, args: []string{"--decision-log"}, drive: preDrive(1)},
			},
			target: "p50 <= 1.1x log off", met: func(r *ratios) bool { return r.P50.Median <= 1.1 }}
	case "pre-none":
		return preNoneScenario()
	case "matcher":
		sc := &scenario{name: name, title: "matcher scale (PRE seq)", pre: true,
			target: fmt.Sprintf("p50 at %d <= 1.1x at %d", b.opt.scale[len(b.opt.scale)-1], b.opt.scale[0]),
			met:    func(r *ratios) bool { return r.P50.Median <= 1.1 }}
		for _, n := range b.opt.scale {
			sc.variants = append(sc.variants, variant{name: fmt.Sprintf("%d fns", n), side: sideOurs, mode: modePre,
				args: []string{"--fns", strconv.Itoa(n)}, drive: preDrive(1)})
		}
		return sc
	}
	if build, ok := extraRows[name]; ok {
		return build(b)
	}
	return nil
}

// runBench is the bench command.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	opt, err := parseOptions(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	b := &bench{opt: opt, exe: exe, url: opt.url, payload: newPayload(opt.payloadSize), stderr: stderr}
	if opt.cpuprofile != "" {
		if err := os.MkdirAll(opt.cpuprofile, 0o755); err != nil {
			return err
		}
	}
	rep := &report{
		Command:      append([]string{"trigger-bench"}, opt.args...),
		Started:      time.Now().UTC(),
		GoVersion:    runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH,
		NumCPU:       runtime.NumCPU(),
		GOMAXPROCS:   runtime.GOMAXPROCS(0),
		CPUModel:     cpuModel(),
		LoadAvgStart: loadAverage(),
		Options: reportOptions{
			Duration: opt.duration.String(), Warmup: opt.warmup.String(), Runs: opt.runs, Concurrency: opt.concurrency,
			PayloadBytes: len(b.payload.raw("POST_CREATE", time.Now().UnixNano())), Window: opt.window, Scale: opt.scale,
			GCFloorBytes: opt.floorOf(sideOurs), RawGCFloorBytes: opt.floorOf(sideRaw),
			Quick: opt.quick, URL: opt.url,
		},
	}
	if b.url == "" {
		dir, err := os.MkdirTemp("", "trigger-bench-js-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		b.server, err = startChild(ctx, "nats-server", exe, "__server", "--store", dir)
		if err != nil {
			return err
		}
		defer func() {
			if cerr := b.server.close(30 * time.Second); cerr != nil {
				err = errors.Join(err, cerr)
			}
		}()
		if b.url, err = b.server.expect("url", 30*time.Second); err != nil {
			return err
		}
	}
	rep.Topology = b.topology()
	if b.nc, err = nats.Connect(b.url, nats.Name("trigger-bench-driver")); err != nil {
		return err
	}
	defer b.nc.Close()
	if b.ctl, err = nats.Connect(b.url, nats.Name("trigger-bench-ctl")); err != nil {
		return err
	}
	defer b.ctl.Close()
	fmt.Fprintf(stderr, "trigger-bench: %s\n", rep.Topology)

	for _, name := range opt.scenarios {
		if name == "idle" {
			idle, err := b.idle(ctx)
			if err != nil {
				rep.Failures = append(rep.Failures, fmt.Sprintf("idle: %v", err))
				continue
			}
			rep.Idle = idle
			continue
		}
		row := b.runScenario(ctx, b.scenario(name))
		rep.Rows = append(rep.Rows, row)
		rep.Failures = append(rep.Failures, row.Failures...)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	rep.LoadAvgEnd = loadAverage()
	if b.server == nil {
		b.cleanup(ctx)
	}
	rep.print(stdout)
	if opt.jsonPath != "" {
		data, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(opt.jsonPath, append(data, '\n'), 0o644); err != nil {
			return err
		}
	}
	if len(rep.Failures) > 0 {
		return fmt.Errorf("%d run(s) failed:\n  %s", len(rep.Failures), strings.Join(rep.Failures, "\n  "))
	}
	return nil
}

func (b *bench) topology() string {
	worker := "worker side (`trigger-bench __worker`: the raw NATS subscriber/responder, or a triggerbus worker; a new process per run)"
	if b.server == nil {
		return "load driver (this trigger-bench process) and " + worker + ", both connected to the NATS server at " + b.url
	}
	return "3 processes over TCP on 127.0.0.1: load driver (this trigger-bench process) -> nats-server v" + serverVersion() +
		" embedded in `trigger-bench __server` (JetStream on, file store in a temp dir) -> " + worker
}

// runScenario runs every variant of sc, runs times, interleaved.
func (b *bench) runScenario(ctx context.Context, sc *scenario) *rowResult {
	row := &rowResult{Scenario: sc.name, Title: sc.title, Baseline: sc.variants[0].name, Target: sc.target}
	for _, v := range sc.variants {
		row.Variants = append(row.Variants, &variantResult{Name: v.name})
	}
	for i := 1; i <= b.opt.runs && ctx.Err() == nil; i++ {
		for j, v := range sc.variants {
			s, err := b.runOne(ctx, sc, &v, i)
			if err != nil {
				msg := fmt.Sprintf("%s %s run %d: %v", sc.name, v.name, i, err)
				row.Failures = append(row.Failures, msg)
				fmt.Fprintf(b.stderr, "  FAILED %s\n", msg)
				row.Variants[j].Samples = append(row.Variants[j].Samples, nil)
				continue
			}
			row.Variants[j].Samples = append(row.Variants[j].Samples, s)
			fmt.Fprintf(b.stderr, "  %-12s %-9s run %d/%d: %10.0f events/s  p50 %7.1f µs  p99 %8.1f µs  worker CPU %.3f s/100k  RSS %.1f MiB\n",
				sc.name, v.name, i, b.opt.runs, s.EventsPerSec, s.P50Us, s.P99Us, s.WorkerCPUPer100k, s.WorkerPeakRSSMiB)
		}
	}
	row.summarize(sc)
	return row
}

// runOne runs one variant once, in a new worker-side process.
func (b *bench) runOne(ctx context.Context, sc *scenario, v *variant, i int) (*sample, error) {
	b.seq++
	ctl := fmt.Sprintf("_bench.%d.%d", os.Getpid(), b.seq)
	args := []string{"__worker", "--url", b.url, "--ctl", ctl, "--side", v.side, "--mode", v.mode, "--gc-floor", strconv.FormatInt(b.opt.floorOf(v.side), 10)}
	args = append(args, v.args...)
	env := &runEnv{ctl: ctl, mode: v.mode, side: v.side}
	if b.opt.cpuprofile != "" {
		f := fmt.Sprintf("%s-%s-run%d", sc.name, strings.ReplaceAll(v.name, " ", ""), i)
		args = append(args, "--cpuprofile", filepath.Join(b.opt.cpuprofile, f+".pprof"))
		env.driverProfile = filepath.Join(b.opt.cpuprofile, f+"-driver.pprof")
	}
	c, err := startChild(ctx, "worker side ("+sc.name+" "+v.name+")", b.exe, args...)
	if err != nil {
		return nil, err
	}
	if _, err := c.expect("ready", 2*time.Minute); err != nil {
		c.kill()
		return nil, err
	}
	srv0, drv0 := b.serverCPU(), cpuSeconds()
	env.child = c
	m, err := v.drive(ctx, b, env)
	if err != nil {
		c.kill()
		return nil, err
	}
	srv1, drv1 := b.serverCPU(), cpuSeconds()
	if err := c.close(30 * time.Second); err != nil {
		return nil, err
	}
	if m.events == 0 || m.seconds <= 0 {
		return nil, fmt.Errorf("no events delivered (%d errors, first: %q)", m.errs, m.firstEr)
	}
	s := &sample{
		Run:              i,
		Events:           m.events,
		Seconds:          m.seconds,
		EventsPerSec:     float64(m.events) / m.seconds,
		P50Us:            us(m.lat.quantile(0.50)),
		P90Us:            us(m.lat.quantile(0.90)),
		P99Us:            us(m.lat.quantile(0.99)),
		WorkerCPUSeconds: m.stats.CPUSeconds,
		WorkerCPUPer100k: m.stats.CPUSeconds / float64(m.events) * 1e5,
		WorkerPeakRSSMiB: float64(m.stats.PeakRSSKB) / 1024,
		Errors:           m.errs,
		Lost:             m.lost,
		FirstError:       m.firstEr,
		Goroutines:       m.stats.Goroutines,
	}
	s.GoroutinesPerEvent = float64(m.stats.GoroutinesCreated) / float64(m.events)
	s.AllocsPerEvent = float64(m.stats.Mallocs) / float64(m.events)
	// The driver's and the server's CPU cover the warm-up too: events
	// handled then are not in m.events, so these overstate a little.
	s.DriverCPUPer100k = (drv1 - drv0) / float64(m.events) * 1e5
	if srv0 >= 0 && srv1 >= 0 {
		s.ServerCPUPer100k = (srv1 - srv0) / float64(m.events) * 1e5
	}
	return s, nil
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// serverCPU returns the server child's CPU seconds, -1 when unknown.
func (b *bench) serverCPU() float64 {
	if b.server == nil {
		return -1
	}
	s, err := procCPUSeconds(b.server.pid())
	if err != nil {
		return -1
	}
	return s
}

// idle starts a worker with a PRE and a POST function on the bench's server
// (so without an embedded server of its own), lets it sit without load for
// --idle-wait and reads its RSS.
func (b *bench) idle(ctx context.Context) (*idleResult, error) {
	b.seq++
	ctl := fmt.Sprintf("_bench.%d.%d", os.Getpid(), b.seq)
	c, err := startChild(ctx, "worker side (idle)", b.exe, "__worker", "--url", b.url, "--ctl", ctl, "--side", sideOurs, "--mode", modeIdle,
		"--gc-floor", strconv.FormatInt(b.opt.floorOf(sideOurs), 10))
	if err != nil {
		return nil, err
	}
	if _, err := c.expect("ready", time.Minute); err != nil {
		c.kill()
		return nil, err
	}
	select {
	case <-time.After(b.opt.idleWait):
	case <-ctx.Done():
		c.kill()
		return nil, ctx.Err()
	}
	st, err := stopChild(c)
	if err != nil {
		c.kill()
		return nil, err
	}
	if err := c.close(30 * time.Second); err != nil {
		return nil, err
	}
	r := &idleResult{Wait: b.opt.idleWait.String(), RSSMiB: float64(st.RSSKB) / 1024, PeakRSSMiB: float64(st.PeakRSSKB) / 1024,
		Goroutines: st.Goroutines, Target: "RSS < 64 MiB"}
	r.TargetMet = r.RSSMiB < 64
	fmt.Fprintf(b.stderr, "  idle worker: RSS %.1f MiB after %v (peak %.1f MiB)\n", r.RSSMiB, b.opt.idleWait, r.PeakRSSMiB)
	return r, nil
}

// cleanup removes the streams and buckets the bench made on a server it
// does not own.
func (b *bench) cleanup(ctx context.Context) {
	js, err := jetstream.New(b.nc)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_ = js.DeleteStream(ctx, rawDurStream)
	_ = js.DeleteStream(ctx, rawDrainStream)
	for _, mode := range []string{modePostDurable, modePostDrain} {
		ours, _ := subjects.NewScheme(prefixOf(mode, sideOurs))
		for _, s := range []string{ours.EventStream(), ours.DeadLetterStream()} {
			_ = js.DeleteStream(ctx, s)
		}
		_ = js.DeleteKeyValue(ctx, ours.EventStream()+"_DONE")
	}
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }
