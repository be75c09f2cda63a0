package worker

// Lock order: Worker.mu is the only mutex of this file; Metrics.mu is taken
// on its own and never while Worker.mu is held.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/triggerbus/triggerbus/internal/cowmap"
	"github.com/triggerbus/triggerbus/internal/matcher"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/subjects"
)

// Defaults of [Config].
const (
	DefaultMaxInFlight     = 256
	DefaultShutdownTimeout = 10 * time.Second
	DefaultPendingMsgs     = 65536
	DefaultPendingBytes    = 64 << 20
)

// Errors of the worker.
var (
	// ErrStopped is returned by calls on a worker that has been stopped.
	ErrStopped = errors.New("worker: stopped")
	// ErrScheduleNeedsJetStream: SCHEDULED functions need durable delivery.
	ErrScheduleNeedsJetStream = errors.New("worker: SCHEDULED functions need JetStream (durable delivery); the worker has none")
)

func hasScheduled(set *matcher.Set) bool {
	for _, e := range set.Entries() {
		if e.Schedule != nil {
			return true
		}
	}
	return false
}

// Config configures a [Worker]. Zero values mean the defaults.
type Config struct {
	// Prefix is the subject prefix; "" means subjects.DefaultPrefix.
	Prefix string
	// Queue is the queue group the fleet shares; "" means subjects.DefaultQueue.
	Queue string
	// MaxInFlight bounds the events handled at once; 0 means DefaultMaxInFlight.
	MaxInFlight int
	// MaxEventBytes bounds an event's size; 0 means event.DefaultMaxBytes.
	MaxEventBytes int
	// ShutdownTimeout bounds how long Stop waits for in-flight work; 0 means
	// DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// LoopKey is the fleet key that signs Trigger-Origin values; empty means
	// unsigned values, all honoured.
	LoopKey []byte
	// LoopTTL is how long a signed Trigger-Origin value is valid; 0 means
	// DefaultOriginTTL. More than MaxOriginTTL is an error.
	LoopTTL time.Duration
	// PendingMsgs bounds the core messages waiting for a dispatcher, PRE
	// requests and POST events each (all subjects of a kind share one
	// queue; with Durable, POST events come through the consumer and only
	// PRE requests are queued); 0 means DefaultPendingMsgs. NATS drops what
	// does not fit and reports a slow consumer.
	PendingMsgs int
	// PendingBytes is no longer applied: the subscriptions deliver into
	// the worker's queues, which only count messages (each at most the
	// server's max_payload). Kept so that configurations still compile.
	PendingBytes int
	// Registry, when true, records the PRE subjects that have functions in
	// a JetStream key-value bucket, so that callers can tell "no trigger" from
	// "no worker" (see registry.go). It needs JetStream.
	Registry bool
	// Instance names this worker in the registry: it adds and removes only
	// the registrations made under this name. Two running processes must
	// not share one. "" means [DefaultInstance] (the host name and a random
	// suffix: a restarted process is a new instance). Letters, digits, '.',
	// '_' and '-', starting with a letter or digit, at most 128 bytes.
	Instance string
	// RegistryRefresh is how often the worker rewrites its registrations
	// with a new last-seen time (and writes again what failed); 0 means
	// DefaultRegistryRefresh, negative never. Registrations never expire:
	// the time only tells operators live instances from gone ones.
	RegistryRefresh time.Duration
	// RegistryReplicas is the replication factor the registry bucket is
	// created with; 0 means 1. A bucket that exists is used as it is: its
	// replicas and its placement (the cluster of a supercluster that holds
	// it) stay what the worker that created it, or the operator, chose.
	RegistryReplicas int
	// Durable, when set, delivers POST and SCHEDULED events through a
	// JetStream stream and durable consumer (at least once), and runs the
	// scheduler; nil delivers them through queue subscriptions (at most once)
	// and a SCHEDULED function is an error.
	Durable *DurableConfig
	// DecisionLog, when set, publishes every PRE decision to the decision
	// log stream (see [DecisionLogConfig]); nil logs none. It needs
	// JetStream.
	DecisionLog *DecisionLogConfig
	// Logger receives the worker's logs; nil discards them.
	Logger *slog.Logger
	// Metrics records what the worker does; nil keeps them on a private registry.
	Metrics *Metrics
	// Name is the NATS service name the worker announces itself under for
	// discovery ($SRV.PING/INFO/STATS, `nats micro ls`; see discovery.go);
	// "" means DefaultServiceName. Letters, digits, '-' and '_' only.
	Name string
	// Version is the build version announced for discovery, mapped to SemVer
	// by [ServiceVersion]; "" means this module's version in the binary's
	// build info, else "0.0.0-dev".
	Version string
	// TracerProvider, when set, traces every event the worker takes in,
	// continuing the trace its publisher started: the event, each function
	// call, the reply or ack (see trace.go). nil traces nothing, at no cost
	// on the path of an event.
	TracerProvider trace.TracerProvider
	// Propagator reads the trace context of events and writes it into what
	// functions send (webhook requests, messages on their bus); nil means
	// W3C trace context (traceparent, tracestate). Only with TracerProvider.
	Propagator propagation.TextMapPropagator
}

