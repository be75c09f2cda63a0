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

	"github.com/nats-io/nats.go"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/internal/proctest"
	"github.com/triggerbus/triggerbus/pkg/client"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

const triggerWorkerPkg = "./cmd/trigger-worker"

// writeFile writes a file in a new temporary directory and returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// fileExists reports whether path exists, as a CheckFor condition.
func fileExists(path string) error {
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	return nil
}

// TestRunDrainsOnSIGTERM runs trigger-worker as a child process with one
// exec function that runs until the test releases it. SIGTERM while it runs
// makes the worker leave the queue group and wait for the function, which
// finishes; the process then exits 0.
func TestRunDrainsOnSIGTERM(t *testing.T) {
	bin := proctest.Build(t, triggerWorkerPkg)
	s := natstest.RunServer(t)
	markers := t.TempDir()
	started := filepath.Join(markers, "started")
	release := filepath.Join(markers, "release")
	done := filepath.Join(markers, "done")
	// The command waits for the release file (at most about 20s; the
	// function's timeout is 30s).
	const script = `touch "$1"; i=0; while [ ! -e "$2" ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done; touch "$3"`
	cfg := writeFile(t, "trigger-worker.yaml", fmt.Sprintf(`
nats:
  url: %q
metrics:
  listen: 127.0.0.1:0
log:
  level: debug
functions:
  - ref: slow_touch
    trigger_type: POST_CREATE
    trigger_options: [SERVER]
    timeout: 30s
    exec:
      command: ["/bin/sh", "-c", %q, "sh", %q, %q, %q]
`, s.ClientURL(), script, started, release, done))

	p := proctest.Start(t, bin, "run", "-c", cfg, "--nats-url", s.ClientURL(), "--metrics-listen", "127.0.0.1:0")
	const subject = "trigger.POST_CREATE.SERVER"
	waitInterest(t, s, subject)

	c := newClient(t, s, client.Options{})
	if _, err := c.Publish(context.Background(), "POST_CREATE", "SERVER", &event.Event{Input: json.RawMessage(`{"cpu":2}`)}); err != nil {
		t.Fatal(err)
	}
	natstest.CheckFor(t, waitShort, poll, func() error { return fileExists(started) })
	p.Signal(t, syscall.SIGTERM)

	// Draining: the worker unsubscribes, and waits for the function.
	natstest.CheckFor(t, waitShort, poll, func() error {
		if s.GlobalAccount().SubscriptionInterest(subject) {
			return fmt.Errorf("still subscribed to %s after SIGTERM", subject)
		}
		return nil
	})
	select {
	case <-p.Exited():
		t.Fatalf("the process exited while its function was still running (%v)", p.Err())
	default:
	}
	if err := os.WriteFile(release, nil, 0o600); err != nil {
		t.Fatal(err)
	}

	if code := p.ExitCode(t); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
	if err := fileExists(done); err != nil {
		t.Errorf("the in-flight function did not finish before the process exited: %v", err)
	}
}

// TestEmitPrintsDecision runs `trigger-worker emit` for a PRE trigger: it
// prints the decision a worker makes, the same one a raw request gets.
func TestEmitPrintsDecision(t *testing.T) {
	bin := proctest.Build(t, triggerWorkerPkg)
	s := natstest.RunServer(t)
	startWorker(t, natstest.Connect(t, s), worker.Config{},
		fn("deny_big_servers", "PRE_CREATE", []string{"SERVER"}, 0, denyBigServers))
	body := `{"input":{"cpu":64}}`

	code, stdout, stderr := proctest.Run(t, bin, "emit", "--nats-url", s.ClientURL(), "PRE_CREATE", "SERVER", body)
	if code != 0 {
		t.Fatalf("emit exit code %d, stderr:\n%s", code, stderr)
	}
	d := decodeDecision(t, []byte(stdout))
	if d.Allowed || d.Code != "QUOTA_EXCEEDED" || d.Message != "servers are limited to 16 CPUs" || d.Function != "deny_big_servers" {
		t.Errorf("emit printed %s, want the QUOTA_EXCEEDED refusal", stdout)
	}
	raw := request(t, natstest.Connect(t, s), &nats.Msg{Subject: "trigger.PRE_CREATE.SERVER", Data: []byte(body)})
	sameDecision(t, "emit vs raw request", []byte(stdout), raw)
}

