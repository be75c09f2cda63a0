// Command trigger-bench measures triggerbus against raw NATS, on the same
// server and process layout, and prints one table (and, with --json, a JSON
// report). See docs/benchmarks.md.
//
//	go run ./cmd/trigger-bench                 # the default table, about 2.5 minutes on 2 CPUs
//	go run ./cmd/trigger-bench --quick         # a few seconds, for CI
//	go run ./cmd/trigger-bench --scenarios pre-seq,pre-lua --runs 3 --json out.json
//
// Each run starts a new worker-side process (a hidden subcommand of this
// binary): the raw NATS subscriber or responder, or a triggerbus worker with
// no-op functions. The load driver is this process; the NATS server is a
// second child unless --url names one. It asserts nothing about speed; it
// fails only when a run delivers no events at all or a process fails.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "trigger-bench:", err)
		os.Exit(1)
	}
}

// run dispatches to the hidden subcommands of the child processes, or runs
// the bench.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "__worker":
			return runChild(ctx, args[1:], stdin, stdout)
		case "__server":
			return runServer(ctx, args[1:], stdin, stdout)
		}
	}
	return runBench(ctx, args, stdout, stderr)
}
