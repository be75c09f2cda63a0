package faults_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/internal/proctest"
	"github.com/triggerbus/triggerbus/pkg/client"
	"github.com/triggerbus/triggerbus/pkg/event"
)

// denyNetworkScript refuses every network.
const denyNetworkScript = `
function register() return { "deny_networks" } end

function deny_networks(p)
  if p == nil then
    return { ref = "deny_networks", triggerType = "PRE_CREATE", triggerOptions = { "NETWORK" }, api = "TRIGGER" }
  end
  return { exitState = "FAILED", errorCode = "NO_NETWORKS", errorMessage = "networks are refused" }
end
`

// registryWorkerConfig writes the config of a trigger-worker process that
// loads the scripts of scripts from url, with core delivery.
func registryWorkerConfig(t testing.TB, dir, url, scripts string) string {
	t.Helper()
	return proctest.WriteWorkerConfig(t, dir, url, scripts, nil)
}

// startNamedWorker runs `trigger-worker run -c cfg` as startWorkerProcess
// does, named name in the registry (registry.instance, set through the
// environment).
func startNamedWorker(t testing.TB, name, cfg string) *proctest.Process {
	t.Helper()
	return proctest.StartWith(t, proctest.Options{Name: name, LogTail: 60, Env: []string{"TRIGGER_REGISTRY_INSTANCE=" + name}},
		proctest.Build(t, "./cmd/trigger-worker"), "run", "-c", cfg)
}

// Log lines of trigger-worker: serving after a start, and the outcome of
// a reload (reloaded, or reload failed).
var (
	servingRE = regexp.MustCompile(`msg="?serving`)
	reloadRE  = regexp.MustCompile(`msg="?reload`)
)

// waitStartedOrExited waits until p logs marker, or exits: a broken config
// may be refused, or loaded with fewer functions.
func waitStartedOrExited(t testing.TB, p *proctest.Process, marker *regexp.Regexp) {
	t.Helper()
	natstest.CheckFor(t, waitLong, poll, func() error {
		select {
		case <-p.Exited():
			return nil
		default:
		}
		if marker.MatchString(p.Stderr()) {
			return nil
		}
		return fmt.Errorf("no %s logged yet", marker)
	})
}

// TestRegistryOneBrokenWorker is the reproduction of issue 12: three
// workers run a PRE_CREATE.NETWORK deny function; one is restarted with a
// mistyped scripts dir, another reloads (SIGHUP) after a syntax error in
// its script; then every worker is killed. A caller must still be refused
// with NO_WORKER: one misconfigured worker must not empty the registry
// and turn the deny trigger into a silent allow.
func TestRegistryOneBrokenWorker(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t, natstest.WithJetStream())
	url := s.ClientURL()
	const workers = 3
	procs := make([]*proctest.Process, workers)
	scripts := make([]string, workers)
	for i := range procs {
		dir := t.TempDir()
		scripts[i] = filepath.Join(dir, "scripts")
		if err := os.Mkdir(scripts[i], 0o700); err != nil {
			t.Fatal(err)
		}
		proctest.WriteFile(t, scripts[i], "deny.lua", denyNetworkScript)
		procs[i] = startNamedWorker(t, fmt.Sprintf("worker-%d", i), registryWorkerConfig(t, dir, url, scripts[i]))
	}
	for _, p := range procs {
		p.WaitReady(t)
	}
	c, err := client.New(publisherConn(t, url), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	decide := func(when string, allowed bool, code string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), waitShort)
		defer cancel()
		d, err := c.Decide(ctx, "PRE_CREATE", "NETWORK", nil)
		if err != nil {
			t.Fatal(err)
		}
		if d.Allowed != allowed || d.Code != code {
			t.Fatalf("%s: Decide(PRE_CREATE, NETWORK) = allowed %v code %s (%s), want allowed %v code %s",
				when, d.Allowed, d.Code, d.Message, allowed, code)
		}
	}
	decide("with three workers", false, "NO_NETWORKS")

	// worker-1 is restarted with a mistyped scripts dir.
	procs[1].Stop(t)
	dir := t.TempDir()
	procs[1] = startWorkerProcess(t, "worker-1 (mistyped scripts dir)",
		registryWorkerConfig(t, dir, url, scripts[1]+"-typo"))
	waitStartedOrExited(t, procs[1], servingRE)

	// worker-2 reloads after a syntax error in its script.
	proctest.WriteFile(t, scripts[2], "deny.lua", "function register( return {")
	procs[2].Signal(t, syscall.SIGHUP)
	waitStartedOrExited(t, procs[2], reloadRE)
	decide("after the broken restart and reload", false, "NO_NETWORKS")

	for _, p := range procs {
		_ = p.Kill()
		p.Wait(t)
	}
	decide("with every worker killed", false, event.CodeNoWorker)

	// The operators' view: the registrations of the killed worker-0 and of
	// worker-1, stopped before its broken restart, stay, and none answers.
	// (worker-2's depends on whether a reload with a broken script keeps
	// the functions it had.)
	code, out, errOut := proctest.Run(t, proctest.Build(t, "./cmd/trigger-worker"), "registry", "ls", "--nats-url", url)
	if code != 0 {
		t.Fatalf("registry ls: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, name := range []string{"worker-0", "worker-1"} {
		re := regexp.MustCompile(`(?m)^trigger\.PRE_CREATE\.NETWORK\s+` + name + `\s+deny_networks\s.*\sno$`)
		if !re.MatchString(out) {
			t.Errorf("registry ls: no line matching %s in\n%s", re, out)
		}
	}
}
