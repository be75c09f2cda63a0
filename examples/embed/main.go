package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// maxCPU is the largest server deny_big_servers lets through.
const maxCPU = 16

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "embed:", err)
		os.Exit(1)
	}
}

// denyBigServers is the trigger function: a plain Go function.
func denyBigServers(_ context.Context, ev *event.Event) (handlers.Result, error) {
	var in struct {
		CPU int `json:"cpu"`
	}
	if len(ev.Input) > 0 {
		if err := json.Unmarshal(ev.Input, &in); err != nil {
			return handlers.Result{}, fmt.Errorf("input: %w", err)
		}
	}
	if in.CPU > maxCPU {
		return handlers.Result{
			ExitState:    handlers.Failed,
			ErrorCode:    "QUOTA_EXCEEDED",
			ErrorMessage: fmt.Sprintf("servers are limited to %d CPUs", maxCPU),
		}, nil
	}
	return handlers.Result{ExitState: handlers.Success}, nil
}

// run serves until ctx is done, then stops in order: the worker (in-flight
// functions finish, PRE requests are answered), the connection, the server.
func run(ctx context.Context, args []string, stderr io.Writer) (err error) {
	fs := flag.NewFlagSet("embed", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:4222", "client address of the embedded NATS server")
	natsURL := fs.String("nats-url", "", "use this NATS server instead of starting one")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))

	// The connection is drained before the server shuts down; closed says
	// when the drain is over.
	closed := make(chan struct{})
	opts := []nats.Option{
		nats.Name("embed-example"),
		nats.MaxReconnects(-1),
		nats.ClosedHandler(func(*nats.Conn) { close(closed) }),
	}

	var ns *server.Server
	var nc *nats.Conn
	if *natsURL == "" {
		ns, err = startServer(*listen)
		if err != nil {
			return err
		}
		defer func() {
			ns.Shutdown()
			ns.WaitForShutdown()
		}()
		log.Info("embedded NATS server started", "url", ns.ClientURL())
		nc, err = nats.Connect("", append(opts, nats.InProcessServer(ns))...)
	} else {
		nc, err = nats.Connect(*natsURL, opts...)
	}
	if err != nil {
		return fmt.Errorf("connect to NATS: %w", err)
	}
	defer nc.Close() // after a drain, a no-op

	// The worker: its settings and its functions, each a handler with what
	// it runs for. Every function is checked here (type, options, PRE-only
	// settings, schedules, duplicate refs); a problem is an error now, not
	// at the first event. w.Replace(ctx, fns...) swaps in a new set the
	// same way, all or nothing.
	w, err := worker.New(nc, worker.Config{Logger: log}, worker.Function{
		Ref:         "deny_big_servers",
		TriggerType: "PRE_CREATE",
		Options:     []string{"SERVER"},
		Timeout:     time.Second,
		Handler:     handlers.Func(denyBigServers),
	})
	if err != nil {
		return err
	}
	if err := w.Start(ctx); err != nil {
		return errors.Join(err, w.Stop(context.Background()))
	}
	log.Info("serving", "subjects", w.Subjects())

	<-ctx.Done()
	log.Info("shutting down")
	stopCtx, cancel := context.WithTimeout(context.Background(), worker.DefaultShutdownTimeout+5*time.Second)
	defer cancel()
	var errs []error
	if err := w.Stop(stopCtx); err != nil {
		errs = append(errs, fmt.Errorf("stop worker: %w", err))
	}
	if err := nc.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		errs = append(errs, fmt.Errorf("drain connection: %w", err))
	}
	select {
	case <-closed:
	case <-stopCtx.Done():
		errs = append(errs, fmt.Errorf("drain connection: %w", stopCtx.Err()))
	}
	return errors.Join(errs...)
}

// startServer starts a NATS server in this process, listening for clients
// on listen, and waits until it takes connections.
func startServer(listen string) (*server.Server, error) {
	addr, err := net.ResolveTCPAddr("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("listen address: %w", err)
	}
	opts := &server.Options{Port: addr.Port, NoSigs: true}
	if addr.IP != nil {
		opts.Host = addr.IP.String()
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, err
	}
	if ns.Start(); !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, fmt.Errorf("NATS server on %s not ready after 10s", listen)
	}
	return ns, nil
}
