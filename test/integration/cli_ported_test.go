package integration

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"go.yaml.in/yaml/v3"

	"github.com/triggerbus/triggerbus/internal/bundle"
	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/internal/proctest"
	"github.com/triggerbus/triggerbus/pkg/event"
)

// parseOutput reads the -o json or -o yaml document of a command into v.
func parseOutput(t *testing.T, format, out string, v any) {
	t.Helper()
	var err error
	if format == "json" {
		err = json.Unmarshal([]byte(out), v)
	} else {
		err = yaml.Unmarshal([]byte(out), v)
	}
	if err != nil {
		t.Fatalf("-o %s: %v\n%s", format, err, out)
	}
}

// filledStream creates on s the stream name on subjects and publishes
// each of msgs to subject, in order.
func filledStream(t *testing.T, s *server.Server, name, subjects, subject string, msgs ...string) jetstream.Stream {
	t.Helper()
	js, err := jetstream.New(natstest.Connect(t, s))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{subjects}})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if _, err := js.Publish(ctx, subject, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	return stream
}

// TestCLIReplayOutput: replay -o json and -o yaml print its counts as the
// document docs/cli.md describes.
func TestCLIReplayOutput(t *testing.T) {
	bin := proctest.Build(t, triggerWorkerPkg)
	s := natstest.RunServer(t, natstest.WithJetStream())
	// An archive as a worker with archive.enabled keeps it: the events
	// after they were handled.
	filledStream(t, s, "TRIGGER_ARCHIVE", "trigger.*.*", "trigger.POST_CREATE.SERVER",
		`{"id":"e1","input":{}}`, `{"id":"e2","input":{}}`, `{"id":"e3","input":{}}`)
	type counts struct {
		Matched   int  `json:"matched" yaml:"matched"`
		Published int  `json:"published" yaml:"published"`
		Skipped   int  `json:"skipped" yaml:"skipped"`
		Failed    int  `json:"failed" yaml:"failed"`
		DryRun    bool `json:"dry_run" yaml:"dry_run"`
	}
	for _, format := range []string{"json", "yaml"} {
		code, stdout, stderr := proctest.Run(t, bin, "replay", "--since", "1h", "--dry-run", "-o", format, "-s", s.ClientURL())
		if code != 0 {
			t.Fatalf("replay -o %s: exit %d\n%s", format, code, stderr)
		}
		var got counts
		parseOutput(t, format, stdout, &got)
		if want := (counts{Matched: 3, Published: 3, DryRun: true}); got != want {
			t.Errorf("replay -o %s = %+v, want %+v\n%s", format, got, want, stdout)
		}
	}
	// Without an archive: a runtime failure, exit 1, and no document.
	other := natstest.RunServer(t, natstest.WithJetStream())
	code, stdout, stderr := proctest.Run(t, bin, "replay", "--since", "1h", "-o", "json", "-s", other.ClientURL())
	if code != 1 || stdout != "" || !strings.Contains(stderr, "no archive stream TRIGGER_ARCHIVE") {
		t.Errorf("replay without an archive: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
}

// TestCLITestAndEvalOutput: test and eval print their documents with -o
// yaml as with -o json (the JSON's document in block style).
func TestCLITestAndEvalOutput(t *testing.T) {
	bin := proctest.Build(t, triggerWorkerPkg)
	scripts := filepath.Join(proctest.ModuleRoot(t), "config", "scripts")
	var rep struct {
		Passed int `yaml:"passed"`
		Failed int `yaml:"failed"`
		Cases  []struct {
			File string `yaml:"file"`
			Pass bool   `yaml:"pass"`
		} `yaml:"cases"`
	}
	code, stdout, stderr := proctest.Run(t, bin, "test", "-o", "yaml", scripts)
	if code != 0 {
		t.Fatalf("test -o yaml: exit %d\n%s", code, stderr)
	}
	parseOutput(t, "yaml", stdout, &rep)
	if rep.Failed != 0 || rep.Passed == 0 || len(rep.Cases) != rep.Passed || !strings.HasSuffix(rep.Cases[0].File, "_test.yaml") {
		t.Errorf("test -o yaml = %+v\n%s", rep, stdout)
	}

	cfg := writeFile(t, "trigger-worker.yaml", "scripts: {dir: \""+scripts+"\"}\n")
	for _, format := range []string{"json", "yaml"} {
		code, stdout, stderr := proctest.Run(t, bin, "eval", "PRE_CREATE", "SERVER", `{"input":{"cpu":64}}`, "-c", cfg, "-o", format)
		if code != 0 {
			t.Fatalf("eval -o %s: exit %d\n%s", format, code, stderr)
		}
		var d struct {
			Allowed   bool   `yaml:"allowed"`
			Code      string `yaml:"code"`
			Function  string `yaml:"function"`
			Functions []struct {
				Ref    string `yaml:"ref"`
				Result string `yaml:"result"`
			} `yaml:"functions"`
		}
		parseOutput(t, format, stdout, &d)
		if d.Allowed || d.Code != "QUOTA_EXCEEDED" || d.Function != "quota_max_cpu" || len(d.Functions) != 1 || d.Functions[0].Result != event.OutcomeFailed {
			t.Errorf("eval -o %s = %+v\n%s", format, d, stdout)
		}
	}
}

// TestCLIEmitFromStdin: emit reads the event from standard input for -.
func TestCLIEmitFromStdin(t *testing.T) {
	bin := proctest.Build(t, triggerWorkerPkg)
	s := natstest.RunServer(t)
	sub := subscribeEvents(t, s)
	cmd := exec.Command(bin, "emit", "POST_CREATE", "SERVER", "-", "-s", s.ClientURL())
	cmd.Stdin = strings.NewReader(`{"input":{"from":"stdin"}}`)
	cmd.Env = proctest.Env()
	cmd.Dir = t.TempDir()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("emit -: %v\n%s", err, out)
	}
	m, err := sub.NextMsg(waitShort)
	if err != nil {
		t.Fatal(err)
	}
	var ev event.Event
	if err := json.Unmarshal(m.Data, &ev); err != nil || string(ev.Input) != `{"from":"stdin"}` {
		t.Fatalf("emitted %s (%v), want the input from stdin", m.Data, err)
	}
}

// TestEvalBundleMode: with bundle.source: bundle, eval runs the functions
// of the fleet's active revision, not the config's own scripts, reading
// the revision from NATS; without one it fails (exit 1) and says why.
func TestEvalBundleMode(t *testing.T) {
	bin := proctest.Build(t, triggerWorkerPkg)
	s := natstest.RunServer(t, natstest.WithJetStream())
	dir := t.TempDir()
	bundled := filepath.Join(dir, "bundled")
	if err := os.Mkdir(bundled, 0o755); err != nil {
		t.Fatal(err)
	}
	proctest.WriteFile(t, bundled, "deny.lua", proctest.DenyScript)
	push := proctest.WriteWorkerConfig(t, bundled, s.ClientURL(), bundled, nil)
	// The eval config's own scripts: the examples, whose quota_max_cpu
	// would refuse 64 CPUs too, by another function and message.
	own := filepath.Join(proctest.ModuleRoot(t), "config", "scripts")
	cfg := proctest.WriteWorkerConfig(t, dir, s.ClientURL(), own, map[string]any{"bundle.source": "bundle"})
	eval := func() (int, string, string) {
		return proctest.Run(t, bin, "eval", "-c", cfg, "-o", "json", "PRE_CREATE", "SERVER", `{"input":{"cpu":64}}`)
	}

	if code, stdout, stderr := eval(); code != 1 || stdout != "" || !strings.Contains(stderr, "no function bundle has been pushed") {
		t.Fatalf("eval in bundle mode before any push: exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if code, stdout, stderr := proctest.Run(t, bin, "functions", "push", "-c", push); code != 0 {
		t.Fatalf("functions push: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr := eval()
	var d event.Decision
	if code != 0 || json.Unmarshal([]byte(stdout), &d) != nil {
		t.Fatalf("eval in bundle mode: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if d.Allowed || d.Function != "deny_big" || d.Message != "too many CPUs" || d.Revision != 1 || len(d.Functions) != 1 {
		t.Errorf("eval in bundle mode = %+v, want deny_big's refusal of revision 1", d)
	}
	if !strings.Contains(stderr, "the functions of bundle revision 1 (bundle.source: bundle)") {
		t.Errorf("eval in bundle mode does not say which revision it runs:\n%s", stderr)
	}

	// A revision this host refuses (unsigned, with bundle.trusted_keys
	// set): exit 1 with the problem, as a worker refuses it.
	_, pub, err := bundle.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	trusting := proctest.WriteWorkerConfig(t, t.TempDir(), s.ClientURL(), own, map[string]any{"bundle.source": "bundle", "bundle.trusted_keys": []string{pub}})
	code, stdout, stderr = proctest.Run(t, bin, "eval", "-c", trusting, "PRE_CREATE", "SERVER", `{}`)
	if code != 1 || stdout != "" || !strings.Contains(stderr, "  - revision 1 is refused by bundle.trusted_keys") ||
		!strings.Contains(stderr, "bundle revision 1 does not load on this host") {
		t.Errorf("eval of a revision the trusted keys refuse: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}

	// No NATS to read the revision from: exit 1, naming the address.
	down := proctest.WriteWorkerConfig(t, t.TempDir(), "nats://127.0.0.1:1", own, map[string]any{"bundle.source": "bundle"})
	code, stdout, stderr = proctest.Run(t, bin, "eval", "-c", down, "PRE_CREATE", "SERVER", `{}`)
	if code != 1 || stdout != "" || !strings.Contains(stderr, "connect to NATS at nats://127.0.0.1:1") {
		t.Errorf("eval in bundle mode without NATS: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
}
