package integration

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

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

// ownedTickScript is a SCHEDULED function, every second, whose schedule
// belongs to a billing entity and a customer. It publishes what it finds of
// them in p, and prints a line.
const ownedTickScript = `
function register() return { "be_tick" } end

function be_tick(p)
  if p == nil then
    return { ref = "be_tick", triggerType = "SCHEDULED", api = "TRIGGER",
      schedule = { frequency = { SECOND = 1 }, beUUID = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", customerUUID = "c-42" } }
  end
  print("tick for " .. p.beUUID)
  trigger.publish("out.be", p.beUUID .. " " .. p.customer:getResourceUUID())
  return { exitState = "SUCCESS" }
end
`

// yamlTickScript is the script of a SCHEDULED function of the YAML config,
// whose schedule is the config's.
const yamlTickScript = `
function register() return { "yaml_tick" } end

function yaml_tick(p)
  if p == nil then
    return { ref = "yaml_tick", triggerType = "SCHEDULED", api = "TRIGGER" }
  end
  trigger.publish("out.yaml", p.beUUID .. " " .. tostring(p.customer))
end
`

// TestScheduledTickCarriesBillingEntity: the ticks of a schedule that names
// its billing entity (in an FDL description or in the YAML config) reach
// the script with p.beUUID (and p.customer when the schedule names one)
// set, on a worker with durable delivery on JetStream, and the script's
// print line names the function, the event, the trigger type and the
// option.
func TestScheduledTickCarriesBillingEntity(t *testing.T) {
	t.Parallel()
	bin := proctest.Build(t, triggerWorkerPkg)
	s := natstest.RunServer(t, natstest.WithJetStream())
	nc := natstest.Connect(t, s)
	out := make(chan *nats.Msg, 16)
	if _, err := nc.ChanSubscribe("out.be", out); err != nil {
		t.Fatal(err)
	}
	outYAML := make(chan *nats.Msg, 16)
	if _, err := nc.ChanSubscribe("out.yaml", outYAML); err != nil {
		t.Fatal(err)
	}
	dir, scripts := t.TempDir(), t.TempDir()
	proctest.WriteFile(t, scripts, "be_tick.lua", ownedTickScript)
	yamlScript := proctest.WriteFile(t, dir, "yaml_tick.lua", yamlTickScript)
	cfg := proctest.WriteWorkerConfig(t, dir, s.ClientURL(), scripts, map[string]any{
		"delivery.mode": "durable", "log.format": "json",
		"functions": []map[string]any{{"ref": "yaml_tick", "trigger_type": "SCHEDULED",
			"schedule": map[string]any{"every": "1s", "be_uuid": "be-yaml"}, "lua": map[string]any{"file": yamlScript}}},
	})
	p := proctest.Start(t, bin, "run", "-c", cfg)
	for ch, want := range map[chan *nats.Msg]string{out: "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0 c-42", outYAML: "be-yaml nil"} {
		msg := natstest.ChanRecv(t, ch, 30*time.Second)
		var got string // trigger.publish sends a string as JSON
		if err := json.Unmarshal(msg.Data, &got); err != nil || got != want {
			t.Errorf("%s: the script published %s (%v), want %q", msg.Subject, msg.Data, err, want)
		}
	}
	p.Stop(t)
	for line := range strings.Lines(p.Stderr()) {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil || rec["msg"] != "tick for 0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0" {
			continue
		}
		if rec["function"] != "be_tick" || rec["trigger_type"] != "SCHEDULED" || rec["option"] != "ANY" || rec["event_id"] == "" || rec["event_id"] == nil {
			t.Errorf("print line %s: want function be_tick, trigger_type SCHEDULED, option ANY and the event_id", line)
		}
		return
	}
	t.Errorf("no print line of the script in the worker's log:\n%s", proctest.Tail(p.Stderr(), 40))
}
