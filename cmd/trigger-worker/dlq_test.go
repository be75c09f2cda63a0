package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.yaml.in/yaml/v3"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/pkg/client"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// dlqRig is a JetStream server (started with opts) with a durable worker
// whose function fails while failing is set, so that its events are
// dead-lettered after two attempts.
type dlqRig struct {
	url     string
	js      jetstream.JetStream
	client  *client.Client
	failing atomic.Bool
	handled chan *event.Event // buffered: the tests handle a few events
	audits  atomic.Int32      // calls of audit, which always succeeds
}

func newDLQRig(t *testing.T, opts ...natstest.Option) *dlqRig {
	t.Helper()
	s := natstest.RunServer(t, append([]natstest.Option{natstest.WithJetStream()}, opts...)...)
	r := &dlqRig{url: s.ClientURL(), handled: make(chan *event.Event, 16)}
	r.failing.Store(true)
	set := []worker.Function{{
		Ref: "audit", TriggerType: "POST_CREATE", Options: []string{"SERVER"}, Priority: 10,
		Handler: handlers.Func(func(context.Context, *event.Event) (handlers.Result, error) {
			r.audits.Add(1)
			return handlers.Result{ExitState: handlers.Success}, nil
		}),
	}, {
		Ref: "provision_dns", TriggerType: "POST_CREATE", Options: []string{"SERVER"},
		Handler: handlers.Func(func(_ context.Context, ev *event.Event) (handlers.Result, error) {
			if r.failing.Load() {
				return handlers.Result{}, errors.New("dns api: 503 service unavailable\nretry later; the provider is in maintenance until midnight")
			}
			r.handled <- ev
			return handlers.Result{ExitState: handlers.Success}, nil
		}),
	}}
	r.client, r.js = startWorker(t, s, worker.Config{
		Durable: &worker.DurableConfig{MaxDeliver: 2, Backoff: []time.Duration{20 * time.Millisecond}},
	}, set...)
	return r
}

// deadLetter publishes an event and waits until it is the want-th dead
// letter.
func (r *dlqRig) deadLetter(t *testing.T, input string, want uint64) string {
	t.Helper()
	ctx := context.Background()
	id, err := r.client.Publish(ctx, "POST_CREATE", "SERVER", &event.Event{Input: json.RawMessage(input)})
	if err != nil {
		t.Fatal(err)
	}
	natstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if n := r.dlqMsgs(t); n != want {
			return fmt.Errorf("%d dead letters, want %d", n, want)
		}
		return nil
	})
	return id
}

