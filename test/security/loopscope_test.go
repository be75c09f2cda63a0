package security_test

import (
	"bufio"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/internal/proctest"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/subjects"
)

// scopeScripts: a PRE function that refuses; a POST_CREATE SERVER function
// that reaches out every way a script can (simplehttp, the API bridge,
// trigger.publish of a copy of its event: the loop the flag must break) and
// reports each run to sec.runs; a POST_DELETE DISK function that reports
// each run. HTTP_BASE is replaced by the recorder's URL.
const scopeScripts = `
function register() return { "deny_create", "reach_out", "on_delete" } end

function deny_create(p)
  if p == nil then
    return { ref = "deny_create", triggerType = "PRE_CREATE", triggerOptions = { "SERVER" }, api = "TRIGGER" }
  end
  return { exitState = "FAILED", errorCode = "REFUSED", errorMessage = "refused by the trigger" }
end

local function report(fn, p)
  local reply, err = trigger.request("sec.runs", { fn = fn, id = p.id }, 2000)
  if reply == nil then error("recorder: " .. tostring(err)) end
end

function reach_out(p)
  if p == nil then
    return { ref = "reach_out", triggerType = "POST_CREATE", triggerOptions = { "SERVER" }, api = "TRIGGER" }
  end
  report("reach_out", p)
  local conn = simplehttp.newConnection({ url = "HTTP_BASE/simplehttp" })
  local ok = conn:get()
  if not ok then
    local code, message = conn:getLastError()
    error("simplehttp: " .. tostring(code) .. " " .. tostring(message))
  end
  adminAPI:getResource("s-1")
  trigger.publish("trigger.POST_CREATE.SERVER", { input = { echo = p.id } })
  return { exitState = "SUCCESS" }
end

function on_delete(p)
  if p == nil then
    return { ref = "on_delete", triggerType = "POST_DELETE", triggerOptions = { "DISK" }, api = "TRIGGER" }
  end
  report("on_delete", p)
  return { exitState = "SUCCESS" }
end
`

// firstValues keeps the first value seen under each name.
type firstValues struct {
	mu sync.Mutex
	m  map[string]string
}

func (f *firstValues) add(name, v string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.m[name]; !ok && v != "" {
		f.m[name] = v
	}
}

func (f *firstValues) get(name string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.m[name]
}

