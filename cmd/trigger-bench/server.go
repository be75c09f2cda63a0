package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/triggerbus/triggerbus/internal/natsconn"
)

// runServer is the __server subcommand: a NATS server (the one trigger-worker
// embeds, with JetStream) on a random port of 127.0.0.1. It prints
// "url <client URL>" and serves until its stdin closes.
func runServer(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("__server", flag.ContinueOnError)
	store := fs.String("store", "", "JetStream store directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ns, err := natsconn.StartEmbedded(natsconn.EmbeddedConfig{Listen: "127.0.0.1:-1", JetStream: true, StoreDir: *store})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "url %s\n", ns.ClientURL())
	eof := make(chan struct{})
	go func() {
		defer close(eof)
		_, _ = io.Copy(io.Discard, stdin)
	}()
	select {
	case <-eof:
	case <-ctx.Done():
	}
	ns.Shutdown()
	ns.WaitForShutdown()
	return nil
}
