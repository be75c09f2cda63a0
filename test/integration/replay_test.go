package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/internal/proctest"
	"github.com/triggerbus/triggerbus/pkg/client"
	"github.com/triggerbus/triggerbus/pkg/event"
)

// TestArchiveReplayCLI runs a trigger-worker process with archive.enabled
// and two exec functions on one subject, then `trigger-worker replay
// --function` of the built binary: the archived events run again on that
// function only; --dry-run publishes nothing.
func TestArchiveReplayCLI(t *testing.T) {
	bin := proctest.Build(t, triggerWorkerPkg)
	s := natstest.RunServer(t, natstest.WithJetStream())
	dir := t.TempDir()
	runsA, runsB := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	const script = `cat >/dev/null; echo x >> "$1"`
	cfg := writeFile(t, "trigger-worker.yaml", fmt.Sprintf(`
nats:
  url: %q
metrics:
  listen: 127.0.0.1:0
archive:
  enabled: true
  max_age: 1h
functions:
  - ref: count_a
    trigger_type: POST_CREATE
    trigger_options: [SERVER]
    exec:
      command: ["/bin/sh", "-c", %q, "sh", %q]
  - ref: count_b
    trigger_type: POST_CREATE
    trigger_options: [SERVER]
    exec:
      command: ["/bin/sh", "-c", %q, "sh", %q]
`, s.ClientURL(), script, runsA, script, runsB))
	p := proctest.Start(t, bin, "run", "-c", cfg)
	p.WaitReady(t)

	nc := natstest.Connect(t, s)
	c, err := client.New(nc, client.Options{Durable: true})
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	const n = 20
	for i := range n {
		if _, err := c.Publish(context.Background(), "POST_CREATE", "SERVER", &event.Event{Input: json.RawMessage(`{"i":` + strconv.Itoa(i) + `}`)}); err != nil {
			t.Fatal(err)
		}
	}
	lines := func(path string) int {
		b, err := os.ReadFile(path)
		if err != nil {
			return 0
		}
		return bytes.Count(b, []byte("\n"))
	}
	waitRuns := func(a, b int) {
		t.Helper()
		natstest.CheckFor(t, 60*time.Second, poll, func() error {
			if lines(runsA) != a || lines(runsB) != b {
				return fmt.Errorf("count_a ran %d, count_b %d; want %d and %d", lines(runsA), lines(runsB), a, b)
			}
			return nil
		})
		natstest.WaitSettled(t, js, "TRIGGER_EVENTS", "trigger-workers", 60*time.Second)
	}
	waitRuns(n, n)
	archived := func() uint64 {
		st, err := js.Stream(context.Background(), "TRIGGER_ARCHIVE")
		if err != nil {
			t.Fatal(err)
		}
		info, err := st.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs
	}
	natstest.CheckFor(t, 30*time.Second, poll, func() error {
		if got := archived(); got != n {
			return fmt.Errorf("archive holds %d events, want %d", got, n)
		}
		return nil
	})

	code, stdout, stderr := proctest.Run(t, bin, "replay", "--nats-url", s.ClientURL(), "--since", "1h", "--function", "count_a", "--dry-run")
	if code != 0 || strings.TrimSpace(stdout) != "matched 20, would publish 20, skipped 0, failed 0" {
		t.Fatalf("replay --dry-run: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	code, stdout, stderr = proctest.Run(t, bin, "replay", "--nats-url", s.ClientURL(), "--since", "1h", "--function", "count_a", "--rate", "1000/s")
	if code != 0 || strings.TrimSpace(stdout) != "matched 20, published 20, skipped 0, failed 0" {
		t.Fatalf("replay: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	waitRuns(2*n, n)
	natstest.CheckFor(t, 30*time.Second, poll, func() error {
		if got := archived(); got != 2*n {
			return fmt.Errorf("archive holds %d events, want %d with the replays", got, 2*n)
		}
		return nil
	})
}
