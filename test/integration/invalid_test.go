package integration

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/pkg/client"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// invalidEvents are payloads (and subjects, for the option) a worker must
// refuse; type is POST_CREATE or PRE_CREATE, filled in by the tests.
var invalidEvents = []struct {
	name        string
	option      string // the subject's option
	body        string
	wantMessage string // part of the PRE refusal's message
}{
	{name: "not JSON", option: "SERVER", body: `{"input":`, wantMessage: "not JSON"},
	{name: "JSON array", option: "SERVER", body: `[{"input":{}}]`, wantMessage: "not an object"},
	{name: "JSON string", option: "SERVER", body: `"server"`, wantMessage: "not an object"},
	{name: "type mismatch", option: "SERVER", body: `{"triggerType":"POST_DELETE"}`, wantMessage: "triggerType"},
	{name: "option mismatch", option: "SERVER", body: `{"triggerOption":"DISK"}`, wantMessage: "triggerOption"},
	{name: "oversize", option: "SERVER", body: `{"input":{"blob":"` + strings.Repeat("x", 600) + `"}}`, wantMessage: "larger than the limit"},
	{name: "ANY on a type with options", option: "ANY", body: `{}`, wantMessage: "ANY"},
}

// maxEventBytes is the limit the tests of invalid events configure.
const maxEventBytes = 512

// TestInvalidPostDropped: invalid POST events are dropped and counted, and
// valid ones keep flowing around them.
func TestInvalidPostDropped(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	metrics := newMetrics(t)
	var calls atomic.Int64
	// ANY, so that the worker's wildcard subscription also gets .ANY.
	startWorker(t, natstest.Connect(t, s), worker.Config{Metrics: metrics, MaxEventBytes: maxEventBytes},
		fn("on_create", "POST_CREATE", []string{"ANY"}, 0, cont(&calls)))
	nc := natstest.Connect(t, s)
	dropped := metrics.EventsDropped.WithLabelValues("POST_CREATE", worker.ReasonInvalid)

	for i, tt := range invalidEvents {
		t.Run(tt.name, func(t *testing.T) {
			if err := nc.Publish("trigger.POST_CREATE."+tt.option, []byte(tt.body)); err != nil {
				t.Fatal(err)
			}
			if err := nc.Publish("trigger.POST_CREATE.SERVER", []byte(`{"input":{"ok":true}}`)); err != nil {
				t.Fatal(err)
			}
			waitValue(t, "dropped{POST_CREATE,invalid}", dropped, float64(i+1))
			waitCount(t, "valid events handled", &calls, int64(i+1))
		})
	}
}

// TestInvalidPreRefused: an invalid PRE request is answered allowed: false,
// code BAD_REQUEST, with the reason in the message.
func TestInvalidPreRefused(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	metrics := newMetrics(t)
	var calls atomic.Int64
	startWorker(t, natstest.Connect(t, s), worker.Config{Metrics: metrics, MaxEventBytes: maxEventBytes},
		fn("check_create", "PRE_CREATE", []string{"ANY"}, 0, cont(&calls)))
	nc := natstest.Connect(t, s)

	for _, tt := range invalidEvents {
		t.Run(tt.name, func(t *testing.T) {
			body := strings.ReplaceAll(tt.body, "POST_DELETE", "PRE_DELETE")
			d := decodeDecision(t, request(t, nc, &nats.Msg{Subject: "trigger.PRE_CREATE." + tt.option, Data: []byte(body)}))
			if d.Allowed || d.Code != event.CodeBadRequest || !strings.Contains(d.Message, tt.wantMessage) {
				t.Errorf("decision = %+v, want refused, code BAD_REQUEST, message containing %q", d, tt.wantMessage)
			}
		})
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("the function ran %d times for invalid requests", n)
	}
	if got, want := value(metrics.EventsDropped.WithLabelValues("PRE_CREATE", worker.ReasonInvalid)), float64(len(invalidEvents)); got != want {
		t.Errorf("dropped{PRE_CREATE,invalid} = %v, want %v", got, want)
	}
	// The worker still answers valid requests.
	d := decodeDecision(t, request(t, nc, &nats.Msg{Subject: "trigger.PRE_CREATE.SERVER", Data: []byte(`{"input":{}}`)}))
	if !d.Allowed || calls.Load() != 1 {
		t.Errorf("valid request after invalid ones: %+v, function calls %d", d, calls.Load())
	}
}

// TestPublishAnyRefusedBySDK: the SDK never publishes option ANY for a type
// that has options.
func TestPublishAnyRefusedBySDK(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	c := newClient(t, s, client.Options{})
	if _, err := c.Publish(context.Background(), "POST_CREATE", "ANY", nil); err == nil {
		t.Error("Publish(POST_CREATE, ANY) = nil error, want a validation error")
	}
	if _, err := c.Decide(context.Background(), "PRE_CREATE", "ANY", nil); err == nil {
		t.Error("Decide(PRE_CREATE, ANY) = nil error, want a validation error")
	}
}
