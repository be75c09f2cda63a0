package worker_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/pkg/client"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/subjects"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// deadLetterPayload is the max payload of the server of the dead-letter
// size tests: small, so that an event near it is quick to make.
const deadLetterPayload = 32 << 10

// TestDeadLetterKeepsReasonAndID: a dead letter keeps the function's error,
// the event's Nats-Msg-Id and stream sequence, also for an event so close to
// the max payload that it cannot fit beside the dead-letter headers: that
// one is stored at once with the start of its event, marked, counted.
func TestDeadLetterKeepsReasonAndID(t *testing.T) {
	s := natstest.RunServer(t, natstest.WithJetStream(),
		natstest.WithOptions(func(o *server.Options) { o.MaxPayload = deadLetterPayload }))
	m := newReplyMetrics(t)
	reason := "quota service says no: " + strings.Repeat("the project is over its quota; ", 30)
	js, dlq := startFailingWorker(t, s, worker.Config{Metrics: m}, reason)
	ctx := context.Background()

	tests := []struct {
		id          string
		bodySize    int
		trace       int  // size of an X-Trace header on the event
		shortReason bool // the reason cut to 256 bytes, the event kept whole
		cut         bool // the event cut
	}{
		{"small-event", 100, 0, false, false},
		// Room for the headers with a short reason, not with this one (a
		// worker that dead-letters on the next delivery would store
		// "attempts exhausted" instead of the reason).
		{"room-for-a-short-reason", deadLetterPayload - 700 - 60, 0, true, false},
		// With its Nats-Msg-Id header the event is 150 bytes under the max
		// payload: the dead-letter headers take more than that.
		{"near-the-limit", deadLetterPayload - 150 - 60, 0, false, true},
		// The event's own header takes the room: it goes, the event stays.
		{"big-header", 1000, deadLetterPayload - 1000 - 100, true, false},
	}
	for i, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			body := eventOfSize(tt.id, tt.bodySize)
			msg := nats.NewMsg("trigger.POST_CREATE.SERVER")
			msg.Data = body
			msg.Header.Set(subjects.HeaderMsgID, tt.id)
			if tt.trace > 0 {
				msg.Header.Set("X-Trace", strings.Repeat("t", tt.trace))
			}
			ack, err := js.PublishMsg(ctx, msg)
			if err != nil {
				t.Fatalf("publish a %d-byte event: %v", len(body), err)
			}
			var dl *jetstream.RawStreamMsg
			natstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
				dl, err = dlq.GetMsg(ctx, uint64(i+1))
				return err
			})

			want := map[string]string{
				worker.HeaderError:          reason[:len(reason)-1], // nats.go trims the trailing space
				worker.HeaderFailedFunction: "always_fails",
				worker.HeaderAttempts:       "2",
				worker.HeaderOriginalMsgID:  tt.id,
				worker.HeaderEventSeq:       strconv.FormatUint(ack.Sequence, 10),
				worker.HeaderSubject:        "trigger.POST_CREATE.SERVER",
			}
			if tt.cut {
				want[worker.HeaderBodyTruncated] = strconv.Itoa(len(body))
			}
			if tt.trace > 0 {
				want[worker.HeaderHeadersDropped] = "X-Trace"
			}
			if tt.shortReason {
				got := dl.Header.Get(worker.HeaderError)
				if len(got) > 256 || !strings.HasSuffix(got, "…") || !strings.HasPrefix(reason, strings.TrimSuffix(got, "…")) {
					t.Errorf("dead letter header %s = %q, want the reason cut to 256 bytes", worker.HeaderError, got)
				}
				delete(want, worker.HeaderError)
			}
			for k, v := range want {
				if got := dl.Header.Get(k); got != v {
					t.Errorf("dead letter header %s = %.80q, want %.80q", k, got, v)
				}
			}
			if !tt.cut {
				if _, ok := dl.Header[worker.HeaderBodyTruncated]; ok || !bytes.Equal(dl.Data, body) {
					t.Errorf("dead letter = %d bytes, %s %q, want the whole event", len(dl.Data),
						worker.HeaderBodyTruncated, dl.Header.Get(worker.HeaderBodyTruncated))
				}
				return
			}
			if len(dl.Data) == 0 || len(dl.Data) >= len(body) || !bytes.HasPrefix(body, dl.Data) {
				t.Errorf("dead letter holds %d bytes, want a start of the %d-byte event", len(dl.Data), len(body))
			}
		})
	}
	// The worker counts a dead letter once the stream has acked it, which
	// can be just after the test has read it.
	natstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if v := testutil.ToFloat64(m.DeadLetters.WithLabelValues("always_fails")); v != float64(len(tests)) {
			return fmt.Errorf("trigger_dead_letters_total = %v, want %d", v, len(tests))
		}
		if v := testutil.ToFloat64(m.DeadLettersCut.WithLabelValues("always_fails")); v != 1 {
			return fmt.Errorf("trigger_dead_letters_truncated_total = %v, want 1", v)
		}
		return nil
	})
}

