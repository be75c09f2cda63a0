package integration

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/pkg/client"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/subjects"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// TestLoopGuardFlaggedEvents: events that carry Trigger-Origin fire no
// trigger: a POST is dropped and counted, a PRE answered at once.
func TestLoopGuardFlaggedEvents(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	metrics := newMetrics(t)
	var post, pre atomic.Int64
	startWorker(t, natstest.Connect(t, s), worker.Config{Metrics: metrics},
		fn("on_delete", "POST_DELETE", []string{"ANY"}, 0, cont(&post)),
		fn("deny_delete", "PRE_DELETE", []string{"ANY"}, 0, deny(&pre, "NO", "never")))
	nc := natstest.Connect(t, s)

	flagged := nats.NewMsg("trigger.POST_DELETE.SERVER")
	flagged.Header.Set(subjects.HeaderOrigin, "some_function/01JDQ7Z6W3S6K4V0Q5H3YB3M8C")
	if err := nc.PublishMsg(flagged); err != nil {
		t.Fatal(err)
	}
	waitValue(t, "dropped{POST_DELETE,trigger_originated}",
		metrics.EventsDropped.WithLabelValues("POST_DELETE", worker.ReasonTriggerOriginated), 1)
	if err := nc.PublishMsg(nats.NewMsg("trigger.POST_DELETE.DISK")); err != nil {
		t.Fatal(err)
	}
	waitCount(t, "POST calls", &post, 1)
	if n := value(metrics.EventsReceived.WithLabelValues("POST_DELETE", "SERVER")); n != 1 {
		t.Errorf("received{POST_DELETE,SERVER} = %v, want 1 (dropped events are received too)", n)
	}

	req := nats.NewMsg("trigger.PRE_DELETE.SERVER")
	req.Header.Set(subjects.HeaderOrigin, "some_function/01JDQ7Z6W3S6K4V0Q5H3YB3M8C")
	d := decodeDecision(t, request(t, nc, req))
	if !d.Allowed || d.Code != event.CodeTriggerOriginated {
		t.Errorf("flagged PRE decision = %+v, want allowed, code TRIGGER_ORIGINATED", d)
	}
	if n := pre.Load(); n != 0 {
		t.Errorf("the PRE function ran %d times for a flagged request", n)
	}
}

// TestLoopGuardBreaksLoops: what a function causes, through the Bus it is
// given or through the SDK with its ctx, is flagged and fires no trigger.
// The loop "POST_CREATE SERVER publishes POST_CREATE SERVER" runs its
// function exactly once per original event.
func TestLoopGuardBreaksLoops(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		key  []byte
	}{
		{name: "unsigned"},
		{name: "signed", key: []byte("fleet-key-for-tests")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			testLoopGuardBreaksLoops(t, tt.key)
		})
	}
}

