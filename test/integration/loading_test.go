package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/internal/proctest"
	"github.com/triggerbus/triggerbus/pkg/client"
	"github.com/triggerbus/triggerbus/pkg/event"
)

// denyScript is the good deny.lua of the loading tests: deny_disk (its
// entry point at line 2) refuses every disk.
const denyScript = `function register() return {"deny_disk"} end
function deny_disk(p)
  if p == nil then
    return {ref = "deny_disk", triggerType = %s, triggerOptions = %s, priority = %s}
  end
  return {exitState = "FAILED", errorCode = "NO_DISKS", errorMessage = "disks are refused"}
end
`

// denyWith is deny.lua with its description's triggerType, triggerOptions
// and priority written as Lua expressions.
func denyWith(typ, options, priority string) string {
	return fmt.Sprintf(denyScript, typ, options, priority)
}

var goodDeny = denyWith(`"PRE_CREATE"`, `{"DISK"}`, "0")

// loadState is what a worker's configuration holds: the files of its
// scripts directory and the functions of its config file.
type loadState struct {
	// files are the scripts, by file name; deny.lua is goodDeny unless
	// given ("" removes it).
	files map[string]string
	// functions is the YAML of the config's functions list, "" for none.
	functions string
	// noScriptsDir makes scripts.dir name a directory that does not exist.
	noScriptsDir bool
	// extra is YAML appended to the config file.
	extra string
}

// writeState makes dir hold st: dir/trigger-worker.yaml and the scripts in
// dir/scripts (what was there before is removed). The config file's lines
// are fixed: scripts.dir at line 4, functions[0] at line 8.
func writeState(t *testing.T, dir, natsURL string, st loadState) string {
	t.Helper()
	scripts := filepath.Join(dir, "scripts")
	if err := os.RemoveAll(scripts); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(scripts, 0o700); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{"deny.lua": goodDeny}
	for name, content := range st.files {
		files[name] = content
	}
	for name, content := range files {
		if content != "" {
			proctest.WriteFile(t, scripts, name, content)
		}
	}
	scriptsDir := scripts
	if st.noScriptsDir {
		scriptsDir = filepath.Join(dir, "no-such-dir")
	}
	cfg := fmt.Sprintf("nats:\n  url: %q\nscripts:\n  dir: %q\nmetrics:\n  listen: 127.0.0.1:0\n", natsURL, scriptsDir)
	if st.functions != "" {
		cfg += "functions:\n" + st.functions
	}
	cfg += st.extra
	return proctest.WriteFile(t, dir, "trigger-worker.yaml", cfg)
}

// yamlDeny is a functions list with deny_disk served by handler (YAML of
// one handler key, indented 4).
func yamlDeny(handler string) string {
	return "  - ref: deny_disk\n    trigger_type: PRE_CREATE\n    trigger_options: [DISK]\n" + handler
}

