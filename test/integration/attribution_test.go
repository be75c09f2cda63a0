package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/internal/proctest"
)

// noisyScript is a POST function that writes a line through each of its
// log helpers, then fails.
const noisyScript = `
function register() return { "noisy" } end

function noisy(p)
  if p == nil then
    return { ref = "noisy", triggerType = "POST_CREATE", triggerOptions = { "SERVER" }, api = "TRIGGER" }
  end
  print("from print")
  trigger.log("warn", "from trigger.log")
  syslog.syslog("LOG_ERR", "from syslog")
  error("from error")
end
`

// TestFunctionLogAttribution: every line a function causes in the worker's
// log (a Lua script's print, trigger.log, syslog and error, a command's
// stderr, a webhook's failure) names the function, the event, the trigger
// type and the option.
func TestFunctionLogAttribution(t *testing.T) {
	t.Parallel()
	bin := proctest.Build(t, triggerWorkerPkg)
	s := natstest.RunServer(t)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "from webhook", http.StatusBadGateway)
	}))
	t.Cleanup(hook.Close)
	dir := t.TempDir()
	proctest.WriteFile(t, dir, "noisy.lua", noisyScript)
	cfg := proctest.WriteWorkerConfig(t, dir, s.ClientURL(), dir, map[string]any{
		"log.format": "json",
		"functions": []map[string]any{
			{"ref": "exec_fails", "trigger_type": "POST_CREATE", "trigger_options": []string{"SERVER"},
				"exec": map[string]any{"command": []string{"/bin/sh", "-c", "echo from stderr >&2; exit 3"}}},
			{"ref": "hook_fails", "trigger_type": "POST_CREATE", "trigger_options": []string{"SERVER"},
				"webhook": map[string]any{"url": hook.URL}},
		},
	})
	p := proctest.Start(t, bin, "run", "-c", cfg)
	waitInterest(t, s, "trigger.POST_CREATE.SERVER")
	nc := natstest.Connect(t, s)
	const id = "01JDQ7Z6W3S6K4V0Q5H3YB3M8C"
	if err := nc.Publish("trigger.POST_CREATE.SERVER", []byte(`{"id":"`+id+`","input":{"resourceName":"web-1"}}`)); err != nil {
		t.Fatal(err)
	}
	// The lines to find: a message, or a text in the error of the failure
	// ("HTTP 502", not "502": the temporary directory in the other errors
	// may hold those digits).
	want := map[string]string{
		"from print": "noisy", "from trigger.log": "noisy", "from syslog": "noisy", "from error": "noisy",
		"from stderr": "exec_fails", "HTTP 502": "hook_fails",
	}
	natstest.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		found := map[string]map[string]any{}
		for line := range strings.Lines(p.Stderr()) {
			var rec map[string]any
			if json.Unmarshal([]byte(line), &rec) != nil {
				continue
			}
			for text := range want {
				if rec["msg"] == text || strings.Contains(fmt.Sprint(rec["err"]), text) {
					found[text] = rec
				}
			}
		}
		for text, ref := range want {
			rec := found[text]
			if rec == nil {
				return fmt.Errorf("no line with %q in the log", text)
			}
			if rec["function"] != ref || rec["event_id"] != id || rec["trigger_type"] != "POST_CREATE" || rec["option"] != "SERVER" {
				return fmt.Errorf("line with %q is %v, want function %s, event_id %s, trigger_type POST_CREATE, option SERVER", text, rec, ref, id)
			}
		}
		return nil
	})
	p.Stop(t)
}