func testLoopGuardBreaksLoops(t *testing.T, key []byte) {
	s := natstest.RunServer(t)
	metrics := newMetrics(t)
	sdk := newClient(t, s, client.Options{})

	var busCalls, sdkCalls, preCalls atomic.Int64
	errs := make(chan error, 100)
	report := func(err error) {
		if err != nil {
			errs <- err
		}
	}
	// Publishes its own event again, and asks a PRE question, through the Bus.
	viaBus := func(ctx context.Context, ev *event.Event) (handlers.Result, error) {
		busCalls.Add(1)
		call, ok := handlers.CallFrom(ctx)
		if !ok || call.Bus == nil {
			return handlers.Result{}, errors.New("no call in ctx")
		}
		report(call.Bus.Publish(ctx, "trigger.POST_CREATE.SERVER", []byte(`{"input":{"again":true}}`)))
		reply, err := call.Bus.Request(ctx, "trigger.PRE_CREATE.SERVER", nil, 0)
		if err != nil {
			report(fmt.Errorf("Bus.Request: %w", err))
		} else if d, err := event.DecodeDecision(reply); err != nil || !d.Allowed || d.Code != event.CodeTriggerOriginated {
			report(fmt.Errorf("Bus.Request decision = %s (%v), want TRIGGER_ORIGINATED", reply, err))
		}
		return handlers.Result{}, nil
	}
	// Publishes its own event again, and asks a PRE question, through the SDK.
	viaSDK := func(ctx context.Context, ev *event.Event) (handlers.Result, error) {
		sdkCalls.Add(1)
		_, err := sdk.Publish(ctx, "POST_DELETE", "DISK", &event.Event{Input: ev.Input})
		report(err)
		d, err := sdk.Decide(ctx, "PRE_CREATE", "SERVER", nil)
		if err != nil {
			report(fmt.Errorf("Decide: %w", err))
		} else if !d.Allowed || d.Code != event.CodeTriggerOriginated {
			report(fmt.Errorf("Decide in a function = %+v, want TRIGGER_ORIGINATED", d))
		}
		return handlers.Result{}, nil
	}
	startWorker(t, natstest.Connect(t, s), worker.Config{Metrics: metrics, LoopKey: key},
		fn("echo_bus", "POST_CREATE", []string{"SERVER"}, 0, viaBus),
		fn("echo_sdk", "POST_DELETE", []string{"DISK"}, 0, viaSDK),
		fn("deny_all", "PRE_CREATE", []string{"ANY"}, 0, deny(&preCalls, "NO", "never")),
	)

	const events = 5
	ctx := context.Background()
	for range events {
		if _, err := sdk.Publish(ctx, "POST_CREATE", "SERVER", nil); err != nil {
			t.Fatal(err)
		}
		if _, err := sdk.Publish(ctx, "POST_DELETE", "DISK", nil); err != nil {
			t.Fatal(err)
		}
	}
	// Each original event causes one flagged event, dropped when it arrives.
	waitValue(t, "dropped{POST_CREATE,trigger_originated}",
		metrics.EventsDropped.WithLabelValues("POST_CREATE", worker.ReasonTriggerOriginated), events)
	waitValue(t, "dropped{POST_DELETE,trigger_originated}",
		metrics.EventsDropped.WithLabelValues("POST_DELETE", worker.ReasonTriggerOriginated), events)

	if n := busCalls.Load(); n != events {
		t.Errorf("echo_bus ran %d times, want %d (once per original event)", n, events)
	}
	if n := sdkCalls.Load(); n != events {
		t.Errorf("echo_sdk ran %d times, want %d (once per original event)", n, events)
	}
	if n := preCalls.Load(); n != 0 {
		t.Errorf("the PRE function ran %d times for requests a function made", n)
	}
	// Bus.Request reached the worker and was answered without running (the
	// functions make their requests after their echoes, so wait for them).
	waitValue(t, "dropped{PRE_CREATE,trigger_originated}",
		metrics.EventsDropped.WithLabelValues("PRE_CREATE", worker.ReasonTriggerOriginated), events)
	if n := value(metrics.OriginRejected.WithLabelValues("POST_CREATE")); n != 0 {
		t.Errorf("origin_rejected{POST_CREATE} = %v, want 0: the worker's own stamps verify", n)
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestLoopGuardSignedOrigin: with a fleet key, only a Trigger-Origin that
// verifies for the message it is on silences triggers; forged, tampered,
// expired, legacy, external and other messages' values are counted and the
// triggers run.
func TestLoopGuardSignedOrigin(t *testing.T) {
	t.Parallel()
	key := []byte("fleet-key-for-tests")
	s := natstest.RunServer(t)
	metrics := newMetrics(t)
	var post, pre atomic.Int64
	startWorker(t, natstest.Connect(t, s), worker.Config{Metrics: metrics, LoopKey: key},
		fn("on_create", "POST_CREATE", []string{"SERVER"}, 0, cont(&post)),
		fn("deny_create", "PRE_CREATE", []string{"SERVER"}, 0, deny(&pre, "NO", "refused")))
	nc := natstest.Connect(t, s)

	const id = "01JDQ7Z6W3S6K4V0Q5H3YB3M8C"
	signer := worker.NewOrigin(key, time.Minute)
	otherKey := worker.NewOrigin([]byte("another-key"), time.Minute)
	short := worker.NewOrigin(key, time.Millisecond)
	stale := map[string]string{}
	for _, subject := range []string{"trigger.PRE_CREATE.SERVER", "trigger.POST_CREATE.SERVER"} {
		stale[subject] = short.Stamp("some_function", id, subject, nil)
		natstest.CheckFor(t, waitShort, time.Millisecond, func() error {
			if signer.Verify(subject, nil, stale[subject]) == nil {
				return errors.New("the short-lived stamp has not expired yet")
			}
			return nil
		})
	}
	expired := func(subject string, _ []byte) string { return stale[subject] }

	rejected := func() float64 {
		return value(metrics.OriginRejected.WithLabelValues("POST_CREATE")) + value(metrics.OriginRejected.WithLabelValues("PRE_CREATE"))
	}
	// send sends a PRE request and a POST event (without bodies), each
	// flagged with origin(its subject, nil), and returns the PRE decision.
	send := func(t *testing.T, origin func(subject string, data []byte) string) *event.Decision {
		t.Helper()
		req := nats.NewMsg("trigger.PRE_CREATE.SERVER")
		req.Header.Set(subjects.HeaderOrigin, origin(req.Subject, nil))
		d := decodeDecision(t, request(t, nc, req))
		msg := nats.NewMsg("trigger.POST_CREATE.SERVER")
		msg.Header.Set(subjects.HeaderOrigin, origin(msg.Subject, nil))
		if err := nc.PublishMsg(msg); err != nil {
			t.Fatal(err)
		}
		return d
	}
	stamp := func(subject string, data []byte) string { return signer.Stamp("some_function", id, subject, data) }

	notHonoured := []struct {
		name   string
		origin func(subject string, data []byte) string
	}{
		{"forged without MAC", func(string, []byte) string { return "some_function/" + id }},
		{"signed with another key", func(subject string, data []byte) string {
			return otherKey.Stamp("some_function", id, subject, data)
		}},
		{"tampered", func(subject string, data []byte) string {
			return strings.Replace(stamp(subject, data), id, "01JDQ7Z6W3S6K4V0Q5H3YB3M8D", 1)
		}},
		{"expired", expired},
		{"stamped for another subject", func(string, []byte) string { return stamp("trigger.POST_DELETE.DISK", nil) }},
		{"stamped for another body", func(subject string, _ []byte) string { return stamp(subject, []byte(`{}`)) }},
		{"given outside the bus", func(string, []byte) string { return signer.Identify("some_function", id) }},
		{"legacy format", func(string, []byte) string { return legacyStamp(key, "some_function", id) }},
	}
	for _, tt := range notHonoured {
		t.Run(tt.name, func(t *testing.T) {
			postBefore, preBefore, rejectedBefore := post.Load(), pre.Load(), rejected()
			d := send(t, tt.origin)
			if d.Allowed || d.Code != "NO" {
				t.Errorf("decision = %+v, want the function's refusal (the flag is not honoured)", d)
			}
			waitCount(t, "POST calls", &post, postBefore+1)
			if n := pre.Load() - preBefore; n != 1 {
				t.Errorf("PRE function ran %d times, want 1", n)
			}
			if n := rejected() - rejectedBefore; n != 2 {
				t.Errorf("origin_rejected grew by %v, want 2 (one PRE, one POST)", n)
			}
		})
	}

	t.Run("valid", func(t *testing.T) {
		postBefore, preBefore, rejectedBefore := post.Load(), pre.Load(), rejected()
		dropped := metrics.EventsDropped.WithLabelValues("POST_CREATE", worker.ReasonTriggerOriginated)
		droppedBefore := value(dropped)
		d := send(t, stamp)
		if !d.Allowed || d.Code != event.CodeTriggerOriginated {
			t.Errorf("decision = %+v, want TRIGGER_ORIGINATED", d)
		}
		waitValue(t, "dropped{POST_CREATE,trigger_originated}", dropped, droppedBefore+1)
		if n := pre.Load() + post.Load() - preBefore - postBefore; n != 0 {
			t.Errorf("%d functions ran for honoured events", n)
		}
		if n := rejected() - rejectedBefore; n != 0 {
			t.Errorf("origin_rejected grew by %v for a valid value", n)
		}
	})
}

// legacyStamp is a signed value in the unscoped format of earlier versions,
// <ref>/<id>/<expiry>/<HMAC of "<ref>/<id>/<expiry>">, valid for a minute.
func legacyStamp(key []byte, ref, id string) string {
	signed := ref + "/" + id + "/" + strconv.FormatInt(time.Now().Add(time.Minute).UnixMilli(), 10)
	m := hmac.New(sha256.New, key)
	m.Write([]byte(signed))
	return signed + "/" + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// TestLoopGuardFlagBoundToMessage: with a fleet key, the Trigger-Origin a
// function's message carries (through the Bus, or through the SDK with the
// function's ctx) silences that message only. Read off the bus and copied
// onto a PRE request, another trigger type, or another event of the same
// subject, it silences nothing: the deny still denies and the POST
// functions run. The legitimate echo is still dropped (no loop), and so is
// a byte-identical copy of it.
func TestLoopGuardFlagBoundToMessage(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	metrics := newMetrics(t)
	sdk := newClient(t, s, client.Options{})
	var busCalls, sdkCalls, modifyCalls, preCalls atomic.Int64
	viaBus := func(ctx context.Context, ev *event.Event) (handlers.Result, error) {
		busCalls.Add(1)
		call, _ := handlers.CallFrom(ctx)
		return handlers.Result{}, call.Bus.Publish(ctx, "trigger.POST_CREATE.SERVER", []byte(`{"input":{"echo":"bus"}}`))
	}
	viaSDK := func(ctx context.Context, ev *event.Event) (handlers.Result, error) {
		sdkCalls.Add(1)
		_, err := sdk.Publish(ctx, "POST_DELETE", "DISK", &event.Event{Input: []byte(`{"echo":"sdk"}`)})
		return handlers.Result{}, err
	}
	startWorker(t, natstest.Connect(t, s), worker.Config{Metrics: metrics, LoopKey: []byte("fleet-key-for-tests")},
		fn("echo_bus", "POST_CREATE", []string{"SERVER"}, 0, viaBus),
		fn("echo_sdk", "POST_DELETE", []string{"DISK"}, 0, viaSDK),
		fn("on_modify", "POST_MODIFY", []string{"ANY"}, 0, cont(&modifyCalls)),
		fn("deny_all", "PRE_CREATE", []string{"ANY"}, 0, deny(&preCalls, "NO", "never")),
	)

	// A subscriber that reads the flagged messages, as anyone allowed to
	// read the fleet's traffic could.
	nc := natstest.Connect(t, s)
	var mu sync.Mutex
	echoes := map[string]*nats.Msg{} // the first flagged message of each subject
	sub, err := nc.Subscribe("trigger.>", func(m *nats.Msg) {
		mu.Lock()
		defer mu.Unlock()
		if _, seen := echoes[m.Subject]; !seen && m.Header.Get(subjects.HeaderOrigin) != "" {
			echoes[m.Subject] = m
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	ctx := context.Background()
	if _, err := sdk.Publish(ctx, "POST_CREATE", "SERVER", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := sdk.Publish(ctx, "POST_DELETE", "DISK", nil); err != nil {
		t.Fatal(err)
	}
	droppedCreate := metrics.EventsDropped.WithLabelValues("POST_CREATE", worker.ReasonTriggerOriginated)
	droppedDelete := metrics.EventsDropped.WithLabelValues("POST_DELETE", worker.ReasonTriggerOriginated)
	waitValue(t, "dropped{POST_CREATE,trigger_originated}", droppedCreate, 1)
	waitValue(t, "dropped{POST_DELETE,trigger_originated}", droppedDelete, 1)
	natstest.CheckFor(t, waitShort, poll, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(echoes) != 2 {
			return fmt.Errorf("read flagged messages on %d subjects, want 2", len(echoes))
		}
		return nil
	})
	mu.Lock()
	read := []*nats.Msg{echoes["trigger.POST_CREATE.SERVER"], echoes["trigger.POST_DELETE.DISK"]}
	mu.Unlock()

	for _, echo := range read {
		origin := echo.Header.Get(subjects.HeaderOrigin)
		t.Run(echo.Subject, func(t *testing.T) {
			// Copied onto another subject with the same body when the body
			// allows it: the SDK's event names its trigger type, so another
			// type would refuse it as invalid rather than run it.
			crossData := echo.Data
			if echo.Subject == "trigger.POST_DELETE.DISK" {
				crossData = nil
			}
			req := nats.NewMsg("trigger.PRE_CREATE.SERVER")
			req.Data = crossData
			req.Header.Set(subjects.HeaderOrigin, origin)
			if d := decodeDecision(t, request(t, nc, req)); d.Allowed || d.Code != "NO" {
				t.Errorf("PRE request with the copied flag: decision = %+v, want the function's refusal", d)
			}

			modifies := modifyCalls.Load()
			other := nats.NewMsg("trigger.POST_MODIFY.SERVER")
			other.Data = crossData
			other.Header.Set(subjects.HeaderOrigin, origin)
			if err := nc.PublishMsg(other); err != nil {
				t.Fatal(err)
			}
			waitCount(t, "on_modify calls (flag copied onto another trigger type)", &modifyCalls, modifies+1)

			counter, dropped := &busCalls, droppedCreate
			if echo.Subject == "trigger.POST_DELETE.DISK" {
				counter, dropped = &sdkCalls, droppedDelete
			}
			calls, droppedBefore := counter.Load(), value(dropped)
			same := nats.NewMsg(echo.Subject)
			same.Data = []byte(`{"input":{"another":"event"}}`)
			same.Header.Set(subjects.HeaderOrigin, origin)
			if err := nc.PublishMsg(same); err != nil {
				t.Fatal(err)
			}
			// The function runs for the other event, and its own echo is dropped.
			waitCount(t, "calls (flag copied onto another event of the subject)", counter, calls+1)
			waitValue(t, "dropped (the new echo)", dropped, droppedBefore+1)

			copied := nats.NewMsg(echo.Subject)
			copied.Data = echo.Data
			copied.Header.Set(subjects.HeaderOrigin, origin)
			if err := nc.PublishMsg(copied); err != nil {
				t.Fatal(err)
			}
			waitValue(t, "dropped (a byte-identical copy of the echo)", dropped, droppedBefore+2)
			if n := counter.Load(); n != calls+1 {
				t.Errorf("the function ran %d times for a byte-identical copy of its echo", n-calls-1)
			}
		})
	}
	if n := preCalls.Load(); n != 2 {
		t.Errorf("deny_all ran %d times, want 2 (once per copied flag)", n)
	}
}
