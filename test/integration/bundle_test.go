package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/triggerbus/triggerbus/internal/bundle"
	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/internal/proctest"
	"github.com/triggerbus/triggerbus/pkg/client"
	"github.com/triggerbus/triggerbus/pkg/event"
)

// bundleFleet is a test's fleet of `trigger-worker run` processes in
// bundle mode, and the deployer's functions command.
type bundleFleet struct {
	bin     string
	s       *server.Server
	workers []*loadingWorker
	// pushCfg is the deployer's configuration: its scripts.dir is scripts.
	pushCfg, scripts string
	pushEnv          []string
}

// startBundleFleet starts n workers in bundle mode with the extra keys of
// set; env[i], when given, is added to worker i's environment.
func startBundleFleet(t *testing.T, n int, set map[string]any, env ...[]string) *bundleFleet {
	t.Helper()
	f := &bundleFleet{bin: proctest.Build(t, triggerWorkerPkg), s: natstest.RunServer(t, natstest.WithJetStream())}
	dir := t.TempDir()
	f.scripts = filepath.Join(dir, "scripts")
	if err := os.Mkdir(f.scripts, 0o755); err != nil {
		t.Fatal(err)
	}
	f.pushCfg = proctest.WriteWorkerConfig(t, dir, f.s.ClientURL(), f.scripts, nil)
	keys := map[string]any{"bundle.source": "bundle", "scripts.dir": ""}
	for k, v := range set {
		keys[k] = v
	}
	for i := range n {
		cfg := proctest.WriteWorkerConfig(t, t.TempDir(), f.s.ClientURL(), "", keys)
		o := proctest.Options{Name: fmt.Sprint("worker-", i), LogTail: 40}
		if i < len(env) {
			o.Env = env[i]
		}
		p := proctest.StartWith(t, o, f.bin, "run", "-c", cfg)
		f.workers = append(f.workers, &loadingWorker{p: p, base: p.MetricsURL(t)})
	}
	return f
}

// functions runs trigger-worker functions with the deployer's configuration.
func (f *bundleFleet) functions(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	return proctest.RunWith(t, proctest.Options{Env: f.pushEnv}, f.bin, append(append([]string{"functions"}, args...), "-c", f.pushCfg)...)
}

// push pushes the deployer's functions and fails the test unless they
// become revision want.
func (f *bundleFleet) push(t *testing.T, want uint64, args ...string) {
	t.Helper()
	code, out, errOut := f.functions(t, append([]string{"push"}, args...)...)
	if code != 0 || !strings.Contains(out, fmt.Sprintf("revision %d is active", want)) {
		t.Fatalf("push of revision %d: exit %d\n%s%s", want, code, out, errOut)
	}
}

// waitRevision waits until every worker listed serves revision rev and is
// ready.
func (f *bundleFleet) waitRevision(t *testing.T, rev uint64, workers ...int) {
	t.Helper()
	if len(workers) == 0 {
		for i := range f.workers {
			workers = append(workers, i)
		}
	}
	for _, i := range workers {
		f.workers[i].waitMetric(t, "trigger_functions_revision", float64(rev))
		f.workers[i].p.WaitReady(t)
	}
}

// probeEnv returns the environment of a process that has the command
// bundle-probe on its PATH.
func probeEnv(t *testing.T) []string {
	t.Helper()
	dir := t.TempDir()
	proctest.WriteFile(t, dir, "bundle-probe", "#!/bin/sh\nexit 0\n")
	if err := os.Chmod(filepath.Join(dir, "bundle-probe"), 0o755); err != nil {
		t.Fatal(err)
	}
	return []string{"PATH=" + dir + string(os.PathListSeparator) + os.Getenv("PATH")}
}

// probeFunction is a PRE_CREATE DISK function running bundle-probe, for
// a definitions file.
const probeFunction = `
  - ref: probe_disk
    trigger_type: PRE_CREATE
    trigger_options: [DISK]
    exec:
      command: [bundle-probe]
      env: [PATH]
`

// quotaScript is proctest.DenyScript with a limit of cpus.
func quotaScript(cpus int) string {
	return strings.Replace(proctest.DenyScript, "cpu > 16", fmt.Sprintf("cpu > %d", cpus), 1)
}

