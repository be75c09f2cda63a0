package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/pkg/client"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/subjects"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// runs counts the runs of a function per event id.
type runs struct {
	mu  sync.Mutex
	ids map[string]int
	n   int
}

func (r *runs) fn(ref, typ string) worker.Function {
	return worker.Function{Ref: ref, TriggerType: typ, Options: []string{"ANY"},
		Handler: handlers.Func(func(_ context.Context, ev *event.Event) (handlers.Result, error) {
			r.mu.Lock()
			defer r.mu.Unlock()
			if r.ids == nil {
				r.ids = map[string]int{}
			}
			r.ids[ev.ID]++
			r.n++
			return handlers.Result{ExitState: handlers.Success}, nil
		})}
}

func (r *runs) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ids, r.n = nil, 0
}

func (r *runs) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

// replayRig is a JetStream server with a durable worker whose archive is
// on: target and other both run POST_CREATE events, deleted runs
// POST_DELETE ones.
type replayRig struct {
	url                    string
	js                     jetstream.JetStream
	client                 *client.Client
	target, other, deleted runs
}

func newReplayRig(t *testing.T) *replayRig {
	t.Helper()
	s := natstest.RunServer(t, natstest.WithJetStream())
	r := &replayRig{url: s.ClientURL()}
	r.client, r.js = startWorker(t, s, worker.Config{
		Durable: &worker.DurableConfig{Archive: &worker.ArchiveConfig{}},
	}, r.target.fn("target", "POST_CREATE"), r.other.fn("other", "POST_CREATE"), r.deleted.fn("deleted", "POST_DELETE"))
	return r
}

