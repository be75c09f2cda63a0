package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/spf13/cobra"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/trace"

	"github.com/triggerbus/triggerbus/config"
	"github.com/triggerbus/triggerbus/internal/datastore"
	"github.com/triggerbus/triggerbus/internal/natsconn"
	"github.com/triggerbus/triggerbus/pkg/handlers/lua"
	"github.com/triggerbus/triggerbus/pkg/subjects"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

func newRunCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the worker (the default command)",
		Long: `Run the worker until SIGTERM or SIGINT (which drain), reloading the functions on SIGHUP.
With no NATS URL (--server, NATS_URL, --context, nats.url) it starts an embedded NATS server.
Loading is all or nothing: with any problem check would report it prints them and exits 2,
unless --allow-partial.`,
		Args: argsError("no arguments", cobra.NoArgs),
	}
	cf := addCommonFlags(cmd, true, "all")
	allowPartial := cmd.Flags().Bool("allow-partial", false,
		"serve the functions that load when others have problems, warning at every load (config loading.allow_partial)")
	cmd.RunE = runE(func(cmd *cobra.Command, _ []string) error {
		return runWorker(cmd.Context(), cf, *allowPartial, cmd.ErrOrStderr())
	})
	return cmd
}

// runWorker is the run command: it serves until ctx is done (SIGTERM or
// SIGINT), reloading functions on SIGHUP.
func runWorker(ctx context.Context, cf *commonFlags, allowPartialFlag bool, stderr io.Writer) error {
	cfg, err := loadConfig(cf, stderr)
	if err != nil {
		return err
	}
	allowPartial := func(cfg config.Config) bool { return allowPartialFlag || cfg.Loading.AllowPartial }
	log := newLogger(cfg.Log, stderr)
	log.Info("trigger-worker starting", "version", version, "config", cfg.File)

	store, err := dataStore(cfg)
	if err != nil {
		return err
	}
	bundled := cfg.Bundle.Source == config.SourceBundle
	l := emptyLoaded() // bundle mode: nothing until a revision is loaded
	if bundled && (len(cfg.Functions) > 0 || cfg.Scripts.Dir != "") {
		log.Warn("bundle.source is bundle: the functions and scripts.dir of this config are not served")
	}
	if !bundled {
		if l, err = loadForStart(cfg, allowPartial(cfg), store, log, stderr); err != nil {
			return err
		}
	}
	defer func() { closeLoaded(l, "close handlers", log) }() // l changes at every reload
	reg, metrics, reloadMetrics, err := newRegistry()
	if err != nil {
		return err
	}
	status := newLoadStatus(time.Now(), l.problems)
	if bundled {
		status.setWaiting("connecting to NATS")
	}
	nc, closeNATS, err := connectNATS(ctx, cfg.NATS, metrics, log)
	if err != nil {
		return err
	}
	defer closeNATS()
	bindDataStore(ctx, store, nc, log)
	tp, stopTracing, err := newTracing(ctx, cfg.Tracing, log)
	if err != nil {
		return err
	}
	defer stopTracing() // after the shutdown: the last spans are flushed
	w, err := newWorker(ctx, nc, cfg, l, metrics, tp, log)
	if err != nil {
		return err
	}
	var httpSrv *http.Server
	ready := w.Ready
	if bundled {
		// Not ready until a revision is served.
		ready = func() bool { return w.Ready() && w.Revision() != 0 }
	}
	if cfg.Metrics.Enabled() {
		if httpSrv, err = startHTTP(cfg.Metrics.Listen, reg, ready, status, log); err != nil {
			return err
		}
	}
	if err := w.Start(ctx); err != nil {
		// Subscriptions that failed are retried by a reload; the worker still
		// serves the others, so this is logged, not fatal.
		log.Error("worker started with errors", "err", err)
	}
	log.Info("serving", "subjects", w.Subjects(), "functions", l.set.Len())
	// Once the functions are loaded: what loading them allocates is
	// collected as Go would, and the first live heap includes them.
	defer startGCFloor(cfg.GC, log)()

	hup := make(chan os.Signal, 1) // signal.Notify needs a buffer of one
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup) // at the very end: a SIGHUP while draining must not kill the process
	if bundled {
		src := &bundleSource{cfg: cfg, cf: cf, nc: nc, w: w, store: store, status: status, rm: reloadMetrics, log: log, cur: l}
		l = src.run(ctx, hup)
	} else {
		reloadOn(ctx, hup, func() { l = reload(ctx, cfg, cf, allowPartial, w, l, store, status, reloadMetrics, log) })
	}
	return shutdown(w, nc, httpSrv, cfg.Delivery.ShutdownTimeout, log)
}

