package faults_test

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/internal/proctest"
)

// TestStopWhileServerDown sends SIGTERM to a trigger-worker process whose
// NATS server has gone away, in core and in durable mode, with nothing in
// flight. There is nothing to drain to a server that is not there: the
// worker says so in its log and exits 0 long before its shutdown timeout
// (10 minutes here, beyond the test's bounded wait for the exit), rather
// than waiting for a drain that cannot happen and exiting 1. (Durable events it held are redelivered by the server.)
func TestStopWhileServerDown(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"core", "durable"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			s := natstest.RunServer(t, natstest.WithJetStream())
			dir := t.TempDir()
			proctest.WriteFile(t, dir, "record.lua", recordScript)
			cfg := proctest.WriteWorkerConfig(t, dir, s.ClientURL(), dir, map[string]any{
				"delivery.mode":             mode,
				"delivery.shutdown_timeout": "10m",
			})
			p := startWorkerProcess(t, "trigger-worker ("+mode+")", cfg)
			p.WaitReady(t)
			s.Shutdown()
			s.WaitForShutdown()
			natstest.CheckFor(t, waitShort, poll, func() error {
				if !strings.Contains(p.Stderr(), "disconnected from NATS") {
					return fmt.Errorf("the worker has not noticed the server is gone")
				}
				return nil
			})

			// A worker that waited for its shutdown timeout (10 minutes)
			// would fail the bounded wait for its exit.
			start := time.Now()
			p.Signal(t, syscall.SIGTERM)
			code := p.Wait(t)
			t.Logf("exited %v after SIGTERM", time.Since(start).Round(time.Millisecond))
			if code != 0 {
				t.Errorf("exit code %d after SIGTERM with the server down, want 0:\n%s", code, proctest.Tail(p.Stderr(), 10))
			}
			if !strings.Contains(p.Stderr(), "stopping while disconnected from NATS") {
				t.Errorf("the worker did not log that it could not drain:\n%s", proctest.Tail(p.Stderr(), 10))
			}
		})
	}
}
