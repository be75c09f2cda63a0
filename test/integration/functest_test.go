package integration

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/triggerbus/triggerbus/internal/proctest"
	"github.com/triggerbus/triggerbus/pkg/event"
)

// copyScripts copies the example scripts and their tests to a new
// directory, with edit applied to each file's text, and returns it.
func copyScripts(t *testing.T, edit func(name, text string) string) string {
	t.Helper()
	src := filepath.Join(proctest.ModuleRoot(t), "config", "scripts")
	dir := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		text := string(data)
		if edit != nil {
			text = edit(e.Name(), text)
		}
		proctest.WriteFile(t, dir, e.Name(), text)
	}
	return dir
}

// TestFunctionTestsOfTheExampleScripts runs `trigger-worker test` on the
// example scripts: every case passes, exit 0.
func TestFunctionTestsOfTheExampleScripts(t *testing.T) {
	bin := proctest.Build(t, triggerWorkerPkg)
	code, out, errOut := proctest.Run(t, bin, "test", filepath.Join(proctest.ModuleRoot(t), "config", "scripts"))
	if code != 0 || !strings.Contains(out, " passed, 0 failed") || strings.Contains(out, "FAIL") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	for _, s := range []string{"quota_test.yaml", "default_ram_test.yaml", "metadata_test.yaml", "job_failed_alert_test.yaml", "nightly_sweep_test.yaml"} {
		if !strings.Contains(out, s) {
			t.Errorf("no case of %s ran:\n%s", s, out)
		}
	}
}

// A deliberately wrong expectation fails: exit 1, FAIL with a readable
// diff; -o json and --junit say the same.
func TestFunctionTestWrongExpectation(t *testing.T) {
	bin := proctest.Build(t, triggerWorkerPkg)
	dir := copyScripts(t, func(name, text string) string {
		if name == "quota_test.yaml" {
			return strings.Replace(text, "message: servers are limited to 16 CPUs (asked for 32)", "message: servers are limited to 8 CPUs", 1)
		}
		return text
	})
	quota := filepath.Join(dir, "quota_test.yaml")
	code, out, errOut := proctest.Run(t, bin, "test", quota)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		"FAIL  " + quota + ":3  refuses more CPUs than the quota (quota_max_cpu)",
		"    --- expected\n    +++ actual\n",
		`    -  "message": "servers are limited to 8 CPUs",`,
		`    +  "message": "servers are limited to 16 CPUs (asked for 32)",`,
		"PASS  " + quota + ":12  allows the quota itself",
		"3 passed, 1 failed",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	junit := filepath.Join(t.TempDir(), "junit.xml")
	code, out, errOut = proctest.Run(t, bin, "test", "-o", "json", "--junit", junit, dir)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s%s", code, out, errOut)
	}
	var rep struct {
		Passed, Failed int
		Cases          []struct {
			File, Name, Diff string
			Pass             bool
		}
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if rep.Failed != 1 || rep.Passed < 14 {
		t.Fatalf("report %+v", rep)
	}
	for _, c := range rep.Cases {
		if !c.Pass && (c.File != quota || !strings.Contains(c.Diff, "limited to 8 CPUs")) {
			t.Fatalf("failed case %+v", c)
		}
	}
	data, err := os.ReadFile(junit)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
	}
	if err := xml.Unmarshal(data, &doc); err != nil || doc.Failures != 1 || doc.Tests != rep.Passed+rep.Failed {
		t.Fatalf("junit %+v, %v:\n%s", doc, err, data)
	}
}

// A bad test file: exit 2 with file:line, nothing runs.
func TestFunctionTestBadFile(t *testing.T) {
	bin := proctest.Build(t, triggerWorkerPkg)
	dir := copyScripts(t, func(name, text string) string {
		if name == "quota_test.yaml" {
			return strings.Replace(text, "    expect:\n", "    expcet:\n", 1)
		}
		return text
	})
	code, out, errOut := proctest.Run(t, bin, "test", dir)
	want := filepath.Join(dir, "quota_test.yaml") + `:6: unknown key "expcet" in case`
	if code != 2 || !strings.Contains(errOut, want) || strings.Contains(out, "PASS") {
		t.Fatalf("exit %d, want 2 and %q\n%s%s", code, want, out, errOut)
	}
}

// eval runs the configured functions without NATS: the PRE chain's
// decision as emit prints it, POST results, publishes not available.
func TestEval(t *testing.T) {
	bin := proctest.Build(t, triggerWorkerPkg)
	scripts := copyScripts(t, nil)
	cfg := writeFile(t, "trigger-worker.yaml", "nats: {url: \"nats://127.0.0.1:1\"}\nscripts: {dir: \""+scripts+"\"}\n")

	code, out, errOut := proctest.Run(t, bin, "eval", "-c", cfg, "PRE_CREATE", "SERVER", `{"input":{"cpu":4}}`, "-o", "json")
	var d event.Decision
	if code != 0 || json.Unmarshal([]byte(out), &d) != nil {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	var in bytes.Buffer
	if err := json.Compact(&in, d.Input); err != nil {
		t.Fatal(err)
	}
	if !d.Allowed || !d.Modified || in.String() != `{"cpu":4,"ram":2048}` || len(d.Functions) != 2 ||
		d.Functions[0].Ref != "quota_max_cpu" || d.Functions[1].Ref != "default_ram" {
		t.Fatalf("decision %+v", d)
	}

	evFile := writeFile(t, "event.json", `{"input":{"cpu":64}}`)
	code, out, errOut = proctest.Run(t, bin, "eval", "-c", cfg, "PRE_CREATE", "SERVER", "@"+evFile)
	if code != 0 || !strings.Contains(out, "allowed:  false\ncode:     QUOTA_EXCEEDED\nmessage:  servers are limited to 16 CPUs (asked for 64)\nfunction: quota_max_cpu\n") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}

	// POST, the event on standard input: the publish is not available.
	cmd := exec.Command(bin, "eval", "-c", cfg, "-o", "json", "POST_JOB_STATE_CHANGE", "FAILED", "-")
	cmd.Stdin = strings.NewReader(`{"input":{"resourceUUID":"j-1"}}`)
	cmd.Env = proctest.Env()
	cmd.Dir = t.TempDir()
	raw, err := cmd.Output()
	if err != nil {
		t.Fatalf("%v: %s", err, raw)
	}
	var post struct {
		Subject   string
		Functions []event.FunctionResult
	}
	if err := json.Unmarshal(raw, &post); err != nil {
		t.Fatalf("%v:\n%s", err, raw)
	}
	if post.Subject != "trigger.POST_JOB_STATE_CHANGE.FAILED" || len(post.Functions) != 1 || post.Functions[0].Result != event.OutcomeError ||
		!strings.Contains(post.Functions[0].Error, "publishes and requests are not available offline (publish on alerts.job.failed)") {
		t.Fatalf("%s", raw)
	}

	// A config with a problem: all or nothing, exit 2.
	proctest.WriteFile(t, scripts, "bad.lua", "function register( end\n")
	code, out, errOut = proctest.Run(t, bin, "eval", "-c", cfg, "PRE_CREATE", "SERVER", `{}`)
	if code != 2 || !strings.Contains(errOut, "bad.lua") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
}
