package worker_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

func okFn(ref, typ string) worker.Function {
	return fn(ref, typ, []string{"ANY"}, 0, func(context.Context, *event.Event) (handlers.Result, error) {
		return handlers.Result{}, nil
	})
}

func streamInfo(t *testing.T, js jetstream.JetStream, name string) *jetstream.StreamInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// TestDurableFullStreamRefusesEvents: by default a full event stream
// refuses new events, so a durable Publish returns the error, and every
// event stored before is kept and handled.
func TestDurableFullStreamRefusesEvents(t *testing.T) {
	r := newDurableRig(t)
	handled := make(chan string, 100)
	h := fn("on_create", "POST_CREATE", []string{"ANY"}, 0, func(_ context.Context, e *event.Event) (handlers.Result, error) {
		handled <- e.ID
		return handlers.Result{}, nil
	})
	dc := durableTestConfig()
	dc.StreamMaxBytes = 4096
	// A first worker creates the stream and the consumer, then stops: the
	// events wait in the stream.
	w := r.start(t, dc, h)
	if err := w.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if info := streamInfo(t, r.js, durableStream); info.Config.Discard != jetstream.DiscardNew {
		t.Fatalf("event stream discard = %v, want new", info.Config.Discard)
	}
	var stored []string
	var perr error
	for i := range 100 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		id, err := r.client.Publish(ctx, "POST_CREATE", "DISK", &event.Event{Input: []byte(`{"i":` + strconv.Itoa(i) + `,"pad":"` + fmt.Sprintf("%0200d", i) + `"}`)})
		cancel()
		if err != nil {
			perr = err
			break
		}
		stored = append(stored, id)
	}
	if perr == nil {
		t.Fatal("100 publishes of 200 bytes into a 4 KiB stream all succeeded")
	}
	t.Logf("publish %d: %v", len(stored)+1, perr)
	info := streamInfo(t, r.js, durableStream)
	if info.State.Msgs != uint64(len(stored)) || info.State.FirstSeq != 1 {
		t.Fatalf("full stream holds %d events from seq %d, want the %d stored from seq 1", info.State.Msgs, info.State.FirstSeq, len(stored))
	}

	r.nc = natstest.Connect(t, r.s)
	r.start(t, dc, h)
	got := map[string]bool{}
	for len(got) < len(stored) {
		got[natstest.ChanRecv(t, handled, 10*time.Second)] = true
	}
	for _, id := range stored {
		if !got[id] {
			t.Errorf("stored event %s not handled", id)
		}
	}
}

// TestDurableStreamLimits: StreamMaxAge -1 is an unlimited stream, the
// default 24h; DiscardOld is applied to the existing stream, and a later
// worker without it sets discard new again.
func TestDurableStreamLimits(t *testing.T) {
	r := newDurableRig(t)
	start := func(dc *worker.DurableConfig) *jetstream.StreamInfo {
		t.Helper()
		w := r.start(t, dc, okFn("on_create", "POST_CREATE"))
		if err := w.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		return streamInfo(t, r.js, durableStream)
	}
	if info := start(durableTestConfig()); info.Config.MaxAge != worker.DefaultStreamMaxAge || info.Config.Discard != jetstream.DiscardNew {
		t.Errorf("default: max age %v, discard %v; want %v, new", info.Config.MaxAge, info.Config.Discard, worker.DefaultStreamMaxAge)
	}
	dc := durableTestConfig()
	dc.StreamMaxAge = -1
	dc.DiscardOld = true
	if info := start(dc); info.Config.MaxAge != 0 || info.Config.Discard != jetstream.DiscardOld {
		t.Errorf("StreamMaxAge -1, DiscardOld: max age %v, discard %v; want 0 (unlimited), old", info.Config.MaxAge, info.Config.Discard)
	}
	if info := start(durableTestConfig()); info.Config.Discard != jetstream.DiscardNew {
		t.Errorf("back to the default: discard %v, want new", info.Config.Discard)
	}
}

// TestStreamGauges: after a known workload (two dead letters, then five
// events published while no worker runs) the stream gauges are what
// JetStream reports for the streams and the consumer.
func TestStreamGauges(t *testing.T) {
	r := newDurableRig(t)
	dc := durableTestConfig()
	dc.MaxDeliver = 1
	dc.StatsInterval = -1
	w := r.start(t, dc, fn("on_create", "POST_CREATE", []string{"ANY"}, 0, func(_ context.Context, e *event.Event) (handlers.Result, error) {
		if string(e.Input) == `"fail"` {
			return handlers.Result{}, errors.New("refused")
		}
		return handlers.Result{}, nil
	}))
	r.publish(t, "POST_CREATE", "DISK", `"fail"`)
	r.publish(t, "POST_CREATE", "DISK", `"fail"`)
	r.publish(t, "POST_CREATE", "DISK", `"ok"`)
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if v := testutil.ToFloat64(r.metrics.DeadLetters.WithLabelValues("on_create")); v != 2 {
			return fmt.Errorf("%v dead letters", v)
		}
		return nil
	})
	waitDurableSettled(t, r.js, 10*time.Second)
	if err := w.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		r.publish(t, "POST_CREATE", "DISK", `"later"`)
	}
	// The stream acks a publish before its consumer counts the event as
	// pending: wait until the server's own figures have settled.
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if ci := durableConsumerInfo(t, r.js); ci.NumPending != 5 {
			return fmt.Errorf("consumer %d pending, want 5", ci.NumPending)
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.RefreshStreamStats(ctx); err != nil {
		t.Fatal(err)
	}
	ev, dlq, ci := streamInfo(t, r.js, durableStream), streamInfo(t, r.js, durableDLQ), durableConsumerInfo(t, r.js)
	g := r.metrics.Streams
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"trigger_event_stream_messages", testutil.ToFloat64(g.EventMessages), float64(ev.State.Msgs)},
		{"trigger_event_stream_bytes", testutil.ToFloat64(g.EventBytes), float64(ev.State.Bytes)},
		{"trigger_event_stream_limit_bytes", testutil.ToFloat64(g.EventLimitBytes), float64(ev.Config.MaxBytes)},
		{"trigger_consumer_pending", testutil.ToFloat64(g.Pending), float64(ci.NumPending)},
		{"trigger_consumer_ack_pending", testutil.ToFloat64(g.AckPending), float64(ci.NumAckPending)},
		{"trigger_consumer_redelivered", testutil.ToFloat64(g.Redelivered), float64(ci.NumRedelivered)},
		{"trigger_dead_letter_stream_messages", testutil.ToFloat64(g.DeadLetterMsgs), float64(dlq.State.Msgs)},
		{"trigger_dead_letter_stream_bytes", testutil.ToFloat64(g.DeadLetterBytes), float64(dlq.State.Bytes)},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, JetStream says %v", c.name, c.got, c.want)
		}
	}
	// The workload's own numbers, so that the comparison is not of zeros.
	if ev.State.Msgs != 5 || ci.NumPending != 5 || dlq.State.Msgs != 2 || ev.Config.MaxBytes != worker.DefaultStreamMaxBytes {
		t.Errorf("stream %d events, consumer %d pending, %d dead letters, limit %d; want 5, 5, 2, %d",
			ev.State.Msgs, ci.NumPending, dlq.State.Msgs, ev.Config.MaxBytes, worker.DefaultStreamMaxBytes)
	}
	if testutil.ToFloat64(g.LastRefreshEpoch) == 0 {
		t.Error("trigger_stream_stats_last_refresh_timestamp_seconds not set")
	}
}