// TestBundleFleet: three workers in bundle mode wait, not ready, for a
// revision; all serve revision 1 once it is pushed; while a client asks
// without pause, revision 2 (a lower quota) replaces it with no failed
// request, every decision naming the revision whose quota made it; an
// invalid bundle changes nothing; a revision whose exec command is on two
// workers' PATH only leaves the third on revision 2, reported; and
// functions activate 1 rolls the whole fleet back.
func TestBundleFleet(t *testing.T) {
	withProbe := probeEnv(t)
	f := startBundleFleet(t, 3, nil, withProbe, withProbe, nil)
	f.pushEnv = withProbe

	// No revision yet: not ready, and /readyz says why.
	for _, w := range f.workers {
		natstest.CheckFor(t, waitShort, poll, func() error {
			code, body := w.get(t, "/readyz")
			if code != 503 || !strings.Contains(body, "no functions served: waiting for") {
				return fmt.Errorf("/readyz = %d %q, want 503 waiting for a revision", code, body)
			}
			return nil
		})
	}

	proctest.WriteFile(t, f.scripts, "deny.lua", quotaScript(16))
	f.push(t, 1, "-m", "quota 16")
	f.waitRevision(t, 1)
	c := newClient(t, f.s, client.Options{})
	ask := func() (*event.Decision, error) {
		return c.Decide(context.Background(), "PRE_CREATE", "SERVER", &event.Event{Input: json.RawMessage(`{"cpu":12}`)})
	}
	for range 10 {
		if d, err := ask(); err != nil || d.Revision != 1 || !d.Allowed {
			t.Fatalf("decision with revision 1 active: %+v, %v; want allowed by revision 1", d, err)
		}
	}

	// Revision 2 while a client asks without pause.
	var (
		stop     atomic.Bool
		answers  atomic.Int64
		mu       sync.Mutex
		problems []string
		lastRev  atomic.Uint64
		wg       sync.WaitGroup
	)
	wg.Go(func() {
		for !stop.Load() {
			d, err := ask()
			answers.Add(1)
			// 12 CPUs: allowed by revision 1 (quota 16), refused by
			// revision 2 (quota 8).
			switch {
			case err != nil:
				mu.Lock()
				problems = append(problems, err.Error())
				mu.Unlock()
			case d.Revision == 1 && d.Allowed, d.Revision == 2 && !d.Allowed && d.Code == "QUOTA_EXCEEDED":
				lastRev.Store(d.Revision)
				continue
			default:
				mu.Lock()
				problems = append(problems, fmt.Sprintf("%+v", d))
				mu.Unlock()
			}
		}
	})
	proctest.WriteFile(t, f.scripts, "deny.lua", quotaScript(8))
	f.push(t, 2, "-m", "quota 8")
	f.waitRevision(t, 2)
	// Every worker serves revision 2: from now on every answer is of it.
	natstest.CheckFor(t, waitShort, poll, func() error {
		if lastRev.Load() != 2 {
			return fmt.Errorf("last answer of revision %d", lastRev.Load())
		}
		return nil
	})
	stop.Store(true)
	wg.Wait()
	mu.Lock()
	if len(problems) > 0 {
		t.Fatalf("%d of %d requests failed or disagreed with their revision while revision 2 came in: %v", len(problems), answers.Load(), problems)
	}
	mu.Unlock()
	for range 10 {
		if d, err := ask(); err != nil || d.Revision != 2 || d.Allowed {
			t.Fatalf("decision with revision 2 active: %+v, %v; want refused by revision 2", d, err)
		}
	}

	// An invalid bundle is refused by push and changes nothing.
	proctest.WriteFile(t, f.scripts, "broken.lua", "function register( return end")
	if code, out, errOut := f.functions(t, "push"); code != 2 || !strings.Contains(errOut, "nothing pushed") {
		t.Fatalf("push of a broken script: exit %d, want 2\n%s%s", code, out, errOut)
	}
	if err := os.Remove(filepath.Join(f.scripts, "broken.lua")); err != nil {
		t.Fatal(err)
	}

	// Revision 3 has an exec function whose command only workers 0 and 1
	// (and the deployer) have.
	dir := t.TempDir()
	proctest.WriteFile(t, dir, "functions.yaml", "functions:"+probeFunction+`scripts:
  dir: scripts
`)
	if err := os.Mkdir(filepath.Join(dir, "scripts"), 0o755); err != nil {
		t.Fatal(err)
	}
	proctest.WriteFile(t, filepath.Join(dir, "scripts"), "deny.lua", quotaScript(8))
	f.push(t, 3, dir, "-m", "probe")
	f.waitRevision(t, 3, 0, 1)
	refused := f.workers[2]
	refused.waitMetric(t, "trigger_config_last_reload_successful", 0)
	if got := refused.metric(t, "trigger_functions_revision"); got != 2 {
		t.Fatalf("worker without the command serves revision %v, want 2", got)
	}
	if got := refused.metric(t, "trigger_reload_failures_total"); got < 1 {
		t.Fatalf("trigger_reload_failures_total = %v, want at least 1", got)
	}
	code, body := refused.get(t, "/readyz")
	if code != 200 || !strings.Contains(body, "still serving revision 2") || !strings.Contains(body, "revision 3: ") || !strings.Contains(body, "bundle-probe") {
		t.Fatalf("/readyz of the worker that refused revision 3 = %d\n%s", code, body)
	}

	// Roll the fleet back.
	if code, out, errOut := f.functions(t, "activate", "1"); code != 0 {
		t.Fatalf("activate 1: exit %d\n%s%s", code, out, errOut)
	}
	f.waitRevision(t, 1)
	refused.waitMetric(t, "trigger_config_last_reload_successful", 1)
	for range 10 {
		if d, err := ask(); err != nil || d.Revision != 1 || !d.Allowed {
			t.Fatalf("decision after the roll back: %+v, %v; want allowed by revision 1", d, err)
		}
	}

	// SIGHUP in bundle mode loads the active revision again.
	w := f.workers[0]
	const loaded1 = `msg="function bundle revision loaded" revision=1 `
	before := strings.Count(w.p.Stderr(), loaded1)
	w.p.Signal(t, syscall.SIGHUP)
	natstest.CheckFor(t, waitShort, poll, func() error {
		if n := strings.Count(w.p.Stderr(), loaded1); n != before+1 {
			return fmt.Errorf("revision 1 loaded %d times, want %d", n, before+1)
		}
		return nil
	})
	if got := w.metric(t, "trigger_functions_revision"); got != 1 {
		t.Fatalf("after SIGHUP: revision %v, want 1", got)
	}
}