func (r *dlqRig) dlqMsgs(t *testing.T) uint64 {
	t.Helper()
	st, err := r.js.Stream(context.Background(), "TRIGGER_DLQ")
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// dlq runs trigger-worker dlq with args and the rig's server.
func (r *dlqRig) dlq(args ...string) (string, string, error) {
	return runTool(r.url, append([]string{"dlq"}, args...)...)
}

func (r *dlqRig) mustDLQ(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := r.dlq(args...)
	if err != nil {
		t.Fatalf("dlq %v: %v\nstdout:\n%s\nstderr:\n%s", args, err, out, errOut)
	}
	return out
}

// TestDLQReplayFunction: dlq replay --function runs the replayed event with
// that function only: audit, which had succeeded, does not run it again.
func TestDLQReplayFunction(t *testing.T) {
	r := newDLQRig(t)
	id := r.deadLetter(t, `{"resourceName":"web-1"}`, 1)
	if got := r.audits.Load(); got != 1 {
		t.Fatalf("audit ran %d times before the replay, want once (skipped on the redelivery)", got)
	}
	if _, _, err := r.dlq("show", "1", "--function", "audit"); err == nil {
		t.Error("dlq show --function: no error")
	}
	r.failing.Store(false)
	r.mustDLQ(t, "replay", "1", "--function", "provision_dns")
	ev := natstest.ChanRecv(t, r.handled, 10*time.Second)
	if ev.ID != id {
		t.Errorf("replayed event id %q, want %q", ev.ID, id)
	}
	natstest.WaitSettled(t, r.js, "TRIGGER_EVENTS", "trigger-workers", 10*time.Second)
	if got := r.audits.Load(); got != 1 {
		t.Errorf("audit ran %d times after a replay to provision_dns only, want 1 (before it)", got)
	}

	// Without --function every function runs the event again.
	r.failing.Store(true)
	r.deadLetter(t, `{"resourceName":"web-2"}`, 1)
	r.failing.Store(false)
	before := r.audits.Load()
	r.mustDLQ(t, "replay", "--all")
	natstest.ChanRecv(t, r.handled, 10*time.Second)
	natstest.WaitSettled(t, r.js, "TRIGGER_EVENTS", "trigger-workers", 10*time.Second)
	if got := r.audits.Load(); got != before+1 {
		t.Errorf("audit ran %d times after a replay to all, want %d", got, before+1)
	}
}

func TestDLQListShowReplay(t *testing.T) {
	r := newDLQRig(t)
	if out := r.mustDLQ(t, "ls"); !strings.Contains(out, "no dead letters in TRIGGER_DLQ") {
		t.Errorf("dlq ls with none:\n%s", out)
	}
	id := r.deadLetter(t, `{"resourceName":"web-1","cpu":4}`, 1)

	out := r.mustDLQ(t, "ls")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("dlq ls: want a header and one row:\n%s", out)
	}
	for _, col := range []string{"SEQ", "FAILED AT", "SUBJECT", "FUNCTION", "ATTEMPTS", "ID", "ERROR"} {
		if !strings.Contains(lines[0], col) {
			t.Errorf("dlq ls header %q lacks %s", lines[0], col)
		}
	}
	row := strings.Fields(lines[1])
	if len(row) < 7 || row[0] != "1" || row[2] != "trigger.POST_CREATE.SERVER" || row[3] != "provision_dns" || row[4] != "2" || row[5] != id {
		t.Errorf("dlq ls row = %q, want seq 1, subject, function provision_dns, 2 attempts, id %s", lines[1], id)
	}
	if _, err := time.Parse(time.RFC3339, row[1]); err != nil {
		t.Errorf("dlq ls time %q: %v", row[1], err)
	}
	if !strings.Contains(lines[1], "dns api: 503 service unavailable retry later; the provider …") {
		t.Errorf("dlq ls error column of %q: want the error on one line, truncated", lines[1])
	}

	out = r.mustDLQ(t, "show", "1")
	for _, want := range []string{
		"seq:       1",
		"subject:   trigger.dlq.POST_CREATE.SERVER",
		"  " + worker.HeaderFailedFunction + ": provision_dns",
		"  " + worker.HeaderAttempts + ": 2",
		"  " + worker.HeaderSubject + ": trigger.POST_CREATE.SERVER",
		"  " + worker.HeaderError + ": dns api: 503 service unavailable",
		"  " + worker.HeaderOriginalMsgID + ": " + id,
		"event id:  " + id,
		"error:     dns api: 503 service unavailable",
		`  "id": "` + id + `",`,
		`    "resourceName": "web-1",`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("dlq show 1 lacks %q:\n%s", want, out)
		}
	}

	// -o json: the documented fields, parsed back.
	var letters []deadLetter
	if err := json.Unmarshal([]byte(r.mustDLQ(t, "ls", "-o", "json")), &letters); err != nil {
		t.Fatalf("dlq ls -o json: %v", err)
	}
	if len(letters) != 1 || letters[0].Seq != 1 || letters[0].Subject != "trigger.POST_CREATE.SERVER" || letters[0].Function != "provision_dns" ||
		letters[0].Attempts != 2 || letters[0].ID != id || !strings.HasPrefix(letters[0].Error, "dns api: 503") || letters[0].FailedAt.IsZero() {
		t.Errorf("dlq ls -o json = %+v", letters)
	}
	var shown struct {
		Seq     uint64              `json:"seq"`
		ID      string              `json:"id"`
		Headers map[string][]string `json:"headers"`
		Event   struct {
			ID    string `json:"id"`
			Input struct {
				ResourceName string `json:"resourceName"`
			} `json:"input"`
		} `json:"event"`
	}
	if err := json.Unmarshal([]byte(r.mustDLQ(t, "show", "1", "-o", "json")), &shown); err != nil {
		t.Fatalf("dlq show -o json: %v", err)
	}
	if shown.Seq != 1 || shown.ID != id || shown.Event.ID != id || shown.Event.Input.ResourceName != "web-1" ||
		!slices.Equal(shown.Headers[worker.HeaderFailedFunction], []string{"provision_dns"}) {
		t.Errorf("dlq show 1 -o json = %+v", shown)
	}
	var fromYAML []map[string]any
	if err := yaml.Unmarshal([]byte(r.mustDLQ(t, "ls", "-o", "yaml")), &fromYAML); err != nil || len(fromYAML) != 1 || fromYAML[0]["id"] != id || fromYAML[0]["attempts"] != 2 {
		t.Errorf("dlq ls -o yaml = %v (%v)", fromYAML, err)
	}

	// The function works again: a replay runs it, and the dead letter goes.
	r.failing.Store(false)
	out = r.mustDLQ(t, "replay", "1")
	if want := "replayed dead letter 1 to trigger.POST_CREATE.SERVER as " + id + ".replay.1"; !strings.Contains(out, want) {
		t.Errorf("dlq replay 1 = %q, want %q", out, want)
	}
	ev := natstest.ChanRecv(t, r.handled, 10*time.Second)
	if ev.ID != id || string(ev.Input) != `{"resourceName":"web-1","cpu":4}` {
		t.Errorf("replayed event = %+v, want %s with its input", ev, id)
	}
	if n := r.dlqMsgs(t); n != 0 {
		t.Errorf("%d dead letters after the replay, want 0", n)
	}
	if out := r.mustDLQ(t, "ls"); !strings.Contains(out, "no dead letters") {
		t.Errorf("dlq ls after the replay:\n%s", out)
	}
	if _, _, err := r.dlq("show", "1"); err == nil || exitCode(err) != 1 || !strings.Contains(err.Error(), "no dead letter 1") {
		t.Errorf("dlq show of a replayed dead letter: %v, want not found (exit 1)", err)
	}
}

