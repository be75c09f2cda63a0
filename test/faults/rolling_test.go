package faults_test

import (
	"encoding/json"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/internal/proctest"
	"github.com/triggerbus/triggerbus/pkg/client"
)

// recordScript is an FDL script whose POST_CREATE function reports each
// event to the test (a request on faults.handled) and fails when the report
// is not acknowledged, so that durable delivery tries again: what the test
// counts as handled is exactly what the fleet acked.
const recordScript = `
function register() return { "record" } end

function record(p)
  if p == nil then
    return { ref = "record", triggerType = "POST_CREATE", triggerOptions = { "ANY" }, api = "TRIGGER" }
  end
  local reply, err = trigger.request("faults.handled", { id = p.id }, 2000)
  if reply == nil then
    error("the recorder did not answer: " .. tostring(err))
  end
  return { exitState = "SUCCESS" }
end
`

// durableWorkerConfig writes the config of a trigger-worker process in
// durable mode running the scripts of dir against url.
func durableWorkerConfig(t testing.TB, dir, url string) string {
	t.Helper()
	return proctest.WriteWorkerConfig(t, dir, url, dir, map[string]any{
		"delivery.mode":             "durable",
		"delivery.max_deliver":      -1,
		"delivery.backoff":          []string{"100ms"},
		"delivery.ack_wait":         "5s",
		"delivery.shutdown_timeout": "10s",
	})
}

// recorder answers the workers' faults.handled reports and records the
// event ids.
func recorder(t testing.TB, nc *nats.Conn) *idSet {
	t.Helper()
	ids := newIDSet()
	if _, err := nc.Subscribe("faults.handled", func(m *nats.Msg) {
		var v struct{ ID string }
		if err := json.Unmarshal(m.Data, &v); err != nil || v.ID == "" {
			return
		}
		ids.add(v.ID)
		_ = m.Respond([]byte(`{}`))
	}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return ids
}

// TestRollingRestart runs three trigger-worker processes in durable mode
// on a JetStream server under steady load, and restarts them one at a time
// (SIGTERM, wait for the exit, start a new one, wait until it is ready,
// then the next). Every event the stream acknowledged is handled, and each
// worker exits 0: its drain ended before its shutdown timeout (a worker
// that reaches it reports the functions still running and exits 1). The
// drains' durations are logged.
func TestRollingRestart(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t, natstest.WithJetStream())
	handled := recorder(t, natstest.Connect(t, s))
	dir := t.TempDir()
	proctest.WriteFile(t, dir, "record.lua", recordScript)
	cfg := durableWorkerConfig(t, dir, s.ClientURL())

	const workers = 3
	procs := make([]*proctest.Process, workers)
	for i := range procs {
		procs[i] = startWorkerProcess(t, fmt.Sprintf("worker-%d", i), cfg)
	}
	for _, p := range procs {
		p.WaitReady(t)
	}

	c, err := client.New(publisherConn(t, s.ClientURL()), client.Options{Durable: true})
	if err != nil {
		t.Fatal(err)
	}
	load := startLoad(c, "POST_CREATE", "SERVER", 2*time.Millisecond)
	defer load.stopLoad()
	between := int64(scale(200, 100))

	var drains []time.Duration
	for i := range procs {
		load.waitOK(t, between)
		start := time.Now()
		procs[i].Signal(t, syscall.SIGTERM)
		code := procs[i].Wait(t)
		drain := time.Since(start)
		drains = append(drains, drain.Round(time.Millisecond))
		if code != 0 {
			t.Errorf("worker-%d exited %d after SIGTERM, want 0", i, code)
		}
		procs[i] = startWorkerProcess(t, fmt.Sprintf("worker-%d'", i), cfg)
		procs[i].WaitReady(t)
	}
	load.waitOK(t, between)
	load.stopLoad()

	acked := load.allIDs()
	waitAll(t, "acked by the stream", handled, acked)
	t.Logf("rolling restart of %d workers: %d events published, %d acked, all handled (%d handled twice: at least once); publish errors %d; drains %v",
		workers, load.published.Load(), len(acked), handled.dups(), load.failed.Load(), drains)
	if n := load.failed.Load(); n != 0 {
		t.Errorf("%d publishes failed during the rolling restart: %v", n, load.errs)
	}
}
