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
