package node_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/subjects"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// outcome is one line the example's test script prints.
type outcome struct {
	Case     string          `json:"case"`
	ID       string          `json:"id"`
	Decision json.RawMessage `json:"decision"`
}

// npm runs npm with args in this directory and returns its standard output.
func npm(t *testing.T, natsURL string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command("npm", args...)
	cmd.Env = append(os.Environ(), "NATS_URL="+natsURL, "NO_UPDATE_NOTIFIER=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("npm %q: %v\nstdout:\n%s\nstderr:\n%s", args, err, stdout.String(), stderr.String())
	}
	return stdout.Bytes()
}

// outcomes parses the script's lines by case.
func outcomes(t *testing.T, out []byte) map[string]outcome {
	t.Helper()
	got := map[string]outcome{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var o outcome
		if err := json.Unmarshal(sc.Bytes(), &o); err != nil {
			t.Fatalf("script line %q: %v", sc.Text(), err)
		}
		got[o.Case] = o
	}
	return got
}

// decisionSchema compiles the committed decision schema (docs/schema).
func decisionSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	s, err := c.Compile(filepath.Join("..", "..", "docs", "schema", "decision.json"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestNodeClient runs the Node.js client against a real worker, then with
// the worker stopped (its registrations kept), and checks every outcome the
// Go SDK would give: POST handled, PRE allowed and denied, NO_TRIGGER,
// SHUTTING_DOWN retried, BAD_REPLY, and NO_WORKER refused both for a
// function of the option and for one of ANY.
func TestNodeClient(t *testing.T) {
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the Node.js client test needs %s on PATH (.ci/run installs it): %v", tool, err)
		}
	}
	npm(t, "", "ci", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error")

	s := natstest.RunServer(t, natstest.WithJetStream())
	nc := natstest.Connect(t, s)
	posted := make(chan *event.Event, 4)
	quota := func(_ context.Context, ev *event.Event) (handlers.Result, error) {
		var in map[string]any
		if err := json.Unmarshal(ev.Input, &in); err != nil {
			return handlers.Result{}, err
		}
		if cpu, _ := in["cpu"].(float64); cpu > 16 {
			return handlers.Result{ExitState: handlers.Failed, ErrorCode: "QUOTA_EXCEEDED", ErrorMessage: "servers are limited to 16 CPUs"}, nil
		}
		in["checked"] = true
		b, err := json.Marshal(in)
		return handlers.Result{ExitState: handlers.Success, Input: b}, err
	}
	allow := func(context.Context, *event.Event) (handlers.Result, error) {
		return handlers.Result{ExitState: handlers.Success}, nil
	}
	record := func(_ context.Context, ev *event.Event) (handlers.Result, error) {
		posted <- ev
		return handlers.Result{ExitState: handlers.Success}, nil
	}
	w, err := worker.New(natstest.Connect(t, s), worker.Config{Registry: true},
		worker.Function{Ref: "quota", TriggerType: "PRE_CREATE", Options: []string{"SERVER"}, Handler: handlers.Func(quota)},
		worker.Function{Ref: "modify_any", TriggerType: "PRE_MODIFY", Options: []string{subjects.Any}, Handler: handlers.Func(allow)},
		worker.Function{Ref: "record", TriggerType: "POST_CREATE", Options: []string{"SERVER"}, Handler: handlers.Func(record)})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Stop(context.Background()) }) // idempotent

	// A responder that stops like a worker does: SHUTTING_DOWN first, then
	// a decision; it checks the headers the client sends.
	var asked atomic.Int32
	headerErrs := make(chan string, 8)
	sub, err := nc.Subscribe("trigger.PRE_DELETE.DISK", func(m *nats.Msg) {
		var ev event.Event
		_ = ev.UnmarshalJSON(m.Data)
		dl, err := strconv.ParseInt(m.Header.Get(subjects.HeaderDeadline), 10, 64)
		if err != nil || dl < time.Now().UnixMilli() {
			headerErrs <- "Trigger-Deadline " + strconv.Quote(m.Header.Get(subjects.HeaderDeadline)) + " is not a future Unix millisecond time"
		}
		if id := m.Header.Get(subjects.HeaderMsgID); id == "" || id != ev.ID {
			headerErrs <- "Nats-Msg-Id " + strconv.Quote(id) + " is not the event id " + strconv.Quote(ev.ID)
		}
		d := &event.Decision{ID: ev.ID, Code: event.CodeShuttingDown}
		if asked.Add(1) > 1 {
			d = &event.Decision{ID: ev.ID, Allowed: true}
		}
		b, _ := d.Encode()
		_ = m.Respond(b)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	bad, err := nc.Subscribe("trigger.PRE_DELETE.NIC", func(m *nats.Msg) { _ = m.Respond([]byte("not a decision")) })
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = bad.Unsubscribe() }()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	schema := decisionSchema(t)
	check := func(got map[string]outcome, want map[string]struct {
		allowed bool
		code    string
	}) {
		t.Helper()
		for name, w := range want {
			o, ok := got[name]
			if !ok {
				t.Errorf("%s: the script did not report it", name)
				continue
			}
			d, err := event.DecodeDecision(o.Decision)
			if err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			if d.Allowed != w.allowed || d.Code != w.code {
				t.Errorf("%s: allowed %v code %q (%s), want %v %q", name, d.Allowed, d.Code, d.Message, w.allowed, w.code)
			}
			inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(o.Decision))
			if err != nil {
				t.Fatal(err)
			}
			if err := schema.Validate(inst); err != nil {
				t.Errorf("%s: the client's decision %s does not validate: %v", name, o.Decision, err)
			}
		}
	}

	up := outcomes(t, npm(t, s.ClientURL(), "test", "--silent", "--", "up"))
	check(up, map[string]struct {
		allowed bool
		code    string
	}{
		"allowed":               {true, ""},
		"denied":                {false, "QUOTA_EXCEEDED"},
		"any-function":          {true, ""},
		"no-trigger":            {true, event.CodeNoTrigger},
		"shutting-down-retried": {true, ""},
		"bad-reply":             {false, event.CodeBadReply},
	})
	for _, c := range []string{"post", "bad-input-throws", "done"} {
		if _, ok := up[c]; !ok {
			t.Errorf("the script did not report %s", c)
		}
	}
	ev := natstest.ChanRecv(t, posted, 10*time.Second)
	if ev.ID != up["post"].ID || ev.TriggerType != "POST_CREATE" || ev.TriggerOption != "SERVER" || ev.BEUUID != "be-1" {
		t.Errorf("the POST function got %+v, want the event %s the client published", ev, up["post"].ID)
	}
	if n := asked.Load(); n != 2 {
		t.Errorf("the stopping responder was asked %d times, want 2 (SHUTTING_DOWN asked again once)", n)
	}
	for len(headerErrs) > 0 {
		t.Error(<-headerErrs)
	}

	// The fleet goes down; its registrations stay.
	if err := w.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	down := outcomes(t, npm(t, s.ClientURL(), "test", "--silent", "--", "down"))
	check(down, map[string]struct {
		allowed bool
		code    string
	}{
		"no-worker":              {false, event.CodeNoWorker},
		"no-worker-any":          {false, event.CodeNoWorker},
		"no-trigger-down":        {true, event.CodeNoTrigger},
		"no-worker-allow-policy": {true, event.CodeNoWorker},
	})
	if _, ok := down["done"]; !ok {
		t.Error("the script did not finish the down phase")
	}
}