// loadingMistakes are the configuration mistakes of issue 12 that check
// reports (exit 2). Each breaks deny_disk itself, so that a worker serving
// what loaded would allow the disks it refuses. want are in the listing of
// the problems: "{dir}" stands for the test's directory, so the file and
// line are checked too.
var loadingMistakes = []struct {
	name  string
	state loadState
	want  []string
}{
	{
		name:  "lua syntax error",
		state: loadState{files: map[string]string{"deny.lua": strings.Replace(goodDeny, "function deny_disk(p)", "function deny_disk(p", 1)}},
		want:  []string{"{dir}/scripts/deny.lua:3:", "syntax error"},
	},
	{
		name:  "register raises",
		state: loadState{files: map[string]string{"deny.lua": strings.Replace(goodDeny, `return {"deny_disk"}`, `error("no register today")`, 1)}},
		want:  []string{"{dir}/scripts/deny.lua:1:", "register()", "no register today"},
	},
	{
		name:  "entry point missing from register",
		state: loadState{files: map[string]string{"deny.lua": strings.Replace(goodDeny, `return {"deny_disk"}`, `return {}`, 1)}},
		want:  []string{"{dir}/scripts/deny.lua:2:", "entry point deny_disk", "not listed by register()"},
	},
	{
		name:  "trigger type typo",
		state: loadState{files: map[string]string{"deny.lua": denyWith(`"PRE_CRATE"`, `{"DISK"}`, "0")}},
		want:  []string{"{dir}/scripts/deny.lua:2)", `unknown trigger type "PRE_CRATE"`},
	},
	{
		name:  "trigger type in lower case",
		state: loadState{files: map[string]string{"deny.lua": denyWith(`"pre_create"`, `{"DISK"}`, "0")}},
		want:  []string{"{dir}/scripts/deny.lua:2)", `unknown trigger type "pre_create"`},
	},
	{
		name:  "option in lower case",
		state: loadState{files: map[string]string{"deny.lua": denyWith(`"PRE_CREATE"`, `{"disk"}`, "0")}},
		want:  []string{"{dir}/scripts/deny.lua:2)", `unknown option "disk"`},
	},
	{
		name:  "option with a trailing space",
		state: loadState{files: map[string]string{"deny.lua": denyWith(`"PRE_CREATE"`, `{"DISK "}`, "0")}},
		want:  []string{"{dir}/scripts/deny.lua:2)", `"DISK " has white space`},
	},
	{
		name:  "options a string, not a list",
		state: loadState{files: map[string]string{"deny.lua": denyWith(`"PRE_CREATE"`, `"DISK"`, "0")}},
		want:  []string{"{dir}/scripts/deny.lua:2:", "triggerOptions is a string"},
	},
	{
		name:  "options an empty list",
		state: loadState{files: map[string]string{"deny.lua": denyWith(`"PRE_CREATE"`, `{}`, "0")}},
		want:  []string{"{dir}/scripts/deny.lua:2)", "no options"},
	},
	{
		name:  "priority a string",
		state: loadState{files: map[string]string{"deny.lua": denyWith(`"PRE_CREATE"`, `{"DISK"}`, `"high"`)}},
		want:  []string{"{dir}/scripts/deny.lua:2:", `priority is a string ("high")`},
	},
	{
		// 0_dup.lua sorts first, so deny.lua's deny_disk is the one that
		// loses.
		name: "duplicate ref",
		state: loadState{files: map[string]string{"0_dup.lua": `function register() return {"allow_disk"} end
function allow_disk(p)
  if p == nil then return {ref = "deny_disk", triggerType = "PRE_CREATE", triggerOptions = {"DISK"}} end
end
`}},
		want: []string{"{dir}/scripts/deny.lua:2)", "duplicate ref", "{dir}/scripts/0_dup.lua:2"},
	},
	{
		name:  "scripts.dir missing",
		state: loadState{noScriptsDir: true},
		want:  []string{"{dir}/trigger-worker.yaml:4 scripts.dir", "{dir}/no-such-dir", "cannot be read"},
	},
	{
		name: "exec binary missing",
		state: loadState{files: map[string]string{"deny.lua": ""},
			functions: yamlDeny("    exec: {command: [/nonexistent/deny-disk]}\n")},
		want: []string{"{dir}/trigger-worker.yaml:8 functions[0]", "/nonexistent/deny-disk"},
	},
	{
		name: "lua file missing",
		state: loadState{files: map[string]string{"deny.lua": ""},
			functions: yamlDeny("    lua: {file: /nonexistent/deny.lua}\n")},
		want: []string{"{dir}/trigger-worker.yaml:8 functions[0]", "/nonexistent/deny.lua", "cannot read"},
	},
	{
		name: "webhook to a private address",
		state: loadState{files: map[string]string{"deny.lua": ""},
			functions: yamlDeny("    webhook: {url: \"http://10.1.2.3/deny\", deny_private_networks: true}\n")},
		want: []string{"{dir}/trigger-worker.yaml:8 functions[0]", "10.1.2.3 is a private address"},
	},
	{
		// Not a function problem: the config file does not load.
		name:  "unknown config key",
		state: loadState{extra: "loop:\n  ttll: 5m\n"},
		want:  []string{`{dir}/trigger-worker.yaml:8: unknown key "loop.ttll" (did you mean "loop.ttl"?)`},
	},
}

// problemLines returns the "  - " lines of a problem listing.
func problemLines(s string) []string {
	var out []string
	for line := range strings.Lines(s) {
		if strings.HasPrefix(line, "  - ") {
			out = append(out, strings.TrimSpace(line))
		}
	}
	return out
}

