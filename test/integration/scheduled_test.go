package integration

import (
	"strings"
	"testing"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/internal/proctest"
)

// tickScript is an FDL script with one SCHEDULED function, hourly.
const tickScript = `
function register() return { "tick" } end

function tick(p)
  if p == nil then
    return { ref = "tick", triggerType = "SCHEDULED", api = "TRIGGER", schedule = { frequency = { HOUR = 1 } } }
  end
  return { exitState = "SUCCESS" }
end
`

// TestRunRefusesScheduledWithoutDurable: a SCHEDULED function needs durable
// delivery; without it (a server with no JetStream, or delivery.mode core)
// trigger-worker does not start and exits 2, saying why.
func TestRunRefusesScheduledWithoutDurable(t *testing.T) {
	t.Parallel()
	bin := proctest.Build(t, triggerWorkerPkg)
	tests := []struct {
		name   string
		server []natstest.Option
		mode   string
	}{
		{name: "no JetStream", mode: "auto"},
		{name: "core delivery", server: []natstest.Option{natstest.WithJetStream()}, mode: "core"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := natstest.RunServer(t, tt.server...)
			dir := t.TempDir()
			proctest.WriteFile(t, dir, "tick.lua", tickScript)
			cfg := proctest.WriteWorkerConfig(t, dir, s.ClientURL(), dir, map[string]any{"delivery.mode": tt.mode})
			code, _, stderr := proctest.Run(t, bin, "run", "-c", cfg)
			if code != 2 || !strings.Contains(stderr, "SCHEDULED functions need JetStream and durable delivery") {
				t.Errorf("run exit code %d, stderr:\n%s\nwant 2 and why SCHEDULED functions need durable delivery", code, stderr)
			}
		})
	}
}