func (c *Config) setDefaults() {
	if c.Prefix == "" {
		c.Prefix = subjects.DefaultPrefix
	}
	if c.Queue == "" {
		c.Queue = subjects.DefaultQueue
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.MaxEventBytes <= 0 {
		c.MaxEventBytes = event.DefaultMaxBytes
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.PendingMsgs <= 0 {
		c.PendingMsgs = DefaultPendingMsgs
	}
	if c.PendingBytes <= 0 {
		c.PendingBytes = DefaultPendingBytes
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Instance == "" {
		c.Instance = DefaultInstance()
	}
	if c.RegistryRefresh == 0 {
		c.RegistryRefresh = DefaultRegistryRefresh
	}
}

// Worker handles trigger events from NATS. Create it with [New], start it
// with [Worker.Start] and stop it with [Worker.Stop]. Its methods are safe for
// concurrent use; Stop is idempotent.
type Worker struct {
	cfg     Config
	nc      *nats.Conn
	scheme  subjects.Scheme
	origin  *Origin
	metrics *Metrics
	log     *slog.Logger
	limits  event.Limits
	parsed  cowmap.Map[string, parsedSubject] // the subjects parse has seen
	// bus, when set, is the bus of every call instead of one on nc: an
	// [Offline] worker's.
	bus handlers.Bus

	// state is the current function set with its per-function metrics.
	state atomic.Pointer[runState]

	// pre and post receive the messages of the PRE and the POST
	// subscriptions straight from the connection's read loop
	// (ChanQueueSubscribe), each bounded by PendingMsgs; the dispatchers
	// read them. Two queues, so that a POST backlog never stands in front
	// of a PRE request.
	pre, post chan *nats.Msg
	lane      *preLane       // takes the PRE queue; nil when MaxInFlight leaves no room for it
	work      chan job       // durable messages handed over by submit; a few wait, so the consumer runs ahead of the dispatchers
	stopping  chan struct{}  // closed when Stop begins
	done      chan struct{}  // closed when Stop has finished
	wg        sync.WaitGroup // dispatchers

	// dispatchers counts the running dispatchers and idle those waiting
	// for work; poolMu orders starting one against the stop (poolClosed),
	// so that no WaitGroup.Add follows the final Wait.
	dispatchers atomic.Int32
	idle        atomic.Int32
	// finished counts the jobs the dispatchers have run; growKick wakes
	// the grower, which starts more dispatchers when all are busy with
	// slow calls (see spare).
	finished   atomic.Uint64
	growKick   chan struct{}
	poolMu     sync.Mutex
	poolClosed bool
	inflight   sync.WaitGroup // handed-off work (PRE watchdog replies, async callbacks, progress signals)

	// progress signals progress for the durable events running, until
	// progressStop is closed once the dispatchers have finished; nil
	// without durable delivery.
	progress     *progressAcks
	progressStop chan struct{}

	mu         sync.Mutex
	subs       map[string]*nats.Subscription
	started    bool
	stopped    atomic.Bool
	subscribed atomic.Bool
	draining   atomic.Bool
	active     atomic.Uint64 // the fleet's active bundle revision (SetActive)
	registry   *registry
	durable    *durable
	dlog       *decisionLog // nil when the decision log is off
	sched      *scheduler
	disc       discovery // the $SRV discovery service (discovery.go)

	// tracer and prop trace events (trace.go); both nil when tracing is off.
	tracer trace.Tracer
	prop   propagation.TextMapPropagator

	// stopRefresh ends the registry's refresh loop; nil when none runs.
	stopRefresh context.CancelFunc
	// stopStats ends the stream gauges' refresh loop; nil when none runs.
	stopStats context.CancelFunc
}

// runState is an immutable snapshot of the functions a worker runs.
type runState struct {
	set *matcher.Set
	fns map[*matcher.Entry]*function
	// rev is the bundle revision set came from; 0 when it did not come
	// from a bundle.
	rev uint64
}

// New returns a worker that serves fns on the connection nc once started
// ([Worker.Start]). The connection stays the caller's: Stop drains the
// worker's subscriptions, never the connection. Every function is checked
// first; any problem (see [FunctionError]) is an error and no worker. The
// functions may be replaced later with [Worker.Replace].
func New(nc *nats.Conn, cfg Config, fns ...Function) (*Worker, error) {
	if nc == nil {
		return nil, errors.New("worker: nil connection")
	}
	set, err := compile(fns)
	if err != nil {
		return nil, err
	}
	cfg.setDefaults()
	if cfg.LoopTTL > MaxOriginTTL {
		return nil, fmt.Errorf("worker: loop TTL %v is longer than the maximum %v: a leaked Trigger-Origin would stay valid that long", cfg.LoopTTL, MaxOriginTTL)
	}
	if cfg.Durable != nil {
		d := *cfg.Durable
		d.Backoff = slices.Clone(d.Backoff)
		d.setDefaults()
		cfg.Durable = &d
	}
	scheme, err := subjects.NewScheme(cfg.Prefix)
	if err != nil {
		return nil, fmt.Errorf("worker: %w", err)
	}
	if err := subjects.ValidateToken(cfg.Queue); err != nil {
		return nil, fmt.Errorf("worker: queue %q: %w", cfg.Queue, err)
	}
	if err := validInstance(cfg.Instance); err != nil {
		return nil, err
	}
	metrics := cfg.Metrics
	if metrics == nil {
		if metrics, err = NewMetrics(prometheus.NewRegistry()); err != nil {
			return nil, err
		}
	}
	w := &Worker{
		cfg:      cfg,
		nc:       nc,
		scheme:   scheme,
		origin:   NewOrigin(cfg.LoopKey, cfg.LoopTTL),
		metrics:  metrics,
		log:      cfg.Logger.With("component", "worker"),
		limits:   event.Limits{MaxBytes: cfg.MaxEventBytes},
		pre:      make(chan *nats.Msg, cfg.PendingMsgs),
		post:     make(chan *nats.Msg, postQueue(cfg)),
		work:     make(chan job, min(cfg.MaxInFlight, max(4, 2*runtime.GOMAXPROCS(0)))),
		stopping: make(chan struct{}),
		done:     make(chan struct{}),
		subs:     make(map[string]*nats.Subscription),

		progressStop: make(chan struct{}),
	}
	w.setTracing(cfg)
	w.state.Store(w.newState(set))
	if w.dlog, err = w.newDecisionLog(); err != nil {
		return nil, err
	}
	if cfg.Durable != nil {
		js, err := jetstream.New(nc)
		if err != nil {
			return nil, fmt.Errorf("worker: %w", err)
		}
		w.durable = &durable{cfg: *cfg.Durable, js: js}
		w.progress = newProgressAcks(cfg.Durable.AckWait)
	} else if hasScheduled(set) {
		return nil, ErrScheduleNeedsJetStream
	}
	return w, nil
}

// postQueue is the room of the POST queue: none with durable delivery,
// whose POST events come through the consumer (updateConsumer), never a
// core subscription. The queue's buffer is a slice of PendingMsgs
// pointers that every garbage collection scans, empty or not.
func postQueue(cfg Config) int {
	if cfg.Durable != nil {
		return 0
	}
	return cfg.PendingMsgs
}

func (w *Worker) newState(set *matcher.Set) *runState {
	st := &runState{set: set, fns: make(map[*matcher.Entry]*function, set.Len())}
	counts := make(map[string]int)
	for _, e := range set.Entries() {
		f := w.function(e)
		st.fns[e] = f
		counts[e.Type.Name]++
		// The per-function series alerts count from zero exist from the
		// start where they can occur; the others come on first use
		// (fnMetrics).
		if e.Schedule != nil {
			w.metrics.ScheduleFires.WithLabelValues(e.Ref)
		}
		if e.Type.IsPre() && e.FailurePolicy == FailOpen {
			f.failOpenCounter()
		}
		if !e.Type.IsPre() && w.cfg.Durable != nil {
			w.metrics.DeadLetters.WithLabelValues(e.Ref)
			w.metrics.DeadLettersCut.WithLabelValues(e.Ref)
		}
	}
	for _, t := range subjects.Types() {
		w.metrics.FunctionsRegistered.WithLabelValues(t.Name).Set(float64(counts[t.Name]))
	}
	return st
}

// Instance returns the worker's instance name in the registry
// ([Config.Instance]).
func (w *Worker) Instance() string { return w.cfg.Instance }

// Scheme returns the worker's subject scheme.
func (w *Worker) Scheme() subjects.Scheme { return w.scheme }

// Origin returns the worker's Trigger-Origin signer.
func (w *Worker) Origin() *Origin { return w.origin }

// Start starts the dispatchers and subscribes to the subjects the current
// functions need. It returns once the subscriptions are in place.
func (w *Worker) Start(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped.Load() {
		return ErrStopped
	}
	if w.started {
		return errors.New("worker: already started")
	}
	w.started = true
	w.growKick = make(chan struct{}, 1)
	core := w.coreDispatchers()
	if w.usesPreLane() {
		// The lane is one of the core (prelane.go).
		w.startPreLane()
		core--
	}
	for range core {
		w.dispatchers.Add(1)
		w.wg.Add(1)
		go w.dispatcher(true)
	}
	w.inflight.Add(1)
	go func() {
		defer w.inflight.Done()
		w.grower()
	}()
	if w.cfg.Registry {
		w.registry = newRegistry(w.nc, w.scheme, w.cfg.Instance, w.cfg.RegistryReplicas, w.log, w.metrics.RegistryWriteFailures)
	}
	if w.durable != nil {
		w.inflight.Add(1)
		go func() {
			defer w.inflight.Done()
			w.progress.run(w.progressStop)
		}()
		if err := w.setupStreams(ctx); err != nil {
			return err
		}
	}
	if w.dlog != nil {
		if derr := w.dlog.setup(ctx); derr != nil {
			// Decisions go on: each record is then counted failing.
			w.log.Error("decision log stream not set up; decisions are answered but not logged", "err", derr)
		}
		w.dlog.start()
	}
	err := w.resubscribeLocked(ctx)
	if w.durable != nil {
		// After the consumer exists: with interest retention a tick
		// published before it would be dropped.
		w.sched = newScheduler(w)
		w.wg.Add(1)
		go w.sched.run()
		if iv := w.durable.cfg.StatsInterval; iv > 0 {
			sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
			w.stopStats = cancel
			w.wg.Add(1)
			go w.runStreamStats(sctx, iv, w.wg.Done)
		}
	}
	if w.registry != nil && w.cfg.RegistryRefresh > 0 {
		// Started even when the first write failed: the refresh retries it
		// soon (registry.retrySoon), then every RegistryRefresh.
		rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		w.stopRefresh = cancel
		w.wg.Add(1)
		go w.registry.runRefresh(rctx, w.cfg.RegistryRefresh, w.wg.Done)
	}
	// Announced even when a subscription failed: the worker serves the others.
	if derr := w.startDiscovery(); derr != nil {
		err = errors.Join(err, derr)
	}
	if err != nil {
		return err
	}
	w.log.InfoContext(ctx, "worker started", "queue", w.cfg.Queue, "functions", w.state.Load().set.Len(),
		"subjects", len(w.subs), "max_in_flight", w.cfg.MaxInFlight, "instance", w.cfg.Instance)
	return nil
}

// Replace makes fns the worker's functions, all or none: they are checked
// as [New] checks them, and on any problem the worker keeps serving the
// functions it had and Replace returns the error. Otherwise it swaps them
// in and changes the subscriptions to match. Events in flight finish with
// the functions they started with.
func (w *Worker) Replace(ctx context.Context, fns ...Function) error {
	return w.ReplaceRevision(ctx, 0, fns...)
}

// ReplaceRevision is [Worker.Replace] with the functions of a bundle
// revision: every PRE decision made with them carries rev, and the
// discovery metadata shows it. rev 0 means functions that do not come from
// a bundle.
func (w *Worker) ReplaceRevision(ctx context.Context, rev uint64, fns ...Function) error {
	set, err := compile(fns)
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped.Load() {
		return ErrStopped
	}
	if w.durable == nil && hasScheduled(set) {
		return ErrScheduleNeedsJetStream
	}
	st := w.newState(set)
	st.rev = rev
	w.state.Store(st)
	if !w.started {
		return nil
	}
	err = w.resubscribeLocked(ctx)
	if w.sched != nil {
		w.sched.wake() // after the consumer filter covers the new functions
	}
	return errors.Join(err, w.updateDiscovery())
}

// resubscribeLocked makes the subscriptions match the current set: new
// subjects are subscribed first, then the ones no longer needed drained.
func (w *Worker) resubscribeLocked(ctx context.Context) error {
	set := w.state.Load().set
	pre, post := set.Subscriptions(w.scheme)
	var errs []error
	if w.durable != nil {
		// POST and SCHEDULED events come through the durable consumer.
		if err := w.updateConsumer(ctx, set); err != nil {
			errs = append(errs, err)
		}
		post = nil
	}
	if w.registry != nil {
		// Before subscribing: see registry.register.
		if err := w.registry.register(ctx, set); err != nil {
			errs = append(errs, err)
		}
	}
	want := make(map[string]chan *nats.Msg, len(pre)+len(post))
	for _, s := range pre {
		want[s] = w.pre
	}
	for _, s := range post {
		want[s] = w.post
	}
	for subj, queue := range want {
		if _, ok := w.subs[subj]; ok {
			continue
		}
		// The read loop puts each message in the queue; no goroutine per
		// subscription.
		sub, err := w.nc.ChanQueueSubscribe(subj, w.cfg.Queue, queue)
		if err != nil {
			errs = append(errs, fmt.Errorf("worker: subscribe %s: %w", subj, err))
			continue
		}
		w.subs[subj] = sub
	}
	for subj, sub := range w.subs {
		if _, ok := want[subj]; ok {
			continue
		}
		if err := sub.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			errs = append(errs, fmt.Errorf("worker: drain %s: %w", subj, err))
		}
		delete(w.subs, subj)
	}
	if err := w.nc.FlushWithContext(flushCtx(ctx)); err != nil {
		errs = append(errs, fmt.Errorf("worker: flush subscriptions: %w", err))
	}
	if w.registry != nil {
		// After the subscriptions no longer needed are drained.
		if err := w.registry.unregisterStale(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	w.subscribed.Store(len(errs) == 0)
	return errors.Join(errs...)
}

func flushCtx(ctx context.Context) context.Context {
	if _, ok := ctx.Deadline(); ok {
		return ctx
	}
	c, cancel := context.WithTimeout(ctx, 5*time.Second)
	// The flush returns before the timeout in all but broken connections;
	// the cancel func runs when it fires.
	context.AfterFunc(c, cancel)
	return c
}

// Revision returns the bundle revision of the functions served; 0 when
// they do not come from a bundle.
func (w *Worker) Revision() uint64 { return w.state.Load().rev }

// Subjects returns the subjects the worker is subscribed to, sorted.
func (w *Worker) Subjects() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]string, 0, len(w.subs))
	for s := range w.subs {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// Ready reports whether the worker is connected, subscribed and not
// draining: whether it should get traffic.
func (w *Worker) Ready() bool {
	return w.subscribed.Load() && !w.draining.Load() && w.nc.IsConnected()
}

// Done is closed when Stop has finished.
func (w *Worker) Done() <-chan struct{} { return w.done }

// Stop stops taking work (it drains the subscriptions, so messages already
// delivered to the worker are still handled), waits for in-flight functions
// up to the shutdown timeout or ctx, and answers every PRE request it took.
// It is idempotent; later calls wait for the first to finish.
func (w *Worker) Stop(ctx context.Context) error {
	if !w.stopped.CompareAndSwap(false, true) {
		select {
		case <-w.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		return nil
	}
	defer close(w.done)
	w.draining.Store(true)
	ctx, cancel := context.WithTimeout(ctx, w.cfg.ShutdownTimeout)
	defer cancel()

	w.mu.Lock()
	subs := make([]*nats.Subscription, 0, len(w.subs))
	for _, s := range w.subs {
		subs = append(subs, s)
	}
	w.mu.Unlock()
	var errs []error
	// Withdrawn from discovery before the drain: a draining worker is not listed.
	if err := w.stopDiscovery(); err != nil {
		errs = append(errs, err)
	}
	for _, s := range subs {
		if err := s.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			errs = append(errs, err)
		}
	}
	if w.sched != nil {
		w.sched.stop()
	}
	w.mu.Lock()
	// The registrations stay: a stopped fleet still makes callers refuse.
	if w.stopRefresh != nil {
		w.stopRefresh()
	}
	if w.stopStats != nil {
		w.stopStats()
	}
	var cc jetstream.ConsumeContext
	if w.durable != nil {
		cc = w.durable.cc
	}
	w.mu.Unlock()
	// A drain needs the server; while disconnected it is given a moment,
	// then abandoned (core messages still buffered are lost, as at-most-once
	// allows; durable ones are redelivered).
	drainCtx := ctx
	if !w.nc.IsConnected() {
		var cancelDrain context.CancelFunc
		drainCtx, cancelDrain = context.WithTimeout(ctx, time.Second)
		defer cancelDrain()
	}
	if cc != nil {
		// Messages already pulled are run (inline.go) or handed to
		// dispatchers before Closed.
		cc.Drain()
		select {
		case <-cc.Closed():
		case <-drainCtx.Done():
			if ctx.Err() != nil {
				errs = append(errs, fmt.Errorf("worker: drain consumer: %w", ctx.Err()))
			} else {
				w.log.Warn("stopping while disconnected from NATS: durable consumer not drained, its unacked events will be redelivered")
			}
		}
	}
	// Wait for the drains: every message already in a subscription's buffer
	// is handed to a dispatcher before its subscription closes.
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for _, s := range subs {
		for s.IsValid() {
			select {
			case <-drainCtx.Done():
				if ctx.Err() != nil {
					errs = append(errs, fmt.Errorf("worker: drain: %w", ctx.Err()))
				} else {
					w.log.Warn("stopping while disconnected from NATS: subscriptions not drained")
				}
				return w.finishStop(ctx, errs)
			case <-tick.C:
			}
		}
	}
	return w.finishStop(ctx, errs)
}

// finishStop stops the dispatchers once the work handed to them is done,
// waiting until ctx ends.
func (w *Worker) finishStop(ctx context.Context, errs []error) error {
	w.subscribed.Store(false)
	w.poolMu.Lock()
	w.poolClosed = true
	w.poolMu.Unlock()
	close(w.stopping)
	finished := make(chan struct{})
	go func() {
		w.wg.Wait()
		w.refuseQueued()
		close(w.progressStop) // no durable event runs any more
		w.inflight.Wait()
		close(finished)
	}()
	select {
	case <-finished:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("worker: functions still running at the shutdown timeout: %w", ctx.Err()))
	}
	if w.dlog != nil {
		w.dlog.close(ctx)
	}
	err := errors.Join(errs...)
	w.log.Info("worker stopped", "err", err)
	return err
}

// dispatcherIdle is how long a dispatcher beyond the core set waits for work
// before it exits.
const dispatcherIdle = 10 * time.Second

// coreDispatchers is how many dispatchers always run: enough to keep the
// CPUs busy with fast functions. More start, up to MaxInFlight, while all
// are busy with slow calls (see spare), and exit again when idle, so that
// the ones in use stay few and warm.
func (w *Worker) coreDispatchers() int {
	return min(w.cfg.MaxInFlight, max(4, 2*runtime.GOMAXPROCS(0)))
}

// dispatcher handles messages until the worker stops. It takes core messages from the PRE and POST queues
// (filled by the subscriptions) and durable ones handed over by submit. A
// core dispatcher runs until the stop, the others also exit after
// dispatcherIdle without work. Whatever the queues hold when the stop comes
// is still handled.
func (w *Worker) dispatcher(core bool) {
	defer w.wg.Done()
	defer w.dispatchers.Add(-1)
	var idle <-chan time.Time
	var timer *time.Timer
	if !core {
		timer = time.NewTimer(dispatcherIdle)
		defer timer.Stop()
		idle = timer.C
	}
	// With a PRE lane, an idle dispatcher takes PRE requests only when
	// the lane asks for help (prelane.go).
	pre, help := w.pre, (<-chan struct{})(nil)
	if w.lane != nil {
		pre, help = nil, w.lane.help
	}
	preFirst := false
	for {
		// While work waits, take it without the full select (and without
		// counting idle), in the order waiting says.
		preFirst = !preFirst
		if j, ok := w.waiting(preFirst); ok {
			w.spare()
			w.run(j)
		} else {
			w.idle.Add(1)
			select {
			case m := <-pre:
				w.busy()
				w.run(job{msg: m})
			case <-help:
				w.busy()
				w.helpPre()
			case m := <-w.post:
				w.busy()
				w.run(job{msg: m})
			case j := <-w.work:
				w.busy()
				w.run(j)
			case <-idle:
				w.idle.Add(-1)
				return
			case <-w.stopping:
				w.idle.Add(-1)
				w.handleQueued(w.run)
				return
			}
		}
		if timer != nil {
			timer.Reset(dispatcherIdle)
		}
	}
}

// waiting returns work that waits, in this order: a PRE request when
// preFirst, a durable message handed over by submit, a message of the POST
// queue, a PRE request; ok is false when there is none. The dispatchers
// alternate preFirst, so that neither a POST nor a durable backlog (which
// keeps the work queue full while the consumer has events) holds a PRE
// request back for more than one event per dispatcher.
func (w *Worker) waiting(preFirst bool) (j job, ok bool) {
	if preFirst {
		select {
		case j.msg = <-w.pre:
			return j, true
		default:
		}
	}
	select {
	case j = <-w.work:
		return j, true
	default:
	}
	select {
	case j.msg = <-w.post:
		return j, true
	default:
	}
	if !preFirst {
		select {
		case j.msg = <-w.pre:
			return j, true
		default:
		}
	}
	return j, false
}

// busy marks a dispatcher that took work (see spare).
func (w *Worker) busy() {
	w.idle.Add(-1)
	w.spare()
}

// growAfter is how long the dispatchers may all be busy before the grower
// looks at how many calls finished meanwhile: long enough that a process
// kept off the CPU for a few milliseconds by a busy machine is rarely taken
// for slow calls (1 ms was, under a load average of 6 on 2 CPUs), short
// next to the calls that need more dispatchers (webhooks, API calls).
const growAfter = 10 * time.Millisecond

// spare is called when a dispatcher takes work: when none is left idle and
// fewer than MaxInFlight run, it wakes the grower. All busy can mean two
// things. Slow calls (a webhook, a script waiting on an API) hold their
// dispatchers, and more dispatchers let more run at once, up to
// MaxInFlight. Fast calls keep the dispatchers busy only because work is
// queued: more dispatchers then add nothing but goroutines for the
// scheduler and the garbage collector to go through (measured in
// docs/benchmarks.md: a worker under a POST backlog went from the core 4
// to MaxInFlight, 256, dispatchers, at 15% more CPU per event). The grower
// tells them apart by how many calls finish in growAfter.
func (w *Worker) spare() {
	if w.idle.Load() > 0 || int(w.dispatchers.Load()) >= w.cfg.MaxInFlight {
		return
	}
	select {
	case w.growKick <- struct{}{}:
	default: // the grower is already awake
	}
}

// grower starts dispatchers while all are busy with slow calls: woken by
// spare, it waits growAfter, and when no dispatcher became idle and fewer
// calls finished than dispatchers run (so calls take longer than
// growAfter), it starts as many more as run, up to the messages waiting
// and MaxInFlight. It runs until the worker stops.
func (w *Worker) grower() {
	t := time.NewTimer(growAfter)
	t.Stop()
	defer t.Stop()
	for {
		select {
		case <-w.growKick:
		case <-w.stopping:
			return
		}
		before, armed := w.finished.Load(), time.Now()
		t.Reset(growAfter)
		select {
		case <-t.C:
		case <-w.stopping:
			return
		}
		n := int(w.dispatchers.Load())
		if w.idle.Load() > 0 || w.finished.Load()-before >= uint64(n) {
			continue
		}
		if time.Since(armed) > 2*growAfter {
			// The process did not get the CPU in time (a busy machine):
			// the dispatchers may have been stopped as long, and that is
			// no sign of slow calls. Look again at the next kick.
			select {
			case w.growKick <- struct{}{}:
			default:
			}
			continue
		}
		// As many more as run (the pool doubles each round while calls
		// stay slow), no more than wait, but at least one, so that a
		// message arriving while the calls run finds a dispatcher
		// waiting for it.
		for range min(max(1, min(n, len(w.pre)+len(w.post)+len(w.work))), w.cfg.MaxInFlight-n) {
			if !w.startDispatcher() {
				break
			}
		}
	}
}

// handleQueued passes everything left in the queues (PRE, POST, durable)
// to handle, until all are empty.
func (w *Worker) handleQueued(handle func(job)) {
	for {
		select {
		case m := <-w.pre:
			handle(job{msg: m})
		case m := <-w.post:
			handle(job{msg: m})
		case j := <-w.work:
			handle(j)
		default:
			return
		}
	}
}

func (w *Worker) run(j job) {
	ctx, span := w.startEvent(context.Background(), j)
	if j.js != nil {
		w.handleDurable(ctx, j.js)
	} else {
		w.handle(ctx, j.msg)
	}
	if span != nil {
		span.End()
	}
	w.finished.Add(1)
}

// submit queues j for the dispatchers, or, while the queue is full, waits
// for room (the grower starts more dispatchers if the calls are slow, see
// spare). It returns false when the worker stopped first.
func (w *Worker) submit(j job) bool {
	select {
	case <-w.stopping:
		return false
	default:
	}
	select {
	case w.work <- j:
		w.spare()
		return true
	default:
	}
	w.spare()
	select {
	case w.work <- j:
		return true
	case <-w.stopping:
		return false
	}
}

// startDispatcher starts one more dispatcher if fewer than MaxInFlight run
// and the worker is not stopping.
func (w *Worker) startDispatcher() bool {
	w.poolMu.Lock()
	defer w.poolMu.Unlock()
	if w.poolClosed || int(w.dispatchers.Load()) >= w.cfg.MaxInFlight {
		return false
	}
	w.dispatchers.Add(1)
	w.wg.Add(1)
	go w.dispatcher(false)
	return true
}

// job is one message handed to a dispatcher by submit: a core message or a
// JetStream one.
type job struct {
	msg *nats.Msg
	js  jetstream.Msg
}

// refuseQueued ends the subscriptions that are still valid (a drain given
// up while disconnected) and answers what their queues still hold with
// refuseStopping, once the dispatchers have finished; a durable message
// queued in a race with the stop is given back (nak) for redelivery.
func (w *Worker) refuseQueued() {
	w.mu.Lock()
	for _, s := range w.subs {
		if s.IsValid() {
			_ = s.Unsubscribe() // after it, nothing more reaches the queues
		}
	}
	w.mu.Unlock()
	w.handleQueued(func(j job) {
		if j.js != nil {
			_ = j.js.Nak()
			return
		}
		w.refuseStopping(j.msg)
	})
}

// refuseStopping answers a PRE request that arrived after the dispatchers
// stopped, so that its caller can ask another worker at once.
func (w *Worker) refuseStopping(msg *nats.Msg) {
	if msg.Reply == "" {
		return
	}
	d := event.Decision{Allowed: false, Code: event.CodeShuttingDown, Message: "worker is shutting down, ask again"}
	if data, err := d.Encode(); err == nil {
		_ = msg.Respond(data)
	}
}