// TestRunRefusesMistakes: for each mistake, run refuses to start (exit 2)
// and lists the same problems as check, with file and line.
func TestRunRefusesMistakes(t *testing.T) {
	t.Parallel()
	bin := proctest.Build(t, triggerWorkerPkg)
	s := natstest.RunServer(t)
	for _, tt := range loadingMistakes {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			cfg := writeState(t, dir, s.ClientURL(), tt.state)

			code, _, checkErr := proctest.Run(t, bin, "check", "-c", cfg)
			if code != 2 {
				t.Errorf("check exit code %d, want 2", code)
			}
			code, _, runErr := proctest.Run(t, bin, "run", "-c", cfg)
			if code != 2 {
				t.Fatalf("run exit code %d, want 2; stderr:\n%s", code, runErr)
			}
			got := problemLines(runErr)
			if want := problemLines(checkErr); len(got) == 0 || !slices.Equal(got, want) {
				t.Errorf("run listed the problems\n%q\ncheck listed\n%q", got, want)
			}
			listing := strings.Join(got, "\n")
			for _, w := range tt.want {
				if w = strings.ReplaceAll(w, "{dir}", dir); !strings.Contains(listing, w) {
					t.Errorf("run's problems do not contain %q:\n%s", w, listing)
				}
			}
		})
	}
}

// loadingWorker is a `trigger-worker run` process of the loading tests,
// serving deny_disk on its own NATS server.
type loadingWorker struct {
	p    *proctest.Process
	base string // of /metrics and /readyz
	c    *client.Client
}

func startLoadingWorker(t *testing.T, bin string, s *server.Server, cfg string, args ...string) *loadingWorker {
	t.Helper()
	p := proctest.Start(t, bin, append([]string{"run", "-c", cfg}, args...)...)
	w := &loadingWorker{p: p, base: p.WaitReady(t), c: newClient(t, s, client.Options{})}
	waitInterest(t, s, "trigger.PRE_CREATE.DISK")
	return w
}

// decision asks whether a disk may be created.
func (w *loadingWorker) decision(t *testing.T) *event.Decision {
	t.Helper()
	return decide(t, context.Background(), w.c, "PRE_CREATE", "DISK", &event.Event{Input: json.RawMessage(`{"size":10}`)})
}

// wantDenied fails the test unless deny_disk refused the disk.
func (w *loadingWorker) wantDenied(t *testing.T, when string) {
	t.Helper()
	if d := w.decision(t); d.Allowed || d.Code != "NO_DISKS" {
		t.Fatalf("%s: decision %+v, want refused by deny_disk (NO_DISKS)", when, d)
	}
}

// get returns the status and body of a GET of the worker's endpoint.
func (w *loadingWorker) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(w.base + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode, string(body)
}

// metric returns the value of an unlabelled series of /metrics, or -1 when
// it is absent.
func (w *loadingWorker) metric(t *testing.T, name string) float64 {
	t.Helper()
	_, body := w.get(t, "/metrics")
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			return f
		}
	}
	return -1
}

// waitMetric waits until the series reads want.
func (w *loadingWorker) waitMetric(t *testing.T, name string, want float64) {
	t.Helper()
	natstest.CheckFor(t, waitShort, poll, func() error {
		if got := w.metric(t, name); got != want {
			return fmt.Errorf("%s = %v, want %v", name, got, want)
		}
		return nil
	})
}

// reloadLogged matches the last line of a reload in the log, whether it
// was applied or not.
var reloadLogged = regexp.MustCompile(`msg=(reloaded|"reload failed)`)

// waitReloaded waits until the worker has logged the end of n reloads.
func (w *loadingWorker) waitReloaded(t *testing.T, n int) {
	t.Helper()
	natstest.CheckFor(t, waitShort, poll, func() error {
		if got := len(reloadLogged.FindAllString(w.p.Stderr(), -1)); got < n {
			return fmt.Errorf("%d reloads logged, want %d", got, n)
		}
		return nil
	})
}