// startFailingWorker runs a durable worker (cfg with MaxDeliver 2) whose
// POST_CREATE.SERVER function always fails with reason, and returns a
// JetStream context and the dead-letter stream.
func startFailingWorker(t *testing.T, s *server.Server, cfg worker.Config, reason string) (jetstream.JetStream, jetstream.Stream) {
	t.Helper()
	cfg.Durable = &worker.DurableConfig{MaxDeliver: 2, Backoff: []time.Duration{20 * time.Millisecond}}
	startWorker(t, natstest.Connect(t, s), cfg,
		fn("always_fails", "POST_CREATE", []string{"SERVER"}, 0, func(context.Context, *event.Event) (handlers.Result, error) {
			return handlers.Result{}, errors.New(reason)
		}))
	js, err := jetstream.New(natstest.Connect(t, s))
	if err != nil {
		t.Fatal(err)
	}
	dlq, err := js.Stream(context.Background(), durableDLQ)
	if err != nil {
		t.Fatal(err)
	}
	return js, dlq
}

// eventOfSize is an event document of exactly n bytes (n >= 40) with id.
func eventOfSize(id string, n int) []byte {
	head := fmt.Sprintf(`{"id":%q,"input":{"blob":"`, id)
	const tail = `"}}`
	return []byte(head + strings.Repeat("a", n-len(head)-len(tail)) + tail)
}

// TestDeadLetterReasonSurvivesFailedWrite: when the dead letter cannot be
// stored (here the dead-letter stream is gone), the event is redelivered
// and the delivery that stores it still gives the function's error, not
// "attempts exhausted".
func TestDeadLetterReasonSurvivesFailedWrite(t *testing.T) {
	s := natstest.RunServer(t, natstest.WithJetStream())
	logs := &logWatch{match: "dead letter not stored", seen: make(chan struct{}, 16)}
	js, dlq := startFailingWorker(t, s, worker.Config{Logger: slog.New(logs)}, "quota service says no")
	ctx := context.Background()
	dlqCfg := dlq.CachedInfo().Config
	if err := js.DeleteStream(ctx, durableDLQ); err != nil {
		t.Fatal(err)
	}

	msg := nats.NewMsg("trigger.POST_CREATE.SERVER")
	msg.Data = []byte(`{"id":"evt-1","input":{}}`)
	msg.Header.Set(subjects.HeaderMsgID, "evt-1")
	if _, err := js.PublishMsg(ctx, msg); err != nil {
		t.Fatal(err)
	}
	natstest.ChanRecv(t, logs.seen, 10*time.Second)
	dlq, err := js.CreateStream(ctx, dlqCfg)
	if err != nil {
		t.Fatal(err)
	}
	var dl *jetstream.RawStreamMsg
	natstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		dl, err = dlq.GetMsg(ctx, 1)
		return err
	})
	for k, v := range map[string]string{
		worker.HeaderError:          "quota service says no",
		worker.HeaderFailedFunction: "always_fails",
		worker.HeaderAttempts:       "2",
		worker.HeaderOriginalMsgID:  "evt-1",
	} {
		if got := dl.Header.Get(k); got != v {
			t.Errorf("dead letter header %s = %q, want %q", k, got, v)
		}
	}
}

// logWatch is a slog handler that signals each record whose message
// contains match.
type logWatch struct {
	match string
	seen  chan struct{}
}

func (l *logWatch) Enabled(context.Context, slog.Level) bool { return true }
func (l *logWatch) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logWatch) WithGroup(string) slog.Handler            { return l }
func (l *logWatch) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, l.match) {
		select {
		case l.seen <- struct{}{}:
		default:
		}
	}
	return nil
}

// TestDeadLetterIDOfCorePublish: an event the SDK published on core NATS
// carries no Nats-Msg-Id (its id is new and it is sent once); the stream
// captures it all the same, and its dead letter keeps the event's id in
// Trigger-Msg-Id.
func TestDeadLetterIDOfCorePublish(t *testing.T) {
	s := natstest.RunServer(t, natstest.WithJetStream())
	_, dlq := startFailingWorker(t, s, worker.Config{}, "refused")
	c, err := client.New(natstest.Connect(t, s), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	id, err := c.Publish(ctx, "POST_CREATE", "SERVER", nil)
	if err != nil {
		t.Fatal(err)
	}
	var dl *jetstream.RawStreamMsg
	natstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		dl, err = dlq.GetMsg(ctx, 1)
		return err
	})
	if got := dl.Header.Get(worker.HeaderOriginalMsgID); got != id {
		t.Errorf("dead letter %s = %q, want the event id %q", worker.HeaderOriginalMsgID, got, id)
	}
	if got := dl.Header.Get(subjects.HeaderMsgID); got != "dlq.1" {
		t.Errorf("dead letter Nats-Msg-Id = %q, want dlq.1", got)
	}
}
