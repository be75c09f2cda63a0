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
	if err := cf.parse(args); err != nil {
		return err
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	log := newLogger(cfg.Log, stderr)
	log.Info("trigger-worker starting", "version", version, "config", cfg.File)

	l := loadFunctions(cfg, log)
	defer func() {
		if err := l.close(); err != nil {
			log.Warn("close handlers", "err", err)
		}
	}()
	for _, p := range l.problems {
		log.Error("function not loaded", "err", p)
	}
	for _, u := range l.unwired {
		log.Info("script function not wired", "file", u.File, "line", u.Line, "entry", u.Entry, "function", u.Ref)
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
		log.Info("embedded NATS server started", "url", ns.ClientURL(), "jetstream", cfg.NATS.Embedded.JetStream, "store_dir", storeDir)
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
		httpSrv, err = startHTTP(cfg.Metrics.Listen, reg, w, log)
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
			l = reload(ctx, cfg, cf, w, l, log)
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

// reload re-reads the config file and scripts and swaps the functions in.
// A reload that cannot read the config keeps the old functions.
func reload(ctx context.Context, old config.Config, cf *commonFlags, w *worker.Worker, cur *loaded, log *slog.Logger) *loaded {
	cfg, err := cf.load()
	if err != nil {
		log.Error("reload failed, keeping the current functions", "err", err)
		return cur
	}
	if cfg.NATS != old.NATS || cfg.Subjects != old.Subjects {
		log.Warn("reload: nats and subjects changes take a restart; reloading functions only")
	}
	next := loadFunctions(cfg, log)
	for _, p := range next.problems {
		log.Error("function not loaded", "err", p)
	}
	if err := w.Reload(ctx, next.set); err != nil {
		log.Error("reload: subscriptions", "err", err)
	}
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

// startHTTP serves /metrics, /healthz and /readyz.
func startHTTP(addr string, reg *prometheus.Registry, w *worker.Worker, log *slog.Logger) (*http.Server, error) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /healthz", func(rw http.ResponseWriter, _ *http.Request) {
		rw.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(rw http.ResponseWriter, _ *http.Request) {
		if !w.Ready() {
			http.Error(rw, "not ready", http.StatusServiceUnavailable)
			return
		}
		rw.Write([]byte("ready\n"))
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