func TestDLQReplayAllAndPurge(t *testing.T) {
	r := newDLQRig(t)
	ids := []string{r.deadLetter(t, `{"n":1}`, 1), r.deadLetter(t, `{"n":2}`, 2)}
	// Flags before the command work too.
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"dlq", "--nats-url", r.url, "ls"}, &out, &errOut); err != nil {
		t.Fatalf("dlq --nats-url URL ls: %v\n%s", err, errOut.String())
	}
	if n := strings.Count(out.String(), "provision_dns"); n != 2 {
		t.Errorf("dlq ls lists %d dead letters, want 2:\n%s", n, out.String())
	}

	r.failing.Store(false)
	if out := r.mustDLQ(t, "replay", "--all"); !strings.Contains(out, "replayed 2 dead letters") {
		t.Errorf("dlq replay --all:\n%s", out)
	}
	got := map[string]bool{}
	for range ids {
		got[natstest.ChanRecv(t, r.handled, 10*time.Second).ID] = true
	}
	for _, id := range ids {
		if !got[id] {
			t.Errorf("event %s not handled after replay --all (handled %v)", id, got)
		}
	}
	if n := r.dlqMsgs(t); n != 0 {
		t.Errorf("%d dead letters after replay --all, want 0", n)
	}

	r.failing.Store(true)
	r.deadLetter(t, `{"n":3}`, 1)
	r.deadLetter(t, `{"n":4}`, 2)
	if out := r.mustDLQ(t, "purge", "--force"); !strings.Contains(out, "purged 2 dead letters from TRIGGER_DLQ") {
		t.Errorf("dlq purge:\n%s", out)
	}
	if n := r.dlqMsgs(t); n != 0 {
		t.Errorf("%d dead letters after purge, want 0", n)
	}
}