// loadForStart loads the functions, all or nothing: any problem check
// would report stops the start (unless allowPartial), so that a worker
// never serves fewer functions than it was given.
func loadForStart(cfg config.Config, allowPartial bool, store lua.DataStore, log *slog.Logger, stderr io.Writer) (*loaded, error) {
	l := loadFunctions(cfg, log, store)
	if !l.accept(allowPartial, log) {
		log.Error("not starting: the functions have problems (trigger-worker check lists them; --allow-partial serves the rest)",
			"problems", len(l.problems))
		writeProblems(stderr, l.problems)
		return nil, errors.Join(&usageError{err: errQuiet}, l.close())
	}
	if l.set.Len() == 0 {
		log.Warn(noFunctionsWarning)
	}
	return l, nil
}

// closeLoaded closes the handlers of l, logging what fails with msg.
func closeLoaded(l *loaded, msg string, log *slog.Logger) {
	if err := l.close(); err != nil {
		log.Warn(msg, "err", err)
	}
}

// newRegistry returns the metrics registry the endpoint serves: the Go and
// process collectors, trigger_build_info, and the worker's and reloads'
// metrics.
func newRegistry() (*prometheus.Registry, *worker.Metrics, *worker.ReloadMetrics, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "trigger_build_info",
		Help: "Build of the running trigger-worker; always 1.",
	}, []string{"version", "revision", "goversion"})
	if err := reg.Register(buildInfo); err != nil {
		return nil, nil, nil, err
	}
	buildInfo.WithLabelValues(version, revision, runtime.Version()).Set(1)
	metrics, err := worker.NewMetrics(reg)
	if err != nil {
		return nil, nil, nil, err
	}
	reloadMetrics, err := worker.NewReloadMetrics(reg)
	if err != nil {
		return nil, nil, nil, err
	}
	return reg, metrics, reloadMetrics, nil
}

// lockStoreDir returns the embedded server's JetStream directory (the
// configured one, else the per-user default) locked for this process; an
// embedded server without JetStream has none.
func lockStoreDir(cfg config.Embedded) (dir string, unlock func(), err error) {
	if !cfg.JetStream {
		return "", func() {}, nil
	}
	dir = cfg.StoreDir
	if dir == "" {
		if dir, err = natsconn.DefaultStoreDir(); err != nil {
			return "", nil, &usageError{err: err}
		}
	}
	unlock, err = natsconn.LockStore(dir)
	if err != nil {
		return "", nil, err
	}
	return dir, unlock, nil
}

// connectNATS connects to the configured servers, or starts a server of
// our own when no URL is configured, and waits for the first connection.
// closeNATS closes the connection, then shuts the server down.
func connectNATS(ctx context.Context, cfg config.NATS, metrics *worker.Metrics, log *slog.Logger) (nc *nats.Conn, closeNATS func(), err error) {
	opts, err := natsconn.Options(connectConfig(cfg, cfg.URL, cfg.Name),
		natsconn.Events{Logger: log, Connected: metrics.NATSConnected, SlowConsumers: metrics.SlowConsumers})
	if err != nil {
		return nil, nil, &usageError{err: err}
	}
	stopServer := func() {}
	if cfg.URL == "" {
		storeDir, unlock, serr := lockStoreDir(cfg.Embedded)
		if serr != nil {
			return nil, nil, serr
		}
		ns, serr := natsconn.StartEmbedded(natsconn.EmbeddedConfig{
			Listen: cfg.Embedded.Listen, JetStream: cfg.Embedded.JetStream,
			StoreDir: storeDir, Logger: log,
		})
		if serr != nil {
			unlock()
			return nil, nil, serr
		}
		stopServer = func() {
			ns.Shutdown()
			ns.WaitForShutdown()
			unlock()
		}
		log.Info("embedded NATS server started", "url", "nats://"+ns.Addr().String(), "jetstream", cfg.Embedded.JetStream, "store_dir", storeDir)
		nc, err = nats.Connect("", append(opts, nats.InProcessServer(ns))...)
	} else {
		nc, err = nats.Connect(cfg.URL, opts...)
	}
	if err != nil {
		stopServer()
		return nil, nil, fmt.Errorf("connect to NATS: %w", err)
	}
	closeNATS = func() {
		nc.Close()
		stopServer()
	}
	if err := waitConnected(ctx, nc, log); err != nil {
		closeNATS()
		return nil, nil, err
	}
	return nc, closeNATS, nil
}

