package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"go.yaml.in/yaml/v3"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/internal/proctest"
)

// cliCommands is every command of trigger-worker, as its path.
var cliCommands = [][]string{
	{}, {"run"}, {"check"}, {"emit"}, {"decisions"}, {"version"}, {"completion"}, {"help"},
	{"dlq"}, {"dlq", "ls"}, {"dlq", "show"}, {"dlq", "replay"}, {"dlq", "purge"},
	{"registry"}, {"registry", "ls"}, {"registry", "prune"},
	{"functions"}, {"functions", "push"}, {"functions", "ls"}, {"functions", "show"}, {"functions", "diff"},
	{"functions", "activate"}, {"functions", "pull"}, {"functions", "keygen"}, {"schema"},
	{"replay"}, {"test"}, {"eval"},
}

// TestCLIHelpExitsZero: -h and --help print the usage of every command on
// stdout and exit 0, as does help COMMAND.
func TestCLIHelpExitsZero(t *testing.T) {
	bin := proctest.Build(t, triggerWorkerPkg)
	for _, path := range cliCommands {
		for _, h := range []string{"-h", "--help"} {
			args := append(slices.Clone(path), h)
			code, stdout, stderr := proctest.Run(t, bin, args...)
			if code != 0 || !strings.Contains(stdout, "Usage:") || stderr != "" {
				t.Errorf("trigger-worker %s: exit %d, want 0 with the usage on stdout\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, stdout, stderr)
			}
		}
	}
	code, stdout, _ := proctest.Run(t, bin, "help", "dlq", "purge")
	if code != 0 || !strings.Contains(stdout, "trigger-worker dlq purge [flags]") {
		t.Errorf("help dlq purge: exit %d\n%s", code, stdout)
	}
}

// TestCLIVersion: version and --version print the same line.
func TestCLIVersion(t *testing.T) {
	bin := proctest.Build(t, triggerWorkerPkg)
	code1, out1, _ := proctest.Run(t, bin, "version")
	code2, out2, _ := proctest.Run(t, bin, "--version")
	if code1 != 0 || code2 != 0 || out1 != out2 || !strings.HasPrefix(out1, "trigger-worker ") || strings.Count(out1, "\n") != 1 {
		t.Fatalf("version: exit %d %q; --version: exit %d %q; want both exit 0 with the same one line", code1, out1, code2, out2)
	}
}

// TestCLIUsageErrors: a usage error names the flag or the argument, ends
// with one line that says where the usage is, and exits 2; each command has
// only its own flags.
func TestCLIUsageErrors(t *testing.T) {
	bin := proctest.Build(t, triggerWorkerPkg)
	tests := []struct {
		args []string
		want string // in the error line
		hint string // the command of the last line
	}{
		{[]string{"emit", "POST_CREATE", "SERVER", "--metrics-listen", "x"}, "unknown flag: --metrics-listen", "emit"},
		{[]string{"check", "--server", "nats://127.0.0.1:1"}, "unknown flag: --server", "check"},
		{[]string{"emit", "POST_CREATE"}, "emit takes TYPE OPTION [JSON|@file|-] (got 1 argument(s))", "emit"},
		{[]string{"dlq", "show", "one"}, `dlq show: SEQ "one" is not a sequence number`, "dlq show"},
		{[]string{"dlq", "drop"}, `unknown dlq command "drop"`, "dlq"},
		{[]string{"nope"}, `unknown command "nope"`, "trigger-worker"},
		{[]string{"decisions", "-o", "xml"}, `invalid argument "xml" for "-o, --output" flag: want table, json, yaml`, "decisions"},
		{[]string{"run", "--timeout", "1s"}, "unknown flag: --timeout", "run"},
		{[]string{"replay"}, "replay needs --since", "replay"},
		{[]string{"replay", "--since", "1h", "extra"}, "replay takes no arguments (got 1 argument(s))", "replay"},
		{[]string{"replay", "--since", "1h", "--until", "2h"}, "replay --until 2h is before --since 1h", "replay"},
		{[]string{"replay", "--since", "1h", "--junit", "x"}, "unknown flag: --junit", "replay"},
		{[]string{"test", "--server", "nats://127.0.0.1:1"}, "unknown flag: --server", "test"},
		{[]string{"test", "-o", "xml"}, `invalid argument "xml" for "-o, --output" flag`, "test"},
		{[]string{"eval", "PRE_CREATE", "SERVER"}, "eval takes TYPE OPTION EVENT (got 2 argument(s))", "eval"},
		{[]string{"eval", "PRE_CREATE", "SERVER", "{}", "--since", "1h"}, "unknown flag: --since", "eval"},
		{[]string{"eval", "PRE_CREATE", "SERVER", "@/nonexistent/event.json"}, "event file: open /nonexistent/event.json", "eval"},
	}
	for _, tt := range tests {
		code, stdout, stderr := proctest.Run(t, bin, tt.args...)
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		hint := "Run 'trigger-worker " + strings.TrimPrefix(tt.hint+" ", "trigger-worker ")
		hint = strings.TrimSuffix(hint, " ") + " --help' for usage."
		if code != 2 || len(lines) != 2 || !strings.Contains(lines[0], tt.want) || lines[1] != hint || stdout != "" {
			t.Errorf("trigger-worker %s: exit %d, stderr:\n%s\nwant exit 2 and two lines: %q, then %q", strings.Join(tt.args, " "), code, stderr, tt.want, hint)
		}
	}
	// Flags of one command only.
	_, emitHelp, _ := proctest.Run(t, bin, "emit", "--help")
	_, runHelp, _ := proctest.Run(t, bin, "run", "--help")
	_, checkHelp, _ := proctest.Run(t, bin, "check", "--help")
	_, replayHelp, _ := proctest.Run(t, bin, "replay", "--help")
	_, testHelp, _ := proctest.Run(t, bin, "test", "--help")
	_, evalHelp, _ := proctest.Run(t, bin, "eval", "--help")
	for _, c := range []struct {
		help, flag string
		want       bool
	}{
		{replayHelp, "--since", true}, {replayHelp, "--server", true}, {replayHelp, "--context", true}, {replayHelp, "--output", true},
		{replayHelp, "--scripts-dir", false}, {replayHelp, "--metrics-listen", false},
		{testHelp, "--junit", true}, {testHelp, "--output", true}, {testHelp, "--scripts-dir", true},
		{testHelp, "--server", false}, {testHelp, "--timeout", false}, {testHelp, "--metrics-listen", false},
		{evalHelp, "--output", true}, {evalHelp, "--timeout", true}, {evalHelp, "bundle.source: bundle", true},
		{evalHelp, "--junit", false}, {evalHelp, "--since", false}, {evalHelp, "--metrics-listen", false},
		{runHelp, "--metrics-listen", true}, {emitHelp, "--metrics-listen", false},
		{emitHelp, "--timeout", true}, {runHelp, "--timeout", false},
		{emitHelp, "--server", true}, {checkHelp, "--server", false},
		{checkHelp, "--output", true}, {emitHelp, "--output", false},
		{runHelp, "--allow-partial", true}, {checkHelp, "--allow-partial", false},
	} {
		if strings.Contains(c.help, c.flag) != c.want {
			t.Errorf("%s in the help: %v, want %v:\n%s", c.flag, !c.want, c.want, c.help)
		}
	}
}

// TestCLIFlagOrder: flags go before, between or after the arguments.
func TestCLIFlagOrder(t *testing.T) {
	bin := proctest.Build(t, triggerWorkerPkg)
	s := natstest.RunServer(t)
	for _, args := range [][]string{
		{"emit", "-s", s.ClientURL(), "--timeout", "5s", "POST_CREATE", "SERVER", `{}`},
		{"emit", "POST_CREATE", "--server", s.ClientURL(), "SERVER", `{}`},
		{"emit", "POST_CREATE", "SERVER", `{}`, "--timeout", "5s", "--server=" + s.ClientURL()},
	} {
		code, stdout, stderr := proctest.Run(t, bin, args...)
		var got struct{ ID, Subject string }
		if code != 0 || json.Unmarshal([]byte(stdout), &got) != nil || got.Subject != "trigger.POST_CREATE.SERVER" || got.ID == "" {
			t.Errorf("trigger-worker %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, stdout, stderr)
		}
	}
}

// TestCLICompletion: completion prints a script for each shell, and the
// completions of emit's first argument are the trigger types.
func TestCLICompletion(t *testing.T) {
	bin := proctest.Build(t, triggerWorkerPkg)
	for shell, want := range map[string]string{
		"bash":       "__start_trigger-worker",
		"zsh":        "#compdef trigger-worker",
		"fish":       "complete -c trigger-worker",
		"powershell": "Register-ArgumentCompleter",
	} {
		code, stdout, stderr := proctest.Run(t, bin, "completion", shell)
		if code != 0 || !strings.Contains(stdout, want) {
			t.Errorf("completion %s: exit %d, want a script with %q\nstderr:\n%s", shell, code, want, stderr)
		}
	}
	code, stdout, _ := proctest.Run(t, bin, "__complete", "emit", "PRE_C")
	if code != 0 || !strings.Contains(stdout, "PRE_CREATE\n") {
		t.Errorf("__complete emit PRE_C: exit %d\n%s", code, stdout)
	}
	for _, args := range [][]string{{"eval", "POST_C"}, {"replay", "--type", "POST_C"}} {
		code, stdout, _ := proctest.Run(t, bin, append([]string{"__complete"}, args...)...)
		if code != 0 || !strings.Contains(stdout, "POST_CREATE\n") {
			t.Errorf("__complete %s: exit %d\n%s", strings.Join(args, " "), code, stdout)
		}
	}
	code, stdout, _ = proctest.Run(t, bin, "__complete", "dlq", "")
	for _, sub := range []string{"ls", "show", "replay", "purge"} {
		if code != 0 || !strings.Contains(stdout, sub+"\t") {
			t.Errorf("__complete dlq: exit %d, want %s\n%s", code, sub, stdout)
		}
	}
}

// TestCLIServerPrecedence: the NATS URL comes from --server, else
// TRIGGER_NATS_URL, else NATS_URL, else the --context (or NATS_CONTEXT),
// else the config file. Each case emits a POST event and sees which of two
// servers receives it.
func TestCLIServerPrecedence(t *testing.T) {
	bin := proctest.Build(t, triggerWorkerPkg)
	a, b := natstest.RunServer(t), natstest.RunServer(t)
	config := t.TempDir()
	ctxDir := filepath.Join(config, "nats", "context")
	if err := os.MkdirAll(ctxDir, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, url := range map[string]string{"to-a": a.ClientURL(), "to-b": b.ClientURL()} {
		data := fmt.Sprintf(`{"description": "test", "url": %q, "creds": "", "nkey": ""}`, url)
		if err := os.WriteFile(filepath.Join(ctxDir, name+".json"), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfgA := writeFile(t, "trigger-worker.yaml", fmt.Sprintf("nats:\n  url: %q\n", a.ClientURL()))
	base := []string{"XDG_CONFIG_HOME=" + config, "HOME=" + t.TempDir(), "NATS_URL=", "NATS_CONTEXT="}
	tests := []struct {
		name string
		env  []string
		args []string
		want *server.Server
	}{
		{"config", nil, nil, a},
		{"NATS_URL over the config", []string{"NATS_URL=" + b.ClientURL()}, nil, b},
		{"TRIGGER_NATS_URL over NATS_URL", []string{"TRIGGER_NATS_URL=" + a.ClientURL(), "NATS_URL=" + b.ClientURL()}, nil, a},
		{"--server over TRIGGER_NATS_URL", []string{"TRIGGER_NATS_URL=" + a.ClientURL()}, []string{"-s", b.ClientURL()}, b},
		{"--nats-url, the former name", nil, []string{"--nats-url", b.ClientURL()}, b},
		{"--context over the config", nil, []string{"--context", "to-b"}, b},
		{"NATS_CONTEXT over the config", []string{"NATS_CONTEXT=to-b"}, nil, b},
		{"NATS_URL over --context", []string{"NATS_URL=" + a.ClientURL()}, []string{"--context", "to-b"}, a},
		{"--server over --context", nil, []string{"--context", "to-a", "--server", b.ClientURL()}, b},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			subA, subB := subscribeEvents(t, a), subscribeEvents(t, b)
			args := append([]string{"emit", "POST_CREATE", "SERVER", `{}`, "-c", cfgA}, tt.args...)
			code, stdout, stderr := proctest.RunWith(t, proctest.Options{Env: append(slices.Clone(base), tt.env...)}, bin, args...)
			if code != 0 {
				t.Fatalf("emit: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
			}
			got, other := subA, subB
			if tt.want == b {
				got, other = subB, subA
			}
			if _, err := got.NextMsg(waitShort); err != nil {
				t.Fatalf("the event did not reach the expected server: %v", err)
			}
			if n, _, _ := other.Pending(); n != 0 {
				t.Fatalf("the other server got %d events", n)
			}
		})
	}
	t.Run("the context's credentials", func(t *testing.T) {
		creds := filepath.Join(t.TempDir(), "absent.creds")
		data := fmt.Sprintf(`{"url": %q, "creds": %q}`, a.ClientURL(), creds)
		if err := os.WriteFile(filepath.Join(ctxDir, "with-creds.json"), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		code, _, stderr := proctest.RunWith(t, proctest.Options{Env: base}, bin, "emit", "POST_CREATE", "SERVER", "--context", "with-creds")
		if code == 0 || !strings.Contains(stderr, creds) {
			t.Fatalf("--context with-creds: exit %d, want a failure naming %s\n%s", code, creds, stderr)
		}
	})
	t.Run("unknown context", func(t *testing.T) {
		code, _, stderr := proctest.RunWith(t, proctest.Options{Env: base}, bin, "emit", "POST_CREATE", "SERVER", "--context", "nope")
		if code != 2 || !strings.Contains(stderr, `nats context "nope"`) {
			t.Fatalf("--context nope: exit %d\n%s", code, stderr)
		}
	})
}

// subscribeEvents subscribes to every event of the default prefix on s,
// and flushes so that the subscription is in place.
func subscribeEvents(t *testing.T, s *server.Server) *nats.Subscription {
	t.Helper()
	nc := natstest.Connect(t, s)
	sub, err := nc.SubscribeSync("trigger.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return sub
}

// TestCLICheckOutput: check -o json and -o yaml print the documented
// document, which parses back.
func TestCLICheckOutput(t *testing.T) {
	bin := proctest.Build(t, triggerWorkerPkg)
	dir := t.TempDir()
	cfg := proctest.WriteFile(t, dir, "trigger-worker.yaml", `
functions:
  - ref: gate
    trigger_type: PRE_CREATE
    trigger_options: [SERVER]
    failure_policy: ignore
    webhook: {url: "http://127.0.0.1:1/gate"}
`)
	type report struct {
		Config    string `json:"config" yaml:"config"`
		Functions []struct {
			Ref           string   `json:"ref" yaml:"ref"`
			TriggerType   string   `json:"trigger_type" yaml:"trigger_type"`
			FailurePolicy string   `json:"failure_policy" yaml:"failure_policy"`
			Subjects      []string `json:"subjects" yaml:"subjects"`
		} `json:"functions" yaml:"functions"`
		Subscriptions struct {
			PRE []string `json:"pre" yaml:"pre"`
		} `json:"subscriptions" yaml:"subscriptions"`
		Warnings []string `json:"warnings" yaml:"warnings"`
		Problems []string `json:"problems" yaml:"problems"`
	}
	for _, format := range []string{"json", "yaml"} {
		code, stdout, stderr := proctest.Run(t, bin, "check", "-c", cfg, "-o", format)
		if code != 0 {
			t.Fatalf("check -o %s: exit %d\n%s", format, code, stderr)
		}
		var r report
		var err error
		if format == "json" {
			err = json.Unmarshal([]byte(stdout), &r)
		} else {
			err = yaml.Unmarshal([]byte(stdout), &r)
		}
		if err != nil {
			t.Fatalf("check -o %s: %v\n%s", format, err, stdout)
		}
		if r.Config != cfg || len(r.Functions) != 1 || r.Functions[0].Ref != "gate" || r.Functions[0].TriggerType != "PRE_CREATE" ||
			r.Functions[0].FailurePolicy != "ignore" || !slices.Equal(r.Functions[0].Subjects, []string{"trigger.PRE_CREATE.SERVER"}) ||
			!slices.Equal(r.Subscriptions.PRE, []string{"trigger.PRE_CREATE.SERVER"}) || len(r.Problems) != 0 || len(r.Warnings) != 1 {
			t.Errorf("check -o %s = %+v\n%s", format, r, stdout)
		}
	}
	// A problem with a function: still the document, with the problem, exit 2.
	bad := proctest.WriteFile(t, dir, "bad.yaml", "functions:\n  - ref: gone\n    trigger_type: PRE_CREATE\n    trigger_options: [SERVER]\n    lua: {file: missing.lua}\n")
	code, stdout, _ := proctest.Run(t, bin, "check", "-c", bad, "-o", "json")
	var r report
	if code != 2 || json.Unmarshal([]byte(stdout), &r) != nil || len(r.Problems) != 1 || !strings.Contains(r.Problems[0], "missing.lua") {
		t.Errorf("check -o json of a config with a problem: exit %d\n%s", code, stdout)
	}
}

// TestCLIConfigErrorsInOnePass: every problem of a config file comes at
// once, each with its file and line, and a misspelt key with the key
// meant.
func TestCLIConfigErrorsInOnePass(t *testing.T) {
	bin := proctest.Build(t, triggerWorkerPkg)
	cfg := writeFile(t, "trigger-worker.yaml", `delivery:
  mode: fast
  max_deliver: lots
functions:
  - ref: a
    triggerType: POST_CREATE
    trigger_options: [SERVER]
    lua: {file: a.lua}
metrics:
  listn: 127.0.0.1:0
`)
	// With no command the command is run.
	for _, args := range [][]string{{"check", "-c", cfg}, {"run", "-c", cfg}, {"-c", cfg}} {
		cmd := strings.Join(args, " ")
		code, _, stderr := proctest.Run(t, bin, args...)
		for _, want := range []string{
			cfg + `:2: delivery.mode: "fast" is not one of auto, core, durable`,
			cfg + `:3: delivery.max_deliver: cannot use "lots" as int`,
			cfg + `:6: unknown key "functions[0].triggertype" (did you mean "functions[0].trigger_type"?)`,
			cfg + `:10: unknown key "metrics.listn" (did you mean "metrics.listen"?)`,
			"4 problem(s)",
		} {
			if !strings.Contains(stderr, want) {
				t.Errorf("%s: want %q in\n%s", cmd, want, stderr)
			}
		}
		if code != 2 || strings.Contains(stderr, "--help") {
			t.Errorf("%s: exit %d, want 2 without a usage line\n%s", cmd, code, stderr)
		}
	}
}

// TestCLIPurgeNeedsTerminalOrForce: dlq purge without a terminal on stdin
// refuses (exit 2) and deletes nothing unless --force.
func TestCLIPurgeNeedsTerminalOrForce(t *testing.T) {
	bin := proctest.Build(t, triggerWorkerPkg)
	s := natstest.RunServer(t, natstest.WithJetStream())
	stream := filledStream(t, s, "TRIGGER_DLQ", "trigger.dlq.>", "trigger.dlq.POST_CREATE.SERVER", `{"id":"e1"}`)
	ctx := context.Background()
	msgs := func() uint64 {
		info, err := stream.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs
	}
	code, _, stderr := proctest.Run(t, bin, "dlq", "purge", "-s", s.ClientURL())
	if code != 2 || !strings.Contains(stderr, "stdin is not a terminal to confirm on, so it needs --force") || msgs() != 1 {
		t.Fatalf("dlq purge without a terminal: exit %d, %d dead letters left\n%s", code, msgs(), stderr)
	}
	code, stdout, stderr := proctest.Run(t, bin, "dlq", "purge", "--force", "-s", s.ClientURL())
	if code != 0 || !strings.Contains(stdout, "purged 1 dead letters from TRIGGER_DLQ") || msgs() != 0 {
		t.Fatalf("dlq purge --force: exit %d, %d dead letters left\n%s%s", code, msgs(), stdout, stderr)
	}
}
