package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/triggerbus/triggerbus/config"
	"github.com/triggerbus/triggerbus/pkg/matcher"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// runWorker is the run command: it serves until ctx is done (SIGTERM or
// SIGINT), reloading functions on SIGHUP.
func runWorker(ctx context.Context, args []string, _, stderr io.Writer) error {
	cf := newCommonFlags("run", stderr)
	allowPartialFlag := cf.fs.Bool("allow-partial", false,
		"serve the functions that load when others have problems, warning at every load (config loading.allow_partial)")
	if err := cf.parse(args); err != nil {
		return err
	}
	cfg, err := loadConfig(cf, stderr)
	if err != nil {
		return err
	}
	allowPartial := func(cfg config.Config) bool { return *allowPartialFlag || cfg.Loading.AllowPartial }
	log := newLogger(cfg.Log, stderr)
	log.Info("trigger-worker starting", "version", version, "config", cfg.File)

	// All or nothing: any problem check would report stops the start, so
	// that a worker never serves fewer functions than it was given.
	l := loadFunctions(cfg, log)
	if !l.accept(allowPartial(cfg), log) {
		log.Error("not starting: the functions have problems (trigger-worker check lists them; --allow-partial serves the rest)",
			"problems", len(l.problems))
		writeProblems(stderr, l.problems)
		return errors.Join(&usageError{errQuiet}, l.close())
	}
	defer func() {
		if err := l.close(); err != nil {
			log.Warn("close handlers", "err", err)
		}
	}()
	if l.set.Len() == 0 {
		log.Warn(noFunctionsWarning)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "trigger_build_info",
		Help: "Build of the running trigger-worker; always 1.",
	}, []string{"version", "revision", "goversion"})
	if err := reg.Register(buildInfo); err != nil {
		return err
	}
	buildInfo.WithLabelValues(version, revision, runtime.Version()).Set(1)
	metrics, err := worker.NewMetrics(reg)
	if err != nil {
		return err
	}
	reloadMetrics, err := worker.NewReloadMetrics(reg)
	if err != nil {
		return err
	}
	status := newLoadStatus(time.Now(), l.problems)

	// NATS: the configured servers, or a server of our own.
	var ns *server.Server
	var nc *nats.Conn
	connOpts, err := worker.Options(connectConfig(cfg.NATS, cfg.NATS.URL, cfg.NATS.Name), worker.ConnectionEvents{Logger: log, Metrics: metrics})
	if err != nil {
		return &usageError{err}
	}
	if cfg.NATS.URL == "" {
		storeDir := cfg.NATS.Embedded.StoreDir
		if storeDir == "" {
			storeDir = filepath.Join(os.TempDir(), "triggerbus-jetstream")
		}
		ns, err = worker.StartEmbedded(worker.EmbeddedConfig{
			Listen: cfg.NATS.Embedded.Listen, JetStream: cfg.NATS.Embedded.JetStream,
			StoreDir: storeDir, Logger: log,
		})
		if err != nil {
			return err
		}
		defer func() {
			ns.Shutdown()
			ns.WaitForShutdown()
		}()
		log.Info("embedded NATS server started", "url", "nats://"+ns.Addr().String(), "jetstream", cfg.NATS.Embedded.JetStream, "store_dir", storeDir)
		nc, err = nats.Connect("", append(connOpts, nats.InProcessServer(ns))...)
	} else {
		nc, err = nats.Connect(cfg.NATS.URL, connOpts...)
	}
	if err != nil {
		return fmt.Errorf("connect to NATS: %w", err)
	}
	defer nc.Close()
	if err := waitConnected(ctx, nc, log); err != nil {
		return err
	}

	hasJS := jetStreamAvailable(ctx, nc)
	var durable *worker.DurableConfig
	switch mode := cfg.Delivery.Mode; {
	case mode == config.DeliveryDurable && !hasJS:
		return usagef("delivery.mode is durable but the NATS server has no JetStream")
	case mode == config.DeliveryDurable, mode == config.DeliveryAuto && hasJS:
		durable = &worker.DurableConfig{
			MaxDeliver:      cfg.Delivery.MaxDeliver,
			Backoff:         cfg.Delivery.Backoff,
			AckWait:         cfg.Delivery.AckWait,
			StreamMaxAge:    cfg.Delivery.StreamMaxAge,
			StreamMaxBytes:  cfg.Delivery.StreamMaxBytes,
			Replicas:        cfg.Delivery.Replicas,
			DuplicateWindow: cfg.Delivery.DuplicateWindow,
		}
	}
	if durable == nil && hasScheduled(l.set) {
		return usagef("SCHEDULED functions need JetStream and durable delivery (the NATS server has no JetStream, or delivery.mode is core): enable JetStream or remove them")
	}
	deliveryMode := "core"
	if durable != nil {
		deliveryMode = "durable"
	}
	log.Info("delivery", "mode", deliveryMode, "jetstream", hasJS)
	w, err := worker.New(nc, matcher.New(l.set), worker.Config{
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
		Version:         version,
		Logger:          log,
		Metrics:         metrics,
	})
	if errors.Is(err, worker.ErrBadInstance) {
		return usagef("registry.instance: %w", err)
	}
	if err != nil {
		return &usageError{err}
	}

	var httpSrv *http.Server
	if cfg.Metrics.Enabled() {
		httpSrv, err = startHTTP(cfg.Metrics.Listen, reg, w, status, log)
		if err != nil {
			return err
		}
	}

	if err := w.Start(ctx); err != nil {
		// Subscriptions that failed are retried by a reload; the worker still
		// serves the others, so this is logged, not fatal.
		log.Error("worker started with errors", "err", err)
	}
	log.Info("serving", "subjects", w.Subjects(), "functions", l.set.Len())

	hup := make(chan os.Signal, 1) // signal.Notify needs a buffer of one
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-hup:
			l = reload(ctx, cfg, cf, allowPartial, w, l, status, reloadMetrics, log)
		}
	}

	log.Info("shutting down: draining")
	stopCtx, cancel := context.WithTimeout(context.Background(), cfg.Delivery.ShutdownTimeout+5*time.Second)
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
	w *worker.Worker, cur *loaded, status *loadStatus, rm *worker.ReloadMetrics, log *slog.Logger,
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
	next := loadFunctions(cfg, log)
	if !next.accept(allowPartial(cfg), log) {
		if err := next.close(); err != nil {
			log.Warn("close the handlers of the refused reload", "err", err)
		}
		return fail(next.problems)
	}
	if err := w.Reload(ctx, next.set); err != nil {
		if errors.Is(err, worker.ErrScheduleNeedsJetStream) || errors.Is(err, worker.ErrStopped) {
			// Nothing was swapped in.
			if err := next.close(); err != nil {
				log.Warn("close the handlers of the refused reload", "err", err)
			}
			return fail([]error{err})
		}
		// The functions are swapped in; a subscription that failed is
		// retried by the next reload.
		log.Error("reload: subscriptions", "err", err)
	}
	if next.set.Len() == 0 {
		log.Warn(noFunctionsWarning)
	}
	now := time.Now()
	rm.Succeeded(now)
	status.applied(now, next.problems)
	log.Info("reloaded", "functions", next.set.Len(), "problems", len(next.problems), "subjects", w.Subjects())
	if err := cur.close(); err != nil {
		log.Warn("close old handlers", "err", err)
	}
	return next
}

func hasScheduled(set *matcher.Set) bool {
	for _, e := range set.Entries() {
		if e.Scheduled {
			return true
		}
	}
	return false
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
func startHTTP(addr string, reg *prometheus.Registry, w *worker.Worker, status *loadStatus, log *slog.Logger) (*http.Server, error) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /healthz", func(rw http.ResponseWriter, _ *http.Request) {
		rw.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(rw http.ResponseWriter, _ *http.Request) {
		rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
		rw.Header().Set("X-Content-Type-Options", "nosniff")
		body := "ready\n"
		if !w.Ready() {
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