// newWorker builds the worker of cfg serving the functions of l, with
// durable delivery when the server has JetStream and the configuration
// allows it.
func newWorker(ctx context.Context, nc *nats.Conn, cfg config.Config, l *loaded, metrics *worker.Metrics, tp trace.TracerProvider, log *slog.Logger) (*worker.Worker, error) {
	hasJS := jetStreamAvailable(ctx, nc)
	durable, err := durableConfig(cfg.Delivery, hasJS)
	if err != nil {
		return nil, err
	}
	deliveryMode := "core"
	if durable != nil {
		deliveryMode = "durable"
	}
	if durable != nil && cfg.Bundle.Source == config.SourceBundle {
		// Workers on any revision write the same filter; a worker runs
		// durable events only while it serves the active revision.
		durable.FollowActive = true
	}
	switch {
	case durable != nil && cfg.Archive.Enabled:
		durable.Archive = archiveConfig(cfg.Archive)
	case cfg.Archive.Enabled:
		log.Warn("archive.enabled needs durable delivery: events delivered in core mode are not archived")
	}
	log.Info("delivery", "mode", deliveryMode, "jetstream", hasJS, "archive", durable != nil && durable.Archive != nil)
	w, err := worker.New(nc, worker.Config{
		Prefix:          cfg.Subjects.Prefix,
		Queue:           cfg.Subjects.Queue,
		MaxInFlight:     cfg.Delivery.MaxInFlight,
		MaxEventBytes:   cfg.Delivery.MaxEventBytes,
		ShutdownTimeout: cfg.Delivery.ShutdownTimeout,
		LoopKey:         []byte(cfg.Loop.Key),
		LoopTTL:         cfg.Loop.TTL,
		Registry:        hasJS,
		Instance:        cfg.Registry.Instance,
		RegistryRefresh: cfg.Registry.Refresh,
		Durable:         durable,
		DecisionLog:     decisionLogConfig(cfg, hasJS),
		Version:         version,
		Logger:          log,
		Metrics:         metrics,
		TracerProvider:  tp, // nil: tracing off

		// A registry bucket the worker creates is replicated as its streams.
		RegistryReplicas: cfg.Delivery.Replicas,
	}, l.functions()...)
	switch {
	case errors.Is(err, worker.ErrScheduleNeedsJetStream):
		return nil, usagef("SCHEDULED functions need JetStream and durable delivery (the NATS server has no JetStream, or delivery.mode is core): enable JetStream or remove them")
	case errors.Is(err, worker.ErrBadInstance):
		return nil, usagef("registry.instance: %w", err)
	case err != nil:
		return nil, &usageError{err: err}
	}
	return w, nil
}

// durableConfig chooses the delivery of POST and SCHEDULED events:
// durable with mode durable, or with mode auto when the server has
// JetStream; nil means core.
func durableConfig(d config.Delivery, hasJS bool) (*worker.DurableConfig, error) {
	switch {
	case d.Mode == config.DeliveryDurable && !hasJS:
		return nil, usagef("delivery.mode is durable but the NATS server has no JetStream")
	case d.Mode == config.DeliveryDurable, d.Mode == config.DeliveryAuto && hasJS:
		maxAge := d.StreamMaxAge
		if maxAge == 0 {
			maxAge = -1 // the configuration's unlimited
		}
		return &worker.DurableConfig{
			MaxDeliver:      d.MaxDeliver,
			Backoff:         d.Backoff,
			AckWait:         d.AckWait,
			StreamMaxAge:    maxAge,
			StreamMaxBytes:  d.StreamMaxBytes,
			DiscardOld:      d.StreamDiscard == config.StreamDiscardOld,
			Replicas:        d.Replicas,
			DuplicateWindow: d.DuplicateWindow,
		}, nil
	}
	return nil, nil
}