// tamperRevision changes file name inside stored revision rev to content,
// keeping its manifest and signature, and returns the JetStream it used.
func tamperRevision(t *testing.T, s *server.Server, rev uint64, name, content string) jetstream.JetStream {
	t.Helper()
	ctx := context.Background()
	js, err := jetstream.New(natstest.Connect(t, s))
	if err != nil {
		t.Fatal(err)
	}
	obj, err := js.ObjectStore(ctx, "TRIGGER_FUNCTIONS")
	if err != nil {
		t.Fatal(err)
	}
	data, err := obj.GetBytes(ctx, bundle.ObjectName(rev))
	if err != nil {
		t.Fatal(err)
	}
	b, err := bundle.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	b.Files[name] = []byte(content)
	if data, err = b.Encode(); err != nil {
		t.Fatal(err)
	}
	if _, err := obj.PutBytes(ctx, bundle.ObjectName(rev), data); err != nil {
		t.Fatal(err)
	}
	return js
}

// TestBundleSigned: workers with bundle.trusted_keys serve a revision
// signed by the trusted key, and every one refuses an unsigned revision,
// one signed by another key and one whose script was changed in the store
// after it was signed, serving the signed revision meanwhile.
func TestBundleSigned(t *testing.T) {
	bin := proctest.Build(t, triggerWorkerPkg)
	keys := t.TempDir()
	code, pub, errOut := proctest.Run(t, bin, "functions", "keygen", filepath.Join(keys, "ops.nk"))
	if code != 0 {
		t.Fatalf("keygen: exit %d: %s", code, errOut)
	}
	if code, _, _ := proctest.Run(t, bin, "functions", "keygen", filepath.Join(keys, "other.nk")); code != 0 {
		t.Fatal("keygen other")
	}
	f := startBundleFleet(t, 3, map[string]any{"bundle.trusted_keys": []string{strings.TrimSpace(pub)}})
	proctest.WriteFile(t, f.scripts, "deny.lua", quotaScript(16))
	f.push(t, 1, "--sign", filepath.Join(keys, "ops.nk"))
	f.waitRevision(t, 1)

	refusedBy := func(rev uint64, failures float64, why string) {
		t.Helper()
		for _, w := range f.workers {
			w.waitMetric(t, "trigger_reload_failures_total", failures)
			if got := w.metric(t, "trigger_functions_revision"); got != 1 {
				t.Fatalf("after revision %d (%s): a worker serves revision %v, want 1", rev, why, got)
			}
			if _, body := w.get(t, "/readyz"); !strings.Contains(body, fmt.Sprintf("revision %d: ", rev)) {
				t.Fatalf("after revision %d (%s): /readyz does not name it:\n%s", rev, why, body)
			}
		}
	}
	f.push(t, 2)
	refusedBy(2, 1, "unsigned")
	f.push(t, 3, "--sign", filepath.Join(keys, "other.nk"))
	refusedBy(3, 2, "another key")

	// Revision 4, signed by the trusted key, with its script changed in
	// the store before it is activated.
	if code, out, errOut := f.functions(t, "push", "--no-activate", "--sign", filepath.Join(keys, "ops.nk")); code != 0 {
		t.Fatalf("push 4: exit %d\n%s%s", code, out, errOut)
	}
	js := tamperRevision(t, f.s, 4, "scripts/deny.lua", quotaScript(1600))
	ctx := context.Background()
	kv, err := js.KeyValue(ctx, "TRIGGER_FUNCTIONS_HEAD")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, bundle.KeyActive, []byte("4")); err != nil {
		t.Fatal(err)
	}
	refusedBy(4, 3, "tampered")
}