func (r *replayRig) publish(t *testing.T, typ, option string, i int) string {
	t.Helper()
	id, err := r.client.Publish(context.Background(), typ, option, &event.Event{Input: json.RawMessage(`{"i":` + strconv.Itoa(i) + `}`)})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func (r *replayRig) streamInfo(t *testing.T, name string) *jetstream.StreamInfo {
	t.Helper()
	s, err := r.js.Stream(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// waitArchived waits until the archive holds n events and the workers have
// handled every event of the event stream.
func (r *replayRig) waitArchived(t *testing.T, n uint64) {
	t.Helper()
	natstest.CheckFor(t, 60*time.Second, 20*time.Millisecond, func() error {
		if got := r.streamInfo(t, "TRIGGER_ARCHIVE").State.Msgs; got != n {
			return fmt.Errorf("archive holds %d events, want %d", got, n)
		}
		return nil
	})
	natstest.WaitSettled(t, r.js, "TRIGGER_EVENTS", "trigger-workers", 60*time.Second)
}

// replay runs trigger-worker replay with args and the rig's server.
func (r *replayRig) replay(args ...string) (string, string, error) {
	return runTool(r.url, append([]string{"replay"}, args...)...)
}

func (r *replayRig) mustReplay(t *testing.T, want string, args ...string) {
	t.Helper()
	out, errOut, err := r.replay(args...)
	if err != nil {
		t.Fatalf("replay %v: %v\nstdout:\n%s\nstderr:\n%s", args, err, out, errOut)
	}
	if strings.TrimSpace(out) != want {
		t.Fatalf("replay %v printed %q, want %q", args, out, want)
	}
	if errOut != "" {
		t.Fatalf("replay %v wrote to stderr (not a terminal): %q", args, errOut)
	}
}

// TestReplayToOneFunction: 500 archived events replayed with --function
// run exactly once each on that function, and on no other function of
// their subject; a replay is not dropped as a duplicate of its original
// (both within the dedup window), is archived marked Trigger-Replay, and
// is not replayed again unless asked; --dry-run publishes nothing.
func TestReplayToOneFunction(t *testing.T) {
	r := newReplayRig(t)
	const n = 500
	ids := map[string]bool{}
	for i := range n {
		ids[r.publish(t, "POST_CREATE", "DISK", i)] = true
	}
	r.waitArchived(t, n)
	if r.target.count() != n || r.other.count() != n {
		t.Fatalf("before the replay: target ran %d, other %d, want %d each", r.target.count(), r.other.count(), n)
	}
	r.target.reset()
	r.other.reset()

	before := r.streamInfo(t, "TRIGGER_EVENTS").State.LastSeq
	r.mustReplay(t, "matched 500, would publish 500, skipped 0, failed 0", "--since", "1h", "--function", "target", "--dry-run")
	if got := r.streamInfo(t, "TRIGGER_EVENTS").State.LastSeq; got != before {
		t.Fatalf("--dry-run: the event stream went from seq %d to %d", before, got)
	}

	r.mustReplay(t, "matched 500, published 500, skipped 0, failed 0", "--since", "1h", "--function", "target")
	r.waitArchived(t, 2*n)
	if got := r.other.count(); got != 0 {
		t.Errorf("other ran %d replayed events, want 0", got)
	}
	r.target.mu.Lock()
	if len(r.target.ids) != n || r.target.n != n {
		t.Errorf("target ran %d runs of %d events, want %d once each", r.target.n, len(r.target.ids), n)
	}
	for id, k := range r.target.ids {
		if !ids[id] || k != 1 {
			t.Errorf("target ran event %s %d times (published: %v)", id, k, ids[id])
		}
	}
	r.target.mu.Unlock()

	// The replays are archived, marked with their originals' ids.
	ctx := context.Background()
	archive, err := r.js.Stream(ctx, "TRIGGER_ARCHIVE")
	if err != nil {
		t.Fatal(err)
	}
	m, err := archive.GetMsg(ctx, n+1)
	if err != nil {
		t.Fatal(err)
	}
	if !ids[m.Header.Get(worker.HeaderReplay)] || m.Header.Get(worker.HeaderReplayFunction) != "target" {
		t.Errorf("archived replay headers: %v", m.Header)
	}
	// A replay of the window skips the replays in it.
	r.mustReplay(t, "matched 1000, would publish 500, skipped 500, failed 0", "--since", "1h", "--dry-run")
	r.mustReplay(t, "matched 1000, would publish 1000, skipped 0, failed 0", "--since", "1h", "--dry-run", "--include-replays")
}

// TestReplayFilters: --type, --option, --since and --until choose the
// archived events replayed; events that carried a loop flag are skipped.
func TestReplayFilters(t *testing.T) {
	r := newReplayRig(t)
	for i := range 3 {
		r.publish(t, "POST_CREATE", "DISK", i)
	}
	r.waitArchived(t, 3)
	for i := range 2 {
		r.publish(t, "POST_CREATE", "SERVER", i)
	}
	r.publish(t, "POST_DELETE", "DISK", 0)
	r.publish(t, "POST_DELETE", "DISK", 1)
	r.waitArchived(t, 7)

	r.mustReplay(t, "matched 5, would publish 5, skipped 0, failed 0", "--since", "1h", "--type", "POST_CREATE", "--dry-run")
	r.mustReplay(t, "matched 2, would publish 2, skipped 0, failed 0", "--since", "1h", "--type", "POST_CREATE", "--option", "SERVER", "--dry-run")
	r.mustReplay(t, "matched 5, would publish 5, skipped 0, failed 0", "--since", "1h", "--option", "DISK", "--dry-run")

	// The window, by the archive's store times (inclusive at both ends).
	ctx := context.Background()
	archive, err := r.js.Stream(ctx, "TRIGGER_ARCHIVE")
	if err != nil {
		t.Fatal(err)
	}
	at := func(seq uint64) string {
		m, err := archive.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		return m.Time.UTC().Format(time.RFC3339Nano)
	}
	if at(3) == at(4) {
		t.Fatalf("events 3 and 4, archived one after the other was handled, have the same time %s", at(3))
	}
	r.mustReplay(t, "matched 4, would publish 4, skipped 0, failed 0", "--since", at(4), "--dry-run")
	r.mustReplay(t, "matched 3, would publish 3, skipped 0, failed 0", "--since", "1h", "--until", at(3), "--dry-run")
	r.mustReplay(t, "matched 2, would publish 2, skipped 0, failed 0", "--since", at(4), "--until", at(6), "--type", "POST_CREATE", "--dry-run")

	// The window [4, 5] of POST_CREATE, for real: deleted does not run.
	r.deleted.reset()
	r.target.reset()
	r.mustReplay(t, "matched 2, published 2, skipped 0, failed 0", "--since", at(4), "--until", at(5))
	r.waitArchived(t, 9)
	if r.target.count() != 2 || r.other.count() != 5+2 || r.deleted.count() != 0 {
		t.Fatalf("after replaying 2 POST_CREATE events: target %d, other %d (5 before), deleted %d", r.target.count(), r.other.count(), r.deleted.count())
	}

	// An event that carried a loop flag (a function's) is not replayed.
	msg := nats.NewMsg("trigger.POST_MODIFY.DISK")
	msg.Data = []byte(`{"id":"looped","input":{}}`)
	msg.Header.Set(subjects.HeaderOrigin, "from-a-function")
	if _, err := r.js.PublishMsg(ctx, msg); err != nil {
		t.Fatal(err)
	}
	r.waitArchived(t, 10)
	r.mustReplay(t, "matched 1, published 0, skipped 1, failed 0", "--since", "1h", "--type", "POST_MODIFY")

	// The counts as a document.
	out, _, err := r.replay("--since", "1h", "--type", "POST_CREATE", "--dry-run", "-o", "json")
	var got replayCounts
	if err != nil || json.Unmarshal([]byte(out), &got) != nil {
		t.Fatalf("replay -o json: %v\n%s", err, out)
	}
	if want := (replayCounts{Matched: 7, Published: 5, Skipped: 2, DryRun: true}); got != want {
		t.Errorf("replay -o json = %+v, want %+v", got, want)
	}
}

// TestReplayUsage: bad flags are usage errors (exit 2) naming the flag,
// and without an archive replay says so.
func TestReplayUsage(t *testing.T) {
	s := natstest.RunServer(t, natstest.WithJetStream())
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "replay needs --since"},
		{[]string{"--since", "yesterday"}, "replay --since"},
		{[]string{"--since", "1h", "--until", "2h"}, "is before --since"},
		{[]string{"--since", "1h", "--type", "PRE_CREATE"}, "PRE events are not archived"},
		{[]string{"--since", "1h", "--type", "POST_NOPE"}, "replay --type"},
		{[]string{"--since", "1h", "--option", "a.b"}, "replay --option"},
		{[]string{"--since", "1h", "--rate", "fast"}, "replay --rate"},
		{[]string{"--since", "1h", "--rate", "-3/s"}, "replay --rate"},
		{[]string{"--since", "1h", "extra"}, "no arguments"},
	} {
		_, _, err := runTool(s.ClientURL(), append([]string{"replay"}, tc.args...)...)
		if err == nil || exitCode(err) != 2 || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("replay %v: %v (exit %d), want a usage error with %q", tc.args, err, exitCode(err), tc.want)
		}
	}
	_, _, err := runTool(s.ClientURL(), "replay", "--since", "1h")
	if err == nil || exitCode(err) != 1 || !strings.Contains(err.Error(), "no archive stream TRIGGER_ARCHIVE") {
		t.Errorf("replay without an archive: %v", err)
	}
	for in, want := range map[string]float64{"": 0, "100": 100, "100/s": 100, "0.5/s": 0.5} {
		if got, err := parseRate(in); err != nil || got != want {
			t.Errorf("parseRate(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
}

// TestProgressBar: the bar fills as events are read, and ends its line.
func TestProgressBar(t *testing.T) {
	var b bytes.Buffer
	bar := newProgressBar(&b, 4)
	for i := 1; i <= 4; i++ {
		bar.step(i)
	}
	bar.done()
	if !strings.HasSuffix(b.String(), "\rreplay ["+strings.Repeat("#", progressWidth)+"] 4/4\n") || !strings.HasPrefix(b.String(), "\rreplay [#######") {
		t.Fatalf("progress bar %q", b.String())
	}
	var none bytes.Buffer
	if writerIsTerminal(&none) {
		t.Fatal("a buffer is a terminal")
	}
}

// TestReplayFailuresCounted: replays go out asynchronously, and each one
// the event stream refuses is counted failed, with the first refusal in the
// error; none is counted published before its ack. With the stream
// accepting again, the same window replays in full, in archive order.
func TestReplayFailuresCounted(t *testing.T) {
	r := newReplayRig(t)
	const n = 700 // more than the window of replays awaiting their acks
	ids := make([]string, n)
	for i := range n {
		ids[i] = r.publish(t, "POST_CREATE", "SERVER", i)
	}
	r.waitArchived(t, n)
	r.target.reset()
	ctx := context.Background()
	events, err := r.js.Stream(ctx, "TRIGGER_EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	info, err := events.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	limit := func(size int32) {
		t.Helper()
		cfg := info.Config
		cfg.MaxMsgSize = size
		if _, err := r.js.UpdateStream(ctx, cfg); err != nil {
			t.Fatal(err)
		}
	}
	limit(16) // no event fits: every replay is refused
	out, errOut, err := r.replay("--since", "1h", "--function", "target")
	if want := fmt.Sprintf("matched %d, published 0, skipped 0, failed %d", n, n); strings.TrimSpace(out) != want {
		t.Errorf("replay into a stream that refuses printed %q (stderr %q), want %q", out, errOut, want)
	}
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%d of %d events not replayed; the first: replay archived event", n, n)) {
		t.Errorf("replay into a stream that refuses: error %v", err)
	}

	limit(info.Config.MaxMsgSize)
	r.mustReplay(t, fmt.Sprintf("matched %d, published %d, skipped 0, failed 0", n, n), "--since", "1h", "--function", "target")
	r.waitArchived(t, 2*n)
	archive, err := r.js.Stream(ctx, "TRIGGER_ARCHIVE")
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		m, err := archive.GetMsg(ctx, uint64(n+1+i))
		if err != nil {
			t.Fatal(err)
		}
		if got := m.Header.Get(worker.HeaderReplay); got != ids[i] {
			t.Fatalf("archived replay %d is of event %s, want %s: not in archive order", i, got, ids[i])
		}
	}
	if got := r.target.count(); got != n {
		t.Errorf("target ran %d replays, want %d", got, n)
	}
}