// archiveConfig is the worker's archive of the archive section.
func archiveConfig(a config.Archive) *worker.ArchiveConfig {
	maxAge := a.MaxAge
	if maxAge == 0 {
		maxAge = -1 // the configuration's unlimited
	}
	return &worker.ArchiveConfig{MaxAge: maxAge, MaxBytes: a.MaxBytes, Replicas: a.Replicas}
}

// decisionLogConfig turns the decision log on when the configuration
// enables it and the server has JetStream; nil means off. Its stream has
// the replicas of the event stream.
func decisionLogConfig(cfg config.Config, hasJS bool) *worker.DecisionLogConfig {
	d := cfg.DecisionLog
	if !d.Enabled || !hasJS {
		return nil
	}
	return &worker.DecisionLogConfig{DeniedOnly: d.DeniedOnly, SampleAllowed: d.SampleAllowed,
		Input: d.Input, MaxAge: d.MaxAge, MaxBytes: d.MaxBytes, Replicas: cfg.Delivery.Replicas}
}

// reloadOn calls reload at every signal of hup until ctx is done.
func reloadOn(ctx context.Context, hup <-chan os.Signal, reload func()) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			reload()
		}
	}
}

// shutdown stops in order: the worker (in-flight functions finish, within
// shutdownTimeout), the connection's drain, the HTTP endpoint.
func shutdown(w *worker.Worker, nc *nats.Conn, httpSrv *http.Server, shutdownTimeout time.Duration, log *slog.Logger) error {
	log.Info("shutting down: draining")
	stopCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout+5*time.Second)
	defer cancel()
	var errs []error
	if err := w.Stop(stopCtx); err != nil {
		errs = append(errs, err)
	}
	switch err := nc.Drain(); {
	case err == nil, errors.Is(err, nats.ErrConnectionClosed):
	case errors.Is(err, nats.ErrConnectionReconnecting):
		// Nothing can be flushed to a server that is not there (Drain closed
		// the connection); the worker has said what it could not drain.
		log.Warn("stopping while disconnected from NATS: connection closed without a drain")
	default:
		errs = append(errs, err)
	}
	if httpSrv != nil {
		if err := httpSrv.Shutdown(stopCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// reload re-reads the config file and scripts and swaps the functions in,
// all or nothing: with any problem check would report (or a config that
// does not load) it keeps the current functions, counts the failure and
// records it for /readyz; only allowPartial lets the functions without
// problems through. It returns the functions now served.
func reload(ctx context.Context, old config.Config, cf *commonFlags, allowPartial func(config.Config) bool,
	w *worker.Worker, cur *loaded, store lua.DataStore, status *loadStatus, rm *worker.ReloadMetrics, log *slog.Logger,
) *loaded {
	fail := func(problems []error) *loaded {
		for _, p := range problems {
			log.Error("reload: problem", "err", p)
		}
		log.Error("reload failed, keeping the current functions",
			"problems", len(problems), "functions", cur.set.Len())
		rm.Failed()
		status.failed(time.Now(), problems)
		return cur
	}
	cfg, err := cf.load()
	if err != nil {
		var ue *usageError
		if errors.As(err, &ue) {
			err = ue.err // the joined problems of the config file
		}
		return fail(splitJoined(err))
	}
	if cfg.NATS != old.NATS || cfg.Subjects != old.Subjects {
		log.Warn("reload: nats and subjects changes take a restart; reloading functions only")
	}
	next := loadFunctions(cfg, log, store)
	if !next.accept(allowPartial(cfg), log) {
		closeLoaded(next, "close the handlers of the refused reload", log)
		return fail(next.problems)
	}
	if err := swapIn(ctx, w, next, 0, log); err != nil {
		return fail([]error{err})
	}
	now := time.Now()
	rm.Succeeded(now)
	status.applied(now, next.problems)
	log.Info("reloaded", "functions", next.set.Len(), "problems", len(next.problems), "subjects", w.Subjects())
	closeLoaded(cur, "close old handlers", log)
	return next
}

// swapIn makes the worker serve next, of bundle revision rev (0: not a
// bundle). An error means nothing was swapped in (the worker is stopping,
// the functions need JetStream it lacks, or a function is invalid): next's
// handlers are closed.
func swapIn(ctx context.Context, w *worker.Worker, next *loaded, rev uint64, log *slog.Logger) error {
	if err := w.ReplaceRevision(ctx, rev, next.functions()...); err != nil {
		if errors.Is(err, worker.ErrScheduleNeedsJetStream) || errors.Is(err, worker.ErrStopped) || errors.Is(err, worker.ErrInvalidFunction) {
			closeLoaded(next, "close the handlers of the refused load", log)
			return err
		}
		// The functions are swapped in; a subscription that failed is
		// retried by the next reload.
		log.Error("reload: subscriptions", "err", err)
	}
	if next.set.Len() == 0 {
		log.Warn(noFunctionsWarning)
	}
	return nil
}

// waitConnected waits for the first connection (the client retries in the
// background), so that what the server offers is known before the worker
// chooses its delivery mode.
func waitConnected(ctx context.Context, nc *nats.Conn, log *slog.Logger) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	lastLog := start
	for !nc.IsConnected() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("not connected to NATS: %w", ctx.Err())
		case <-tick.C:
		}
		if time.Since(lastLog) >= 5*time.Second {
			lastLog = time.Now()
			log.Warn("waiting for NATS", "waited", time.Since(start).Round(time.Second))
		}
	}
	return nil
}

