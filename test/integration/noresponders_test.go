package integration

import (
	"context"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/internal/proctest"
	"github.com/triggerbus/triggerbus/pkg/client"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// TestNoRespondersWithRegistry: when every worker has stopped, the SDK
// tells a subject with registered functions (refused, NO_WORKER, unless
// the caller's policy allows) from one without (allowed, NO_TRIGGER).
func TestNoRespondersWithRegistry(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t, natstest.WithJetStream())
	var calls atomic.Int64
	w := proctest.NewWorker(t, natstest.Connect(t, s), worker.Config{Registry: true},
		fn("deny_servers", "PRE_CREATE", []string{"SERVER"}, 0, deny(&calls, "NO", "no servers")),
		fn("check_modify", "PRE_MODIFY", []string{"ANY"}, 0, cont(&calls)))
	ctx := context.Background()
	if err := w.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	refuse := newClient(t, s, client.Options{})
	allow := newClient(t, s, client.Options{NoWorker: client.Allow})

	// While the worker runs, it decides.
	if d := decide(t, ctx, refuse, "PRE_CREATE", "SERVER", nil); d.Allowed || d.Code != "NO" {
		t.Fatalf("with a worker: %+v, want the function's refusal", d)
	}
	if err := w.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}

	tests := []struct {
		name        string
		c           *client.Client
		typ, option string
		wantAllowed bool
		wantCode    string
	}{
		{name: "registered, refused by default", c: refuse, typ: "PRE_CREATE", option: "SERVER", wantCode: event.CodeNoWorker},
		{name: "registered, allowed by policy", c: allow, typ: "PRE_CREATE", option: "SERVER", wantAllowed: true, wantCode: event.CodeNoWorker},
		{name: "ANY covers every option", c: refuse, typ: "PRE_MODIFY", option: "DISK", wantCode: event.CodeNoWorker},
		{name: "ANY covers every option, allowed by policy", c: allow, typ: "PRE_MODIFY", option: "VDC", wantAllowed: true, wantCode: event.CodeNoWorker},
		{name: "other option of a registered type", c: refuse, typ: "PRE_CREATE", option: "DISK", wantAllowed: true, wantCode: event.CodeNoTrigger},
		{name: "nothing registered", c: refuse, typ: "PRE_DELETE", option: "DISK", wantAllowed: true, wantCode: event.CodeNoTrigger},
		{name: "option-less type, nothing registered", c: refuse, typ: "PRE_AUTH", option: "ANY", wantAllowed: true, wantCode: event.CodeNoTrigger},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := decide(t, ctx, tt.c, tt.typ, tt.option, nil)
			if d.Allowed != tt.wantAllowed || d.Code != tt.wantCode {
				t.Errorf("Decide(%s, %s) = allowed %v code %q (%s), want %v %q",
					tt.typ, tt.option, d.Allowed, d.Code, d.Message, tt.wantAllowed, tt.wantCode)
			}
			if d.ID == "" {
				t.Errorf("decision has no id: %+v", d)
			}
		})
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("functions ran %d times, want 1 (before the stop)", n)
	}
}

// TestNoRespondersWithoutJetStream: without JetStream the SDK cannot tell
// "no trigger" from "no worker", so its policy decides.
func TestNoRespondersWithoutJetStream(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	ctx := context.Background()
	tests := []struct {
		name        string
		opts        client.Options
		wantAllowed bool
	}{
		{name: "refused by default", opts: client.Options{}},
		{name: "allowed by policy", opts: client.Options{NoWorker: client.Allow}, wantAllowed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, s, tt.opts)
			d := decide(t, ctx, c, "PRE_DELETE", "DISK", nil)
			if d.Allowed != tt.wantAllowed || d.Code != event.CodeNoWorker {
				t.Errorf("Decide = allowed %v code %q (%s), want %v %q", d.Allowed, d.Code, d.Message, tt.wantAllowed, event.CodeNoWorker)
			}
		})
	}
}

// TestDecideRefusesWhatNoPolicyCovers: a request NATS cannot carry and a
// reply that is not a decision are refused even by a client whose policies
// allow: neither is "no worker" nor "timeout".
func TestDecideRefusesWhatNoPolicyCovers(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t, natstest.WithOptions(func(o *server.Options) { o.MaxPayload = 16 * 1024 }))
	allow := newClient(t, s, client.Options{NoWorker: client.Allow, OnTimeout: client.Allow})
	ctx := context.Background()

	big := &event.Event{Input: json.RawMessage(`"` + strings.Repeat("x", 32*1024) + `"`)}
	d, err := allow.Decide(ctx, "PRE_CREATE", "SERVER", big)
	if err != nil {
		t.Fatalf("Decide: %v", err)
	}
	if d.Allowed || d.Code != event.CodeBadRequest || !strings.Contains(d.Message, "max payload") {
		t.Errorf("request over the max payload: %+v, want refused BAD_REQUEST naming the max payload", d)
	}

	// Something that is not a worker answers with what is not a decision.
	nc := natstest.Connect(t, s)
	sub, err := nc.QueueSubscribe("trigger.PRE_CREATE.DISK", "trigger-workers", func(m *nats.Msg) {
		m.Respond([]byte("not a decision"))
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	d, err = allow.Decide(ctx, "PRE_CREATE", "DISK", nil)
	if err != nil {
		t.Fatalf("Decide: %v", err)
	}
	if d.Allowed || d.Code != event.CodeBadReply {
		t.Errorf("unreadable reply: %+v, want refused BAD_REPLY", d)
	}
}
