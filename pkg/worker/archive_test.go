package worker_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/subjects"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

const durableArchive = "TRIGGER_ARCHIVE"

// TestArchiveKeepsHandledEvents: with the archive on, every event of the
// event stream, handled or without a function, is in the archive after the
// event stream (interest retention) let go of it, with its subject and
// Nats-Msg-Id; the archive gauges read it.
func TestArchiveKeepsHandledEvents(t *testing.T) {
	r := newDurableRig(t)
	var mu sync.Mutex
	var handled []string
	h := fn("on_create", "POST_CREATE", []string{"ANY"}, 0, func(_ context.Context, e *event.Event) (handlers.Result, error) {
		mu.Lock()
		handled = append(handled, e.ID)
		mu.Unlock()
		return handlers.Result{}, nil
	})
	dc := durableTestConfig()
	dc.Archive = &worker.ArchiveConfig{MaxAge: time.Hour, MaxBytes: 1 << 20}
	w := r.start(t, dc, h)
	// Published at once after Start, as a fleet's publishers would: the
	// archive's source is in place before the workers' consumer acks any.
	const n = 60
	var want []string
	for i := range n {
		want = append(want, r.publish(t, "POST_CREATE", "DISK", `{"i":`+strconv.Itoa(i)+`}`))
	}
	// POST_DELETE has no function: the workers ack it unrun; it is archived too.
	want = append(want, r.publish(t, "POST_DELETE", "DISK", `{}`))
	natstest.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(handled) < n {
			return fmt.Errorf("%d of %d events handled", len(handled), n)
		}
		return nil
	})
	waitDurableSettled(t, r.js, 30*time.Second)
	natstest.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		if info := streamInfo(t, r.js, durableStream); info.State.Msgs != 0 {
			return fmt.Errorf("event stream still holds %d events", info.State.Msgs)
		}
		if info := streamInfo(t, r.js, durableArchive); info.State.Msgs != uint64(len(want)) {
			return fmt.Errorf("archive holds %d events, want %d", info.State.Msgs, len(want))
		}
		return nil
	})
	info := streamInfo(t, r.js, durableArchive)
	if info.Config.Retention != jetstream.LimitsPolicy || info.Config.MaxAge != time.Hour || info.Config.MaxBytes != 1<<20 ||
		info.Config.Discard != jetstream.DiscardOld || len(info.Config.Sources) != 1 || info.Config.Sources[0].Name != durableStream {
		t.Fatalf("archive config: %+v", info.Config)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := r.js.Stream(ctx, durableArchive)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for seq := uint64(1); seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		if seq <= n && m.Subject != "trigger.POST_CREATE.DISK" || seq == n+1 && m.Subject != "trigger.POST_DELETE.DISK" {
			t.Fatalf("archived event %d on %s", seq, m.Subject)
		}
		got = append(got, m.Header.Get(subjects.HeaderMsgID))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("archived ids %v, want the published %v", got, want)
	}
	if err := w.RefreshStreamStats(ctx); err != nil {
		t.Fatal(err)
	}
	g := r.metrics.Streams
	if v := testutil.ToFloat64(g.ArchiveMessages); v != float64(len(want)) {
		t.Fatalf("trigger_archive_stream_messages = %v, want %d", v, len(want))
	}
	if v := testutil.ToFloat64(g.ArchiveBytes); v != float64(info.State.Bytes) || v == 0 {
		t.Fatalf("trigger_archive_stream_bytes = %v, want %d", v, info.State.Bytes)
	}
	if v := testutil.ToFloat64(g.ArchiveLimitBytes); v != 1<<20 {
		t.Fatalf("trigger_archive_stream_limit_bytes = %v, want %d", v, 1<<20)
	}
}

// TestArchiveOffCreatesNoStream: without an archive configured, durable
// delivery creates no archive stream, and its gauges read zero.
func TestArchiveOffCreatesNoStream(t *testing.T) {
	r := newDurableRig(t)
	w := r.start(t, durableTestConfig(), okFn("on_create", "POST_CREATE"))
	r.publish(t, "POST_CREATE", "DISK", `{}`)
	waitDurableSettled(t, r.js, 30*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := r.js.Stream(ctx, durableArchive); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("archive stream lookup: %v, want not found", err)
	}
	if err := w.RefreshStreamStats(ctx); err != nil {
		t.Fatal(err)
	}
	if v := testutil.ToFloat64(r.metrics.Streams.ArchiveMessages); v != 0 {
		t.Fatalf("trigger_archive_stream_messages = %v without an archive", v)
	}
}

// sourceConsumers lists the event stream's consumers of the archive's
// source.
func sourceConsumers(t *testing.T, js jetstream.JetStream) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, durableStream)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	l := s.ListConsumers(ctx)
	for ci := range l.Info() {
		if ci.Config.Metadata["_nats.src.stream"] == durableArchive {
			names = append(names, ci.Name)
		}
	}
	if err := l.Err(); err != nil {
		t.Fatal(err)
	}
	return names
}

// TestArchiveOrphanSource: a worker without the archive leaves the source
// of an existing archive alone (another worker's), and deletes a source
// consumer whose archive is gone, which would hold every event.
func TestArchiveOrphanSource(t *testing.T) {
	r := newDurableRig(t)
	dc := durableTestConfig()
	dc.Archive = &worker.ArchiveConfig{}
	r.start(t, dc, okFn("on_create", "POST_CREATE"))
	src := sourceConsumers(t, r.js)
	if len(src) != 1 {
		t.Fatalf("source consumers %v, want one", src)
	}
	r.start(t, durableTestConfig(), okFn("on_create", "POST_CREATE"))
	if got := sourceConsumers(t, r.js); !slices.Equal(got, src) {
		t.Fatalf("after a worker without the archive started: source consumers %v, want %v", got, src)
	}

	// The archive goes, its source consumer stays behind (the server's
	// delete of it failed).
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.js.DeleteStream(ctx, durableArchive); err != nil {
		t.Fatal(err)
	}
	orphan, err := r.js.CreateOrUpdateConsumer(ctx, durableStream, jetstream.ConsumerConfig{
		Durable: "JS_SRC_left", AckPolicy: jetstream.AckExplicitPolicy,
		Metadata: map[string]string{"_nats.src.stream": durableArchive},
	})
	if err != nil {
		t.Fatal(err)
	}
	r.publish(t, "POST_CREATE", "DISK", `{}`)
	natstest.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		if ci := durableConsumerInfo(t, r.js); ci.NumPending != 0 || ci.NumAckPending != 0 || ci.AckFloor.Stream == 0 {
			return fmt.Errorf("workers' consumer: %d pending, %d unacked, ack floor %d", ci.NumPending, ci.NumAckPending, ci.AckFloor.Stream)
		}
		return nil
	})
	if info := streamInfo(t, r.js, durableStream); info.State.Msgs != 1 {
		t.Fatalf("event stream holds %d events with an orphan source consumer, want 1 (held for it)", info.State.Msgs)
	}
	r.start(t, durableTestConfig(), okFn("on_create", "POST_CREATE"))
	if _, err := orphan.Info(ctx); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Fatalf("orphan source consumer: %v, want deleted", err)
	}
	natstest.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		if info := streamInfo(t, r.js, durableStream); info.State.Msgs != 0 {
			return fmt.Errorf("event stream holds %d events", info.State.Msgs)
		}
		return nil
	})
}
