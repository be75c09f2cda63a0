package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/triggerbus/triggerbus/internal/mailer/mailertest"
	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/internal/proctest"
	"github.com/triggerbus/triggerbus/pkg/client"
	"github.com/triggerbus/triggerbus/pkg/event"
)

// servicesScript counts its calls in its dataStore map, mails the count and
// refuses the action with it, translated, as its message.
const servicesScript = `
function register() return {"count_and_mail"} end
function count_and_mail(p)
  if p == nil then
    return {ref = "count_and_mail", triggerType = "PRE_CREATE", triggerOptions = {"SERVER"}, api = "TRIGGER", version = 1}
  end
  local data = dataStore:getPrivateDataMap()
  local n = (data:get("calls") or 0) + 1
  data:put("calls", n)
  dataStore:resetPrivateDataMap(data)
  local text = translate.string("calls.count", n)
  new("FDLEmailHelper")("ops@example.com", "be@example.com", nil, nil, nil, "count", text, nil)
  return {exitState = "FAILED", errorCode = "COUNTED", errorMessage = text}
end
`

// TestScriptsServices: a worker wires scripts' dataStore to the
// <PREFIX>_DATASTORE bucket of its JetStream, FDLEmailHelper to the email
// relay and translate.string to scripts.messages; without JetStream,
// dataStore calls fail the call and say why.
func TestScriptsServices(t *testing.T) {
	bin := proctest.Build(t, triggerWorkerPkg)
	relay := mailertest.Run(t)
	config := func(natsURL, dir string) string {
		return writeFile(t, "trigger-worker.yaml", fmt.Sprintf(`
nats:
  url: %q
scripts:
  dir: %q
  messages:
    - key: calls.count
      text: "call number {0}"
email:
  host: %s
  port: %d
  ca: %q
  from: triggers@example.com
metrics:
  listen: "off"
`, natsURL, dir, relay.Host, relay.Port, relay.CA))
	}

	t.Run("with JetStream", func(t *testing.T) {
		s := natstest.RunServer(t, natstest.WithJetStream())
		dir := t.TempDir()
		proctest.WriteFile(t, dir, "count.lua", servicesScript)
		startServing(t, bin, config(s.ClientURL(), dir), s, "trigger.PRE_CREATE.SERVER")
		c := newClient(t, s, client.Options{})
		for i := 1; i <= 2; i++ {
			d, err := c.Decide(context.Background(), "PRE_CREATE", "SERVER", &event.Event{Input: json.RawMessage(`{}`)})
			if err != nil {
				t.Fatal(err)
			}
			if want := fmt.Sprintf("call number %d", i); d.Allowed || d.Code != "COUNTED" || d.Message != want {
				t.Fatalf("decision %d = %+v, want the function's message %q", i, d, want)
			}
		}
		js, err := jetstream.New(natstest.Connect(t, s))
		if err != nil {
			t.Fatal(err)
		}
		kv, err := js.KeyValue(context.Background(), "TRIGGER_DATASTORE")
		if err != nil {
			t.Fatalf("bucket TRIGGER_DATASTORE: %v", err)
		}
		e, err := kv.Get(context.Background(), "count_and_mail")
		if err != nil || string(e.Value()) != `{"calls":2}` {
			t.Fatalf("key count_and_mail = %v, %v; want {\"calls\":2}", e, err)
		}
		msgs := relay.Messages()
		if len(msgs) != 2 || !strings.Contains(msgs[1].Data, "call number 2") || msgs[1].From != "triggers@example.com" {
			t.Errorf("relay messages = %+v, want 2, the last saying call number 2", msgs)
		}
	})

	t.Run("without JetStream", func(t *testing.T) {
		s := natstest.RunServer(t)
		dir := t.TempDir()
		proctest.WriteFile(t, dir, "count.lua", servicesScript)
		startServing(t, bin, config(s.ClientURL(), dir), s, "trigger.PRE_CREATE.SERVER")
		c := newClient(t, s, client.Options{})
		d, err := c.Decide(context.Background(), "PRE_CREATE", "SERVER", &event.Event{Input: json.RawMessage(`{}`)})
		if err != nil {
			t.Fatal(err)
		}
		if d.Allowed || !strings.Contains(fmt.Sprintf("%+v", d), "the worker has no JetStream") {
			t.Fatalf("decision = %+v, want a refusal that says the worker has no JetStream", d)
		}
	})
}

// TestCheckLua52: check names a script that uses _ENV with its file and
// line, and says what to do instead.
func TestCheckLua52(t *testing.T) {
	bin := proctest.Build(t, triggerWorkerPkg)
	dir := t.TempDir()
	path := proctest.WriteFile(t, dir, "env.lua", `-- _ENV in a comment is not a use
function register() return {"uses_env"} end
function uses_env(p)
  if p == nil then return {ref = "uses_env", triggerType = "POST_CREATE", triggerOptions = {"SERVER"}} end
  local _ENV = {x = 1}
  return nil
end
`)
	cfg := writeFile(t, "trigger-worker.yaml", fmt.Sprintf("scripts:\n  dir: %q\n", dir))
	code, stdout, stderr := proctest.Run(t, bin, "check", "-c", cfg)
	if code != 2 {
		t.Errorf("check exit code %d, want 2", code)
	}
	out := stdout + stderr
	for _, want := range []string{path + ":5: _ENV is Lua 5.2", "keep the values in a table"} {
		if !strings.Contains(out, want) {
			t.Errorf("check output does not contain %q:\n%s", want, out)
		}
	}
}