// TestEmitNoTrigger: with no function registered for the subject, emit
// prints allowed with code NO_TRIGGER.
func TestEmitNoTrigger(t *testing.T) {
	bin := proctest.Build(t, triggerWorkerPkg)
	s := natstest.RunServer(t, natstest.WithJetStream())
	// A worker with the registry runs, but serves another subject.
	startWorker(t, natstest.Connect(t, s), worker.Config{Registry: true},
		fn("deny_deletes", "PRE_DELETE", []string{"SERVER"}, 0, denyBigServers))

	code, stdout, stderr := proctest.Run(t, bin, "emit", "--nats-url", s.ClientURL(), "PRE_CREATE", "SERVER", `{"input":{"cpu":64}}`)
	if code != 0 {
		t.Fatalf("emit exit code %d, stderr:\n%s", code, stderr)
	}
	d := decodeDecision(t, []byte(stdout))
	if !d.Allowed || d.Code != event.CodeNoTrigger {
		t.Errorf("emit printed %s, want allowed with code NO_TRIGGER", stdout)
	}
}

// TestCheck runs `trigger-worker check -c FILE` on bad configurations (exit
// 2, every problem explained) and on a good one (exit 0, functions and
// subjects listed).
func TestCheck(t *testing.T) {
	bin := proctest.Build(t, triggerWorkerPkg)
	function := func(ref, typ, options string) string {
		return fmt.Sprintf(`
  - ref: %s
    trigger_type: %s
    trigger_options: %s
    exec:
      command: ["/bin/true"]`, ref, typ, options)
	}
	bad := []struct {
		name   string
		config string
		want   []string // each in the output
	}{
		{
			name:   "unknown trigger type",
			config: "functions:" + function("f1", "PRE_CRATE", "[SERVER]"),
			want:   []string{`f1`, `unknown trigger type "PRE_CRATE"`, `did you mean "PRE_CREATE"`},
		},
		{
			name:   "misspelt closed option",
			config: "functions:" + function("f1", "PRE_CREATE", "[SERVERR]"),
			want:   []string{`f1`, `unknown option "SERVERR"`, `did you mean "SERVER"`},
		},
		{
			name:   "ANY mixed with options",
			config: "functions:" + function("f1", "POST_CREATE", "[ANY, SERVER]"),
			want:   []string{`f1`, `ANY`, `other options`},
		},
		{
			name:   "duplicate ref",
			config: "functions:" + function("same", "POST_CREATE", "[SERVER]") + function("same", "POST_DELETE", "[SERVER]"),
			want:   []string{`functions[1].ref`, `also the ref of functions[0]`},
		},
		{
			name:   "email relay without its CA",
			config: "email:\n  host: smtp.example.com\n  from: triggers@example.com\n  ca: /nonexistent/smtp-ca.pem\n",
			want:   []string{`email: mailer: invalid config: ca:`, `/nonexistent/smtp-ca.pem`},
		},
		{
			name:   "unknown config key",
			config: "nats:\n  urll: nats://127.0.0.1:4222\n",
			want:   []string{`unknown key`, `urll`},
		},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			cfg := writeFile(t, "trigger-worker.yaml", tt.config+"\n")
			code, stdout, stderr := proctest.Run(t, bin, "check", "-c", cfg)
			if code != 2 {
				t.Errorf("check exit code %d, want 2", code)
			}
			out := stdout + stderr
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("check output does not contain %q:\n%s", w, out)
				}
			}
		})
	}

	t.Run("valid", func(t *testing.T) {
		cfg := writeFile(t, "trigger-worker.yaml", "functions:"+
			function("deny_big_servers", "PRE_CREATE", "[SERVER]")+
			function("audit_creates", "POST_CREATE", "[ANY]")+
			function("on_server", "POST_CREATE", "[SERVER]")+"\n")
		code, stdout, stderr := proctest.Run(t, bin, "check", "-c", cfg)
		if code != 0 {
			t.Fatalf("check exit code %d, want 0; stderr:\n%s", code, stderr)
		}
		for _, w := range []string{
			"functions: 3",
			"deny_big_servers", "audit_creates", "on_server",
			"trigger.PRE_CREATE.SERVER", "trigger.POST_CREATE.*",
			"no problems",
		} {
			if !strings.Contains(stdout, w) {
				t.Errorf("check output does not contain %q:\n%s", w, stdout)
			}
		}
	})
}