// TestBundleDurableSwitches: POST events published without pause through
// three revision switches, each revision with a different function on the
// subject, are all run (none lost while workers disagree), and an event
// published once the workers that can serve revision R do is never run by
// the functions of an earlier revision: not even by the worker that
// refused revision 3 (its exec command is missing there) and still serves
// revision 2.
func TestBundleDurableSwitches(t *testing.T) {
	type run struct {
		fn  string
		rev uint64
	}
	runs := newRecorder[string, run]()
	hook := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		var ev event.Event
		if err := json.NewDecoder(r.Body).Decode(&ev); err != nil {
			rw.WriteHeader(http.StatusBadRequest)
			return
		}
		rev, _ := strconv.ParseUint(r.URL.Query().Get("rev"), 10, 64)
		runs.add(ev.ID, run{fn: strings.TrimPrefix(r.URL.Path, "/"), rev: rev})
		rw.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(hook.Close)

	withProbe := probeEnv(t)
	f := startBundleFleet(t, 3, map[string]any{"delivery.mode": "durable"}, withProbe, withProbe, nil)
	f.pushEnv = withProbe
	// Revision r has function fn on POST_CREATE.SERVER; 3 also the probe,
	// which worker 2 lacks.
	revision := func(r uint64, fn string) string {
		dir := t.TempDir()
		defs := fmt.Sprintf(`
functions:
  - ref: %[1]s
    trigger_type: POST_CREATE
    trigger_options: [SERVER]
    webhook:
      url: %[2]s/%[1]s?rev=%[3]d
`, fn, hook.URL, r)
		if r == 3 {
			defs += probeFunction
		}
		proctest.WriteFile(t, dir, "functions.yaml", defs)
		return dir
	}
	fns := map[uint64]string{1: "server_a", 2: "server_b", 3: "server_a", 4: "server_b"}
	f.push(t, 1, revision(1, fns[1]))
	f.waitRevision(t, 1)

	c := newClient(t, f.s, client.Options{Durable: true})
	var (
		mu       sync.Mutex
		ids      []string
		stop     atomic.Bool
		wg       sync.WaitGroup
		pubErr   error
		boundary = map[uint64]int{1: 0}
	)
	wg.Go(func() {
		for !stop.Load() {
			id, err := c.Publish(context.Background(), "POST_CREATE", "SERVER", &event.Event{Input: json.RawMessage(`{"cpu":1}`)})
			mu.Lock()
			if err != nil {
				pubErr = err
				mu.Unlock()
				return
			}
			ids = append(ids, id)
			mu.Unlock()
		}
	})
	published := func(min int) {
		t.Helper()
		natstest.CheckFor(t, waitShort, poll, func() error {
			mu.Lock()
			defer mu.Unlock()
			if len(ids) < min {
				return fmt.Errorf("%d events published, waiting for %d", len(ids), min)
			}
			return nil
		})
	}
	published(20)
	for r := uint64(2); r <= 4; r++ {
		f.push(t, r, revision(r, fns[r]))
		if r == 3 {
			f.waitRevision(t, r, 0, 1)
			f.workers[2].waitMetric(t, "trigger_config_last_reload_successful", 0)
		} else {
			f.waitRevision(t, r)
		}
		mu.Lock()
		boundary[r] = len(ids)
		mu.Unlock()
		published(boundary[r] + 20)
	}
	stop.Store(true)
	wg.Wait()
	if pubErr != nil {
		t.Fatalf("publish: %v", pubErr)
	}

	// Every event runs; none by a revision older than the one every worker
	// served when it was published.
	natstest.CheckFor(t, waitShort, poll, func() error {
		got := runs.snapshot()
		for _, id := range ids {
			if len(got[id]) == 0 {
				return fmt.Errorf("event %s has not run (of %d published)", id, len(ids))
			}
		}
		return nil
	})
	got := runs.snapshot()
	for i, id := range ids {
		floor := uint64(1)
		for r, b := range boundary {
			if i >= b && r > floor {
				floor = r
			}
		}
		for _, rn := range got[id] {
			if rn.rev < floor || fns[rn.rev] != rn.fn {
				t.Errorf("event %d (%s), published once revision %d was served, ran %s of revision %d", i, id, floor, rn.fn, rn.rev)
			}
		}
	}
	t.Logf("%d events across 3 switches (boundaries %v)", len(ids), boundary)
}