// TestReloadKeepsFunctionsOnMistake: for each mistake, a worker serving
// deny_disk gets SIGHUP with the mistake in its configuration. It keeps
// deny_disk (a disk is still refused), counts the failure, and /readyz
// (still 200) says the reload failed and why. Mending the configuration
// and another SIGHUP clears it.
func TestReloadKeepsFunctionsOnMistake(t *testing.T) {
	t.Parallel()
	bin := proctest.Build(t, triggerWorkerPkg)
	for _, tt := range loadingMistakes {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := natstest.RunServer(t)
			dir := t.TempDir()
			cfg := writeState(t, dir, s.ClientURL(), loadState{})
			w := startLoadingWorker(t, bin, s, cfg)
			w.wantDenied(t, "before the reload")
			if got := w.metric(t, "trigger_config_last_reload_successful"); got != 1 {
				t.Errorf("trigger_config_last_reload_successful = %v at start, want 1", got)
			}

			writeState(t, dir, s.ClientURL(), tt.state)
			w.p.Signal(t, syscall.SIGHUP)
			w.waitReloaded(t, 1)
			w.wantDenied(t, "after a reload with the mistake")
			w.waitMetric(t, "trigger_reload_failures_total", 1)
			if got := w.metric(t, "trigger_config_last_reload_successful"); got != 0 {
				t.Errorf("trigger_config_last_reload_successful = %v after a failed reload, want 0", got)
			}
			code, body := w.get(t, "/readyz")
			if code != http.StatusOK || !strings.HasPrefix(body, "ready\nlast reload failed at ") ||
				!strings.Contains(body, "still serving the functions loaded at") {
				t.Errorf("/readyz = %d %q, want 200, ready and the failed reload", code, body)
			}
			for _, want := range tt.want {
				if want = strings.ReplaceAll(want, "{dir}", dir); !strings.Contains(body, want) {
					t.Errorf("/readyz does not contain %q:\n%s", want, body)
				}
			}
			if !strings.Contains(w.p.Stderr(), "reload failed, keeping the current functions") {
				t.Errorf("no error logged for the failed reload")
			}

			writeState(t, dir, s.ClientURL(), loadState{})
			w.p.Signal(t, syscall.SIGHUP)
			w.waitReloaded(t, 2)
			w.waitMetric(t, "trigger_config_last_reload_successful", 1)
			w.wantDenied(t, "after the mended reload")
			if code, body := w.get(t, "/readyz"); code != http.StatusOK || strings.Contains(body, "failed") {
				t.Errorf("/readyz after the mended reload = %d %q, want 200 without a failure", code, body)
			}
			if got := w.metric(t, "trigger_reload_failures_total"); got != 1 {
				t.Errorf("trigger_reload_failures_total = %v, want 1 (the mended reload succeeded)", got)
			}
			w.p.Stop(t)
		})
	}
}

// TestAllowPartial: with partial loading allowed (the flag or the config
// key), a worker starts with a script that does not load, serves the
// functions that did, and warns at every load; a reload with a mistake
// is applied (with a warning), not counted as a failure.
func TestAllowPartial(t *testing.T) {
	t.Parallel()
	bin := proctest.Build(t, triggerWorkerPkg)
	broken := loadState{files: map[string]string{"broken.lua": "function register( return {} end\n"}}
	for _, tt := range []struct {
		name string
		args []string
		env  []string
	}{
		{name: "flag", args: []string{"--allow-partial"}},
		{name: "config key", env: []string{"TRIGGER_LOADING_ALLOW_PARTIAL=true"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := natstest.RunServer(t)
			dir := t.TempDir()
			cfg := writeState(t, dir, s.ClientURL(), broken)
			p := proctest.StartWith(t, proctest.Options{Env: tt.env}, bin, append([]string{"run", "-c", cfg}, tt.args...)...)
			w := &loadingWorker{p: p, base: p.WaitReady(t), c: newClient(t, s, client.Options{})}
			waitInterest(t, s, "trigger.PRE_CREATE.DISK")
			w.wantDenied(t, "at start")
			warnings := regexp.MustCompile(`level=WARN msg="allow_partial is set`)
			if n := len(warnings.FindAllString(p.Stderr(), -1)); n != 1 {
				t.Errorf("%d allow_partial warnings at start, want 1", n)
			}
			if !strings.Contains(p.Stderr(), "broken.lua:1") {
				t.Errorf("the problem ignored at start is not logged with its file and line")
			}
			if _, body := w.get(t, "/readyz"); !strings.Contains(body, "allow_partial: 1 problem(s) ignored") {
				t.Errorf("/readyz = %q, want the ignored problem", body)
			}

			// The reload drops deny_disk: partial loading applies it.
			writeState(t, dir, s.ClientURL(), loadState{files: map[string]string{"deny.lua": denyWith(`"PRE_CRATE"`, `{"DISK"}`, "0")}})
			p.Signal(t, syscall.SIGHUP)
			natstest.CheckFor(t, waitShort, poll, func() error {
				if n := len(warnings.FindAllString(p.Stderr(), -1)); n != 2 {
					return fmt.Errorf("%d allow_partial warnings, want 2 (start and reload)", n)
				}
				return nil
			})
			natstest.CheckFor(t, waitShort, poll, func() error {
				if s.GlobalAccount().SubscriptionInterest("trigger.PRE_CREATE.DISK") {
					return fmt.Errorf("still subscribed to trigger.PRE_CREATE.DISK")
				}
				return nil
			})
			if got := w.metric(t, "trigger_reload_failures_total"); got != 0 {
				t.Errorf("trigger_reload_failures_total = %v, want 0", got)
			}
			if got := w.metric(t, "trigger_config_last_reload_successful"); got != 1 {
				t.Errorf("trigger_config_last_reload_successful = %v, want 1", got)
			}
			p.Stop(t)
		})
	}
}