// TestLoopFlagScope runs the trigger-worker binary with a fleet key and
// functions of every kind that hand Trigger-Origin to someone: a webhook
// (real HTTP on loopback), an exec command (a real process), an FDL script
// using simplehttp (real HTTP) and the API bridge (a NATS responder). Each
// value they receive is then replayed, as a receiver that can publish could:
// on a PRE request the deny still denies, on a POST event of another type
// or another event of the same subject the functions run, and each replay
// is counted in trigger_origin_rejected_total. So is a value signed in the
// unscoped format of earlier versions. The script's own copy of its event
// (the loop) is still dropped.
func TestLoopFlagScope(t *testing.T) {
	t.Parallel()
	const key = "fleet-loop-key-scope-41c7"
	s := natstest.RunServer(t)
	nc := natstest.Connect(t, s)
	dir := t.TempDir()

	got := &firstValues{m: map[string]string{}}
	hooks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.add(strings.TrimPrefix(r.URL.Path, "/"), r.Header.Get("Trigger-Origin"))
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{}`))
	}))
	t.Cleanup(hooks.Close)

	var mu sync.Mutex
	ran := map[string]int{} // "<fn> <event id>" -> runs
	subscribe := func(subject string, cb nats.MsgHandler) {
		t.Helper()
		if _, err := nc.Subscribe(subject, cb); err != nil {
			t.Fatal(err)
		}
	}
	subscribe("sec.runs", func(m *nats.Msg) {
		var v struct{ Fn, ID string }
		_ = json.Unmarshal(m.Data, &v)
		mu.Lock()
		ran[v.Fn+" "+v.ID]++
		mu.Unlock()
		_ = m.Respond([]byte(`{}`))
	})
	subscribe("fco.api.admin.getResource", func(m *nats.Msg) {
		got.add("api bridge", m.Header.Get(subjects.HeaderOrigin))
		_ = m.Respond([]byte(`{"result":{"resourceUUID":"s-1"}}`))
	})
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	runs := func(fn, id string) int {
		mu.Lock()
		defer mu.Unlock()
		return ran[fn+" "+id]
	}

	execOut := filepath.Join(dir, "exec-origin")
	proctest.WriteFile(t, dir, "scope.lua", strings.ReplaceAll(scopeScripts, "HTTP_BASE", hooks.URL))
	cfg := proctest.WriteWorkerConfig(t, dir, s.ClientURL(), dir, map[string]any{"functions": []any{
		map[string]any{"ref": "hook", "trigger_type": "POST_CREATE", "trigger_options": []string{"SERVER"},
			"webhook": map[string]any{"url": hooks.URL + "/webhook", "deny_private_networks": false}},
		map[string]any{"ref": "command", "trigger_type": "POST_CREATE", "trigger_options": []string{"SERVER"},
			"exec": map[string]any{"command": []string{"/bin/sh", "-c", `printf '%s\n' "$TRIGGER_ORIGIN" >> ` + execOut}}},
	}})
	p := startProcess(t, []string{"TRIGGER_LOOP_KEY=" + key}, "run", "-c", cfg)
	base := p.WaitReady(t)
	counters := func() (rejected, dropped float64) { return loopCounters(t, base) }

	// One event: every function runs once, hands out its Trigger-Origin,
	// and the script's copy of the event is dropped.
	first := nats.NewMsg("trigger.POST_CREATE.SERVER")
	first.Data = []byte(`{"id":"scope-original"}`)
	if err := nc.PublishMsg(first); err != nil {
		t.Fatal(err)
	}
	natstest.CheckFor(t, waitShort, poll, func() error {
		if data, err := os.ReadFile(execOut); err == nil {
			line, _, _ := bufio.NewReader(strings.NewReader(string(data))).ReadLine()
			got.add("exec", string(line))
		}
		for _, name := range []string{"webhook", "simplehttp", "api bridge", "exec"} {
			if got.get(name) == "" {
				return fmt.Errorf("no Trigger-Origin received by the %s yet", name)
			}
		}
		if _, dropped := counters(); dropped != 1 {
			return fmt.Errorf("dropped{POST_CREATE,trigger_originated} = %v, want 1 (the script's copy)", dropped)
		}
		return nil
	})
	if n := runs("reach_out", "scope-original"); n != 1 {
		t.Errorf("reach_out ran %d times for the event, want 1", n)
	}
	if rejected, _ := counters(); rejected != 0 {
		t.Fatalf("trigger_origin_rejected_total = %v before any replay: the fleet's own stamps do not verify", rejected)
	}

	// legacy: a value signed with the fleet key in the unscoped format of
	// earlier versions, <ref>/<id>/<expiry>/<HMAC>.
	signed := "reach_out/scope-original/" + strconv.FormatInt(time.Now().Add(time.Hour).UnixMilli(), 10)
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(signed))
	got.add("legacy format", signed+"/"+base64.RawURLEncoding.EncodeToString(m.Sum(nil)))

	for i, name := range []string{"webhook", "exec", "simplehttp", "api bridge", "legacy format"} {
		origin := got.get(name)
		t.Run(name, func(t *testing.T) {
			rejectedBefore, _ := counters()

			req := nats.NewMsg("trigger.PRE_CREATE.SERVER")
			req.Header.Set(subjects.HeaderOrigin, origin)
			reply, err := nc.RequestMsg(req, waitShort)
			if err != nil {
				t.Fatal(err)
			}
			d, err := event.DecodeDecision(reply.Data)
			if err != nil {
				t.Fatal(err)
			}
			if d.Allowed || d.Code != "REFUSED" {
				t.Errorf("PRE request with the %s's Trigger-Origin %q: decision = %+v, want the function's refusal", name, origin, d)
			}

			deleteID, createID := fmt.Sprintf("scope-delete-%d", i), fmt.Sprintf("scope-create-%d", i)
			for subject, id := range map[string]string{"trigger.POST_DELETE.DISK": deleteID, "trigger.POST_CREATE.SERVER": createID} {
				post := nats.NewMsg(subject)
				post.Data = []byte(`{"id":"` + id + `"}`)
				post.Header.Set(subjects.HeaderOrigin, origin)
				if err := nc.PublishMsg(post); err != nil {
					t.Fatal(err)
				}
			}
			natstest.CheckFor(t, waitShort, poll, func() error {
				if runs("on_delete", deleteID) != 1 {
					return errors.New("on_delete has not run for the POST_DELETE event with the replayed flag")
				}
				if runs("reach_out", createID) != 1 {
					return errors.New("reach_out has not run for the POST_CREATE event with the replayed flag")
				}
				return nil
			})
			natstest.CheckFor(t, waitShort, poll, func() error {
				if rejected, _ := counters(); rejected != rejectedBefore+3 {
					return fmt.Errorf("trigger_origin_rejected_total grew by %v, want 3 (one PRE, two POST)", rejected-rejectedBefore)
				}
				return nil
			})
		})
	}
	p.Stop(t)
	if logs := p.Stderr() + p.Stdout(); !strings.Contains(logs, "Trigger-Origin was given outside the bus and silences nothing") {
		t.Errorf("the worker's log does not say why the webhook's value was not honoured:\n%s", logs)
	}
}

// TestLoopTTLBounded: a loop.ttl above the maximum (1h) is a config error
// that names the key and the maximum; 1h itself is accepted.
func TestLoopTTLBounded(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	proctest.WriteFile(t, dir, "deny.lua", proctest.DenyScript)
	cfg := proctest.WriteFile(t, dir, "trigger-worker.yaml", fmt.Sprintf("scripts:\n  dir: %q\nloop:\n  ttl: 87600h\n", dir))
	code, stdout, stderr := run(t, []string{"TRIGGER_LOOP_KEY=k"}, "check", "-c", cfg)
	if code != 2 || !strings.Contains(stdout+stderr, "loop.ttl") || !strings.Contains(stdout+stderr, "more than the maximum of 1h0m0s") {
		t.Errorf("check with loop.ttl 87600h: exit code %d, want 2 and an error naming loop.ttl and the maximum:\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr = run(t, []string{"TRIGGER_LOOP_KEY=k", "TRIGGER_LOOP_TTL=1h"}, "check", "-c", cfg)
	if code != 0 {
		t.Errorf("check with loop.ttl 1h: exit code %d, want 0:\n%s%s", code, stdout, stderr)
	}
}
