package main

import (
	"bytes"
	"context"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/pkg/client"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// startWorker starts on s a worker with cfg serving fns, stopped at the end
// of the test, and returns a durable client and a JetStream context on a
// connection of their own: the rig of the dlq and replay tests.
func startWorker(t *testing.T, s *server.Server, cfg worker.Config, fns ...worker.Function) (*client.Client, jetstream.JetStream) {
	t.Helper()
	w, err := worker.New(natstest.Connect(t, s), cfg, fns...)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Stop(context.Background()) })
	nc := natstest.Connect(t, s)
	c, err := client.New(nc, client.Options{Durable: true})
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return c, js
}

// runTool runs the trigger-worker command args against the server at url
// and returns its stdout and stderr.
func runTool(url string, args ...string) (string, string, error) {
	var out, errOut bytes.Buffer
	err := run(context.Background(), append(args, "--server", url), &out, &errOut)
	return out.String(), errOut.String(), err
}