func TestDLQUsage(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantMsg string
	}{
		{"no command", []string{"dlq"}, "dlq takes a command"},
		{"unknown command", []string{"dlq", "drop"}, `unknown dlq command "drop"`},
		{"show without SEQ", []string{"dlq", "show"}, "dlq show takes one SEQ"},
		{"show two", []string{"dlq", "show", "1", "2"}, "dlq show takes one SEQ"},
		{"show not a number", []string{"dlq", "show", "one"}, `SEQ "one" is not a sequence number`},
		{"show zero", []string{"dlq", "show", "0"}, `SEQ "0" is not a sequence number`},
		{"replay nothing", []string{"dlq", "replay"}, "dlq replay takes one SEQ or --all"},
		{"replay SEQ and all", []string{"dlq", "replay", "3", "--all"}, "dlq replay takes one SEQ or --all"},
		{"ls with an argument", []string{"dlq", "ls", "1"}, "dlq ls takes no arguments"},
		{"purge with all", []string{"dlq", "purge", "--all"}, "unknown flag: --all"},
		{"purge without a terminal", []string{"dlq", "purge"}, "stdin is not a terminal to confirm on, so it needs --force"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := run(context.Background(), tt.args, &out, &errOut)
			if err == nil || exitCode(err) != 2 {
				t.Fatalf("run(%q) = %v (exit %d), want a usage error (exit 2)", tt.args, err, exitCode(err))
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("run(%q) error %q, want it to say %q", tt.args, err, tt.wantMsg)
			}
		})
	}
	t.Run("bad flag", func(t *testing.T) {
		var out, errOut bytes.Buffer
		if err := run(context.Background(), []string{"dlq", "ls", "--nope"}, &out, &errOut); exitCode(err) != 2 {
			t.Errorf("dlq ls --nope: %v, want exit 2", err)
		}
	})
	t.Run("usage lists dlq", func(t *testing.T) {
		var out, errOut bytes.Buffer
		if err := run(context.Background(), []string{"help"}, &out, &errOut); err != nil || !strings.Contains(out.String(), "dlq ") {
			t.Errorf("help: %v\n%s", err, out.String())
		}
	})
}

// TestDLQNoStream: a NATS on which no durable worker ran has no dead-letter
// stream; dlq says so and exits 1.
func TestDLQNoStream(t *testing.T) {
	s := natstest.RunServer(t, natstest.WithJetStream())
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"dlq", "ls", "--nats-url", s.ClientURL()}, &out, &errOut)
	if err == nil || exitCode(err) != 1 || !strings.Contains(err.Error(), "no dead-letter stream TRIGGER_DLQ") {
		t.Errorf("dlq ls without the stream: %v (exit %d), want a runtime error naming the stream", err, exitCode(err))
	}
	// And a server that is not there.
	s.Shutdown()
	s.WaitForShutdown()
	err = run(context.Background(), []string{"dlq", "ls", "--nats-url", s.ClientURL()}, &out, &errOut)
	if err == nil || exitCode(err) != 1 || !errors.Is(err, nats.ErrNoServers) {
		t.Errorf("dlq ls without a server: %v (exit %d), want no servers (exit 1)", err, exitCode(err))
	}
}