// dataStore returns the store of FDL scripts' dataStore maps, in the bucket
// of the configured prefix; it is bound to JetStream once connected.
func dataStore(cfg config.Config) (*datastore.Store, error) {
	scheme, err := subjects.NewScheme(cfg.Subjects.Prefix)
	if err != nil {
		return nil, usagef("subjects.prefix: %w", err)
	}
	return datastore.New(datastore.Config{
		Bucket:   scheme.DataStoreBucket(),
		MaxBytes: cfg.Scripts.DataStoreMaxBytes,
		Replicas: cfg.Delivery.Replicas,
	})
}

// bindDataStore binds store to the JetStream of nc when the server has one;
// without, scripts' dataStore calls fail and say so.
func bindDataStore(ctx context.Context, store *datastore.Store, nc *nats.Conn, log *slog.Logger) {
	if !jetStreamAvailable(ctx, nc) {
		log.Info("no JetStream: scripts' dataStore calls will fail")
		return
	}
	js, err := jetstream.New(nc)
	if err != nil {
		log.Warn("no JetStream for scripts' dataStore", "err", err)
		return
	}
	store.Bind(js)
}

func jetStreamAvailable(ctx context.Context, nc *nats.Conn) bool {
	js, err := jetstream.New(nc)
	if err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err = js.AccountInfo(ctx)
	return err == nil
}

// startHTTP serves /metrics, /healthz and /readyz. /readyz also says what
// status records about the last load of the functions; a failed reload
// does not make the worker unready, as it still serves the functions it
// had.
func startHTTP(addr string, reg *prometheus.Registry, ready func() bool, status *loadStatus, log *slog.Logger) (*http.Server, error) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /healthz", func(rw http.ResponseWriter, _ *http.Request) {
		rw.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(rw http.ResponseWriter, _ *http.Request) {
		rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
		rw.Header().Set("X-Content-Type-Options", "nosniff")
		body := "ready\n"
		if !ready() {
			rw.WriteHeader(http.StatusServiceUnavailable)
			body = "not ready\n"
		}
		rw.Write([]byte(body + status.String()))
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics listen %s: %w", addr, err)
	}
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
	}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server", "err", err)
		}
	}()
	log.Info("metrics endpoint", "addr", ln.Addr().String())
	return srv, nil
}
