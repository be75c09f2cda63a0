package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/internal/proctest"
	"github.com/triggerbus/triggerbus/pkg/client"
	"github.com/triggerbus/triggerbus/pkg/event"
)

// fetchScript is an FDL script whose entry point GETs p.input.url with
// simplehttp: SUCCESS when a response came, else FAILED with the code of
// getLastError.
const fetchScript = `
function register() return {"%[1]s"} end
function %[1]s(p)
  if p == nil then
    return {ref = "%[1]s", triggerType = "PRE_CREATE", triggerOptions = {"%[2]s"}, api = "TRIGGER", version = 1}
  end
  local conn = new("simplehttp"):newConnection(p.input.url)
  if conn:get() then
    return {exitState = "SUCCESS"}
  end
  local code, message = conn:getLastError()
  return {exitState = "FAILED", errorCode = "HTTP_" .. code, errorMessage = message}
end
`

// TestScriptsDenyPrivateNetworks: scripts.deny_private_networks makes the
// simplehttp requests of FDL scripts, from scripts.dir and from a function's
// lua file, refuse a loopback address; without it they reach it.
func TestScriptsDenyPrivateNetworks(t *testing.T) {
	bin := proctest.Build(t, triggerWorkerPkg)
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)

	for _, deny := range []bool{true, false} {
		t.Run(fmt.Sprintf("deny=%v", deny), func(t *testing.T) {
			s := natstest.RunServer(t)
			cfg := scriptsConfig(t, s, fetchScript, "fetch", fmt.Sprintf("deny_private_networks: %v", deny))
			startServing(t, bin, cfg, s, "trigger.PRE_CREATE.SERVER", "trigger.PRE_CREATE.DISK")
			c := newClient(t, s, client.Options{})
			in, _ := json.Marshal(map[string]string{"url": srv.URL})
			for _, option := range []string{"SERVER", "DISK"} {
				before := hits.Load()
				d, err := c.Decide(context.Background(), "PRE_CREATE", option, &event.Event{Input: in})
				if err != nil {
					t.Fatal(err)
				}
				reached := hits.Load() > before
				if deny && (d.Allowed || d.Code != "HTTP_7" || !strings.Contains(d.Message, "not a public address") || reached) {
					t.Errorf("PRE_CREATE.%s with deny_private_networks: %+v (server reached: %v), want refused with HTTP_7 and the server not reached", option, d, reached)
				}
				if !deny && (!d.Allowed || !reached) {
					t.Errorf("PRE_CREATE.%s without deny_private_networks: %+v (server reached: %v), want allowed and the server reached", option, d, reached)
				}
			}
		})
	}
}

// apiScript is an FDL script whose entry point asks adminAPI.getQuota and
// refuses with the answer: it shows which subject the bridge used.
const apiScript = `
function register() return {"%[1]s"} end
function %[1]s(p)
  if p == nil then
    return {ref = "%[1]s", triggerType = "PRE_CREATE", triggerOptions = {"%[2]s"}, api = "TRIGGER", version = 1}
  end
  local ok, q = pcall(function() return adminAPI.getQuota() end)
  if not ok then
    return {exitState = "FAILED", errorCode = "API_ERROR", errorMessage = tostring(q)}
  end
  return {exitState = "FAILED", errorCode = "QUOTA", errorMessage = tostring(q)}
end
`

// TestScriptsAPIPrefix: scripts.api_prefix moves the adminAPI bridge of FDL
// scripts, from scripts.dir and from a function's lua file alike.
func TestScriptsAPIPrefix(t *testing.T) {
	bin := proctest.Build(t, triggerWorkerPkg)
	s := natstest.RunServer(t)
	nc := natstest.Connect(t, s)
	sub, err := nc.Subscribe("eu1.api.admin.getQuota", func(m *nats.Msg) { m.Respond([]byte(`{"result": "eu1"}`)) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	cfg := scriptsConfig(t, s, apiScript, "quota", "api_prefix: eu1.api")
	startServing(t, bin, cfg, s, "trigger.PRE_CREATE.SERVER", "trigger.PRE_CREATE.DISK")
	c := newClient(t, s, client.Options{})
	for _, option := range []string{"SERVER", "DISK"} {
		d, err := c.Decide(context.Background(), "PRE_CREATE", option, nil)
		if err != nil {
			t.Fatal(err)
		}
		if d.Allowed || d.Code != "QUOTA" || d.Message != "eu1" {
			t.Errorf("PRE_CREATE.%s: %+v, want refused QUOTA with the answer of eu1.api.admin.getQuota", option, d)
		}
	}
}

// startServing runs the worker binary on cfg and waits until it serves and
// the server has its interest in subjects.
func startServing(t *testing.T, bin, cfg string, s *server.Server, subjects ...string) *proctest.Process {
	t.Helper()
	p := proctest.Start(t, bin, "run", "-c", cfg)
	natstest.CheckFor(t, waitShort, poll, func() error {
		if !strings.Contains(p.Stderr(), "serving") {
			return fmt.Errorf("worker not serving yet")
		}
		return nil
	})
	for _, subj := range subjects {
		waitInterest(t, s, subj)
	}
	return p
}

// scriptsConfig writes a worker config on s whose functions run script
// (a format of entry-point name and option): <name>_dir on PRE_CREATE.SERVER
// from scripts.dir, and <name>_fn on PRE_CREATE.DISK from a function's lua
// file; scriptsKey is one more line of the scripts section.
func scriptsConfig(t *testing.T, s *server.Server, script, name, scriptsKey string) string {
	t.Helper()
	dir := t.TempDir()
	proctest.WriteFile(t, dir, name+"_dir.lua", fmt.Sprintf(script, name+"_dir", "SERVER"))
	fnFile := proctest.WriteFile(t, t.TempDir(), name+"_fn.lua", fmt.Sprintf(script, name+"_fn", "DISK"))
	return writeFile(t, "trigger-worker.yaml", fmt.Sprintf(`
nats:
  url: %q
scripts:
  dir: %q
  %s
functions:
  - ref: %s_fn
    trigger_type: PRE_CREATE
    trigger_options: [DISK]
    lua:
      file: %q
metrics:
  listen: "off"
`, s.ClientURL(), dir, scriptsKey, name, filepath.Clean(fnFile)))
}
