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