// TestNoFunctionsWarns: an empty scripts directory is not a problem, but
// check and run both warn that nothing is served.
func TestNoFunctionsWarns(t *testing.T) {
	t.Parallel()
	bin := proctest.Build(t, triggerWorkerPkg)
	s := natstest.RunServer(t)
	dir := t.TempDir()
	cfg := writeState(t, dir, s.ClientURL(), loadState{files: map[string]string{"deny.lua": ""}})
	code, stdout, stderr := proctest.Run(t, bin, "check", "-c", cfg)
	if code != 0 || !strings.Contains(stdout, "warning: no functions") {
		t.Errorf("check exit code %d, stdout:\n%s\nstderr:\n%s\nwant 0 and a warning about no functions", code, stdout, stderr)
	}
	p := proctest.Start(t, bin, "run", "-c", cfg)
	p.WaitReady(t)
	if !regexp.MustCompile(`level=WARN msg="no functions`).MatchString(p.Stderr()) {
		t.Errorf("run did not warn about no functions")
	}
	p.Stop(t)
}

// TestEmbeddedListenAnyPort: with the embedded server's listen port 0, the
// server listens on a free port and the start log names that port, which
// takes connections.
func TestEmbeddedListenAnyPort(t *testing.T) {
	t.Parallel()
	bin := proctest.Build(t, triggerWorkerPkg)
	dir := t.TempDir()
	p := proctest.Start(t, bin, "run", "--embedded-listen", "127.0.0.1:0", "--embedded-store-dir", filepath.Join(dir, "js"),
		"--metrics-listen", "127.0.0.1:0", "--scripts-dir", filepath.Join(dir))
	p.WaitReady(t)
	m := regexp.MustCompile(`msg="embedded NATS server started" url=nats://127\.0\.0\.1:(\d+)`).FindStringSubmatch(p.Stderr())
	if m == nil {
		t.Fatalf("no embedded server address logged")
	}
	if m[1] == "0" || m[1] == "4222" {
		t.Errorf("embedded server logged port %s, want the free port it listens on", m[1])
	}
	nc, err := nats.Connect("nats://127.0.0.1:"+m[1], nats.Timeout(waitShort))
	if err != nil {
		t.Fatalf("connect to the logged address: %v", err)
	}
	nc.Close()
	p.Stop(t)
}

// TestEmbeddedStoreLocked: two workers with embedded servers on one store
// directory (the per-user default, from XDG_STATE_HOME): the first prints
// the directory and runs, the second exits with an error naming the first
// process.
func TestEmbeddedStoreLocked(t *testing.T) {
	t.Parallel()
	bin := proctest.Build(t, triggerWorkerPkg)
	dir := t.TempDir()
	o := proctest.Options{Env: []string{"XDG_STATE_HOME=" + filepath.Join(dir, "state")}}
	store := filepath.Join(dir, "state", "triggerbus")
	first := proctest.StartWith(t, o, bin, "run", "--embedded-listen", "127.0.0.1:0",
		"--metrics-listen", "127.0.0.1:0", "--scripts-dir", dir)
	first.WaitReady(t)
	if !strings.Contains(first.Stderr(), "store_dir="+store) {
		t.Errorf("the start log does not name store_dir=%s", store)
	}
	o.Name = "second"
	code, _, stderr := proctest.RunWith(t, o, bin, "run", "--embedded-listen", "127.0.0.1:0",
		"--metrics-listen", "127.0.0.1:0", "--scripts-dir", dir)
	want := "store directory " + store + " is in use by process " + strconv.Itoa(first.Pid())
	if code == 0 || !strings.Contains(stderr, want) {
		t.Errorf("second worker: exit %d, stderr %q; want an error containing %q", code, proctest.Tail(stderr, 5), want)
	}
	first.Stop(t)
}