// TestDLQEventCut: an event too close to the max payload to fit beside the
// dead-letter headers is dead-lettered at once with its reason and id, and
// dlq shows them, says the event was cut, and refuses to replay it.
func TestDLQEventCut(t *testing.T) {
	const maxPayload = 32 << 10
	r := newDLQRig(t, natstest.WithOptions(func(o *server.Options) { o.MaxPayload = maxPayload }))
	const id = "evt-near-the-limit"
	prefix := `{"id":"` + id + `","input":{"blob":"`
	body := prefix + strings.Repeat("a", maxPayload-200-len(prefix)) + `"}}`
	msg := nats.NewMsg("trigger.POST_CREATE.SERVER")
	msg.Data = []byte(body)
	msg.Header.Set(nats.MsgIdHdr, id)
	if _, err := r.js.PublishMsg(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	natstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if n := r.dlqMsgs(t); n != 1 {
			return fmt.Errorf("%d dead letters, want 1", n)
		}
		return nil
	})

	out := r.mustDLQ(t, "ls")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.Contains(lines[1], id) || !strings.Contains(lines[1], "[event cut to ") ||
		!strings.Contains(lines[1], "dns api: 503") {
		t.Errorf("dlq ls: want a row with the id, the cut and the error:\n%s", out)
	}
	out = r.mustDLQ(t, "show", "1")
	for _, want := range []string{
		"event id:  " + id,
		"error:     dns api: 503 service unavailable retry later; the provider is in maintenance until midnight",
		"  " + worker.HeaderOriginalMsgID + ": " + id,
		"  " + worker.HeaderBodyTruncated + ": " + strconv.Itoa(len(body)),
		"event (cut: the first ",
		"bytes; it cannot be replayed): \"{\\\"id\\\":\\\"" + id,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("dlq show 1 lacks %q:\n%s", want, out)
		}
	}
	r.failing.Store(false)
	_, _, err := r.dlq("replay", "1")
	if err == nil || exitCode(err) != 1 || !strings.Contains(err.Error(), "cannot be replayed") || !strings.Contains(err.Error(), id) {
		t.Errorf("dlq replay of a cut event: %v (exit %d), want a refusal naming the event", err, exitCode(err))
	}
	if n := r.dlqMsgs(t); n != 1 {
		t.Errorf("%d dead letters after the refused replay, want 1 (kept)", n)
	}
}

// TestDLQReplayAllInOrder: replay --all publishes the events of many dead
// letters without waiting for each ack, and still reports them in the dead
// letters' order, deletes those the event stream took, and keeps the one it
// cannot replay.
func TestDLQReplayAllInOrder(t *testing.T) {
	r := newDLQRig(t)
	r.failing.Store(false)
	ctx := context.Background()
	const n, bad = 13, 7 // dead letters, and the sequence of the one not replayable
	want := map[string]bool{}
	for seq := 1; seq <= n; seq++ {
		id := event.NewID()
		data, err := (&event.Event{ID: id, TriggerType: "POST_CREATE", TriggerOption: "SERVER", Input: json.RawMessage(fmt.Sprintf(`{"n":%d}`, seq))}).Encode()
		if err != nil {
			t.Fatal(err)
		}
		m := nats.NewMsg("trigger.dlq.POST_CREATE.SERVER")
		m.Data = data
		m.Header.Set(worker.HeaderSubject, "trigger.POST_CREATE.SERVER")
		if seq == bad {
			m.Header.Set(worker.HeaderSubject, "elsewhere.POST_CREATE.SERVER")
		} else {
			want[id] = true
		}
		m.Header.Set(worker.HeaderOriginalMsgID, id)
		m.Header.Set(worker.HeaderFailedFunction, "provision_dns")
		if _, err := r.js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	out, errOut, err := r.dlq("replay", "--all")
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("dead letter %d: original subject", bad)) {
		t.Errorf("replay --all: error %v, want one for dead letter %d\nstderr:\n%s", err, bad, errOut)
	}
	if !strings.Contains(out, fmt.Sprintf("replayed %d dead letters", n-1)) {
		t.Errorf("replay --all reports:\n%s", out)
	}
	var seqs, wantSeqs []int
	for line := range strings.Lines(out) {
		if rest, ok := strings.CutPrefix(line, "replayed dead letter "); ok {
			seq, err := strconv.Atoi(strings.Fields(rest)[0])
			if err != nil {
				t.Fatalf("report line %q", line)
			}
			seqs = append(seqs, seq)
		}
	}
	for seq := 1; seq <= n; seq++ {
		if seq != bad {
			wantSeqs = append(wantSeqs, seq)
		}
	}
	if !slices.Equal(seqs, wantSeqs) {
		t.Errorf("replayed dead letters reported as %v, want %v", seqs, wantSeqs)
	}
	for range n - 1 {
		ev := natstest.ChanRecv(t, r.handled, 10*time.Second)
		if !want[ev.ID] {
			t.Errorf("handled event %s, not one of the replayed", ev.ID)
		}
		delete(want, ev.ID)
	}
	if got := r.dlqMsgs(t); got != 1 {
		t.Errorf("%d dead letters after replay --all, want 1 (the one not replayable)", got)
	}
}
