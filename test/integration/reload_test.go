package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/internal/proctest"
	"github.com/triggerbus/triggerbus/pkg/client"
	"github.com/triggerbus/triggerbus/pkg/event"
)

const reloadDenyScript = `
function register() return {"deny_disk"} end
function deny_disk(p)
  if p == nil then
    return {ref = "deny_disk", name = "deny disks", description = "refuses disks",
      triggerType = "PRE_CREATE", triggerOptions = {"DISK"}, api = "TRIGGER", version = 1}
  end
  return {exitState = "FAILED", errorCode = "NO_DISKS", errorMessage = "disks are refused"}
end
`

// TestReloadOnSIGHUP: SIGHUP reloads the scripts; the new function is
// served and its subject subscribed, the removed one is gone, and a reload
// whose config no longer loads keeps the functions it had.
func TestReloadOnSIGHUP(t *testing.T) {
	bin := proctest.Build(t, triggerWorkerPkg)
	// JetStream, so that the registry tells "no trigger" from "no worker".
	s := natstest.RunServer(t, natstest.WithJetStream())
	scripts := t.TempDir()
	cfg := writeFile(t, "trigger-worker.yaml", fmt.Sprintf(`
nats:
  url: %q
scripts:
  dir: %q
metrics:
  listen: "off"
`, s.ClientURL(), scripts))
	p := proctest.Start(t, bin, "run", "-c", cfg)
	c := newClient(t, s, client.Options{})
	decide := func() *event.Decision {
		t.Helper()
		d, err := c.Decide(context.Background(), "PRE_CREATE", "DISK", &event.Event{Input: json.RawMessage(`{"size":10}`)})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	// No functions yet: nothing subscribed, allowed (NO_TRIGGER).
	natstest.CheckFor(t, waitShort, poll, func() error {
		if !strings.Contains(p.Stderr(), "serving") {
			return fmt.Errorf("worker not serving yet")
		}
		return nil
	})
	if d := decide(); !d.Allowed {
		t.Fatalf("before reload: %+v, want allowed", d)
	}

	if err := os.WriteFile(filepath.Join(scripts, "deny.lua"), []byte(reloadDenyScript), 0o600); err != nil {
		t.Fatal(err)
	}
	p.Signal(t, syscall.SIGHUP)
	waitInterest(t, s, "trigger.PRE_CREATE.DISK")
	if d := decide(); d.Allowed || d.Code != "NO_DISKS" {
		t.Fatalf("after reload: %+v, want refused with NO_DISKS", d)
	}

	// A config that no longer loads: the old functions stay.
	if err := os.WriteFile(cfg, []byte("nats: {url: [not, a, string]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p.Signal(t, syscall.SIGHUP)
	natstest.CheckFor(t, waitShort, poll, func() error {
		if !strings.Contains(p.Stderr(), "reload failed, keeping the current functions") {
			return fmt.Errorf("no reload failure logged yet")
		}
		return nil
	})
	if d := decide(); d.Allowed || d.Code != "NO_DISKS" {
		t.Fatalf("after a failed reload: %+v, want the old function still refusing", d)
	}
	p.Signal(t, syscall.SIGTERM)
	if code := p.ExitCode(t); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
}
