package contract_test

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/triggerbus/triggerbus/internal/natstest"
	"github.com/triggerbus/triggerbus/pkg/client"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/subjects"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// TestEventSchema: events the event encoder writes validate against the
// event schema, and events the contract forbids do not.
func TestEventSchema(t *testing.T) {
	s := compile(t, "event")
	valid := []*event.Event{
		{},
		{ID: event.NewID(), TriggerType: "POST_CREATE", TriggerOption: "SERVER", TimeStamp: time.Now().UnixMilli()},
		{ID: event.NewID(), TriggerType: "PRE_USER_API_CALL", TriggerOption: "listResources", BEUUID: "be-1",
			Customer: json.RawMessage(`{"resourceUUID":"c-1"}`), User: json.RawMessage(`{"email":"a@b.c"}`),
			Input: json.RawMessage(`{"cpu":4,"tags":["a"]}`), Extra: map[string]json.RawMessage{"ext": json.RawMessage(`[1,2]`)}},
		{TriggerType: "PRE_AUTH", TriggerOption: subjects.Any, Input: json.RawMessage(`"a string input"`)},
		{TriggerType: "POST_EXCEPTION", TriggerOption: "Überlauf-Ω"},
	}
	for i, ev := range valid {
		data, err := ev.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if err := validate(s, data); err != nil {
			t.Errorf("encoded event %d %s does not validate: %v", i, data, err)
		}
		// What the worker decodes from the encoding is the same event.
		if _, err := event.Decode(data, subjects.Subject{}, event.Limits{}); err != nil {
			t.Errorf("event %d: %v", i, err)
		}
	}
	invalid := map[string]string{
		"not an object":         `[1,2]`,
		"unknown type":          `{"triggerType":"PRE_CREAT"}`,
		"option with a dot":     `{"triggerType":"PRE_CREATE","triggerOption":"SER.VER"}`,
		"option with a space":   `{"triggerOption":"SER VER"}`,
		"option with a nbsp":    `{"triggerOption":"SER\u00a0VER"}`,
		"option too long":       `{"triggerOption":"` + strings.Repeat("A", subjects.MaxTokenLen+1) + `"}`,
		"empty option":          `{"triggerOption":""}`,
		"timestamp as a string": `{"timeStamp":"yesterday"}`,
		"fractional timestamp":  `{"timeStamp":1.5}`,
		"numeric id":            `{"id":42}`,
		"beUUID as an object":   `{"beUUID":{}}`,
	}
	for name, data := range invalid {
		if err := validate(s, []byte(data)); err == nil {
			t.Errorf("%s: %s validates", name, data)
		}
	}
	// Every type of the catalogue is a valid triggerType.
	for _, typ := range subjects.Types() {
		data, err := (&event.Event{TriggerType: typ.Name, TriggerOption: subjects.Any}).Encode()
		if err != nil {
			t.Fatal(err)
		}
		if err := validate(s, data); err != nil {
			t.Errorf("%s: %v", typ.Name, err)
		}
	}
}

// TestDecisionSchema: decisions the decision encoder writes validate, and
// malformed ones do not.
func TestDecisionSchema(t *testing.T) {
	s := compile(t, "decision")
	valid := []*event.Decision{
		{ID: event.NewID(), Allowed: true},
		{ID: event.NewID(), Code: "QUOTA_EXCEEDED", Message: "servers are limited to 16 CPUs", Function: "deny_big",
			Functions: []event.FunctionResult{{Ref: "deny_big", Result: event.OutcomeFailed, Ms: 0.21}}, Revision: 7},
		{ID: "x", Allowed: true, Modified: true, Input: json.RawMessage(`{"cpu":4}`),
			Functions: []event.FunctionResult{{Ref: "a", Result: event.OutcomeSuccess, Shadow: true}, {Ref: "b", Result: event.OutcomeError, Error: "boom"}}},
		{Code: event.CodeBadRequest, Message: "not JSON"},
	}
	for i, d := range valid {
		data, err := d.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if err := validate(s, data); err != nil {
			t.Errorf("encoded decision %d %s does not validate: %v", i, data, err)
		}
	}
	invalid := map[string]string{
		"no functions":        `{"id":"a","allowed":true,"modified":false}`,
		"no allowed":          `{"id":"a","modified":false,"functions":[]}`,
		"allowed as a string": `{"id":"a","allowed":"yes","modified":false,"functions":[]}`,
		"unknown outcome":     `{"id":"a","allowed":true,"modified":false,"functions":[{"ref":"f","result":"MAYBE","ms":1}]}`,
		"result without ref":  `{"id":"a","allowed":true,"modified":false,"functions":[{"result":"SUCCESS","ms":1}]}`,
		"negative time":       `{"id":"a","allowed":true,"modified":false,"functions":[{"ref":"f","result":"SUCCESS","ms":-1}]}`,
		"revision zero":       `{"id":"a","allowed":true,"modified":false,"functions":[],"revision":0}`,
		"numeric code":        `{"id":"a","allowed":false,"code":7,"modified":false,"functions":[]}`,
	}
	for name, data := range invalid {
		if err := validate(s, []byte(data)); err == nil {
			t.Errorf("%s: %s validates", name, data)
		}
	}
}

// TestWorkerAndSDKDecisionsValidate: the decisions a real worker sends
// (allowed, denied, modified, TRIGGER_ORIGINATED, a function's TIMEOUT and
// HANDLER_ERROR, and its refusals BAD_REQUEST, EXPIRED and
// DECISION_TOO_LARGE), and those the SDK makes itself (NO_TRIGGER,
// NO_WORKER), validate against the decision schema as they are on the
// wire; the events the SDK publishes validate against the event schema.
func TestWorkerAndSDKDecisionsValidate(t *testing.T) {
	decisionSchema, eventSchema := compile(t, "decision"), compile(t, "event")
	const maxPayload = 64 << 10
	s := natstest.RunServer(t, natstest.WithJetStream(), natstest.WithOptions(func(o *server.Options) { o.MaxPayload = maxPayload }))
	nc := natstest.Connect(t, s)

	grow := func(_ context.Context, ev *event.Event) (handlers.Result, error) {
		var in map[string]any
		if err := json.Unmarshal(ev.Input, &in); err != nil {
			return handlers.Result{}, err
		}
		in["copy"] = strings.Repeat("x", len(ev.Input))
		b, err := json.Marshal(in)
		return handlers.Result{ExitState: handlers.Success, Input: b}, err
	}
	deny := func(context.Context, *event.Event) (handlers.Result, error) {
		return handlers.Result{ExitState: handlers.Failed, ErrorCode: "QUOTA_EXCEEDED", ErrorMessage: "no more disks"}, nil
	}
	slow := func(ctx context.Context, _ *event.Event) (handlers.Result, error) {
		<-ctx.Done() // until its timeout
		return handlers.Result{}, ctx.Err()
	}
	broken := func(context.Context, *event.Event) (handlers.Result, error) {
		return handlers.Result{}, errors.New("the quota service is down")
	}
	posted := make(chan []byte, 4)
	sub, err := nc.Subscribe("trigger.POST_CREATE.SERVER", func(m *nats.Msg) { posted <- m.Data })
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	w, err := worker.New(natstest.Connect(t, s), worker.Config{Registry: true},
		worker.Function{Ref: "grow", TriggerType: "PRE_CREATE", Options: []string{"SERVER"}, Handler: handlers.Func(grow)},
		worker.Function{Ref: "deny_disks", TriggerType: "PRE_CREATE", Options: []string{"DISK"}, Handler: handlers.Func(deny)},
		worker.Function{Ref: "slow", TriggerType: "PRE_CREATE", Options: []string{"CLUSTER"}, Timeout: 50 * time.Millisecond, Handler: handlers.Func(slow)},
		worker.Function{Ref: "broken", TriggerType: "PRE_CREATE", Options: []string{"BLOB"}, Handler: handlers.Func(broken)})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Stop(context.Background()) }) // idempotent

	request := func(subject string, data []byte, deadline, origin string) *event.Decision {
		t.Helper()
		m := nats.NewMsg(subject)
		m.Data = data
		if deadline != "" {
			m.Header.Set(subjects.HeaderDeadline, deadline)
		}
		if origin != "" {
			m.Header.Set(subjects.HeaderOrigin, origin)
		}
		reply, err := nc.RequestMsg(m, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if err := validate(decisionSchema, reply.Data); err != nil {
			t.Errorf("the worker's decision %s does not validate: %v", reply.Data, err)
		}
		d, err := event.DecodeDecision(reply.Data)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	future := strconv.FormatInt(time.Now().Add(time.Minute).UnixMilli(), 10)
	cases := []struct {
		name, subject, data, deadline, origin string
		allowed                               bool
		code                                  string
	}{
		{"allowed and modified", "trigger.PRE_CREATE.SERVER", `{"input":{"cpu":4}}`, future, "", true, ""},
		{"denied", "trigger.PRE_CREATE.DISK", `{"input":{"size":4}}`, future, "", false, "QUOTA_EXCEEDED"},
		{"not JSON", "trigger.PRE_CREATE.DISK", `{"input":`, future, "", false, event.CodeBadRequest},
		{"bad deadline", "trigger.PRE_CREATE.DISK", `{}`, "soon", "", false, event.CodeBadRequest},
		{"expired", "trigger.PRE_CREATE.DISK", `{}`, "1", "", false, event.CodeExpired},
		{"function timed out", "trigger.PRE_CREATE.CLUSTER", `{}`, future, "", false, event.CodeTimeout},
		{"function errored", "trigger.PRE_CREATE.BLOB", `{}`, future, "", false, event.CodeHandlerError},
		{"caused by a function", "trigger.PRE_CREATE.SERVER", `{}`, future, "some_function/01JDQ7Z6W3S6K4V0Q5H3YB3M8C", true, event.CodeTriggerOriginated},
		{"too large", "trigger.PRE_CREATE.SERVER", `{"input":{"blob":"` + strings.Repeat("a", 40<<10) + `"}}`, future, "", false, event.CodeDecisionTooLarge},
	}
	for _, c := range cases {
		d := request(c.subject, []byte(c.data), c.deadline, c.origin)
		if d.Allowed != c.allowed || d.Code != c.code {
			t.Errorf("%s: allowed %v code %q (%s), want %v %q", c.name, d.Allowed, d.Code, d.Message, c.allowed, c.code)
		}
	}

	cl, err := client.New(natstest.Connect(t, s), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sdk := func(option, code string) {
		t.Helper()
		d, err := cl.Decide(context.Background(), "PRE_CREATE", option, &event.Event{Input: json.RawMessage(`{"a":1}`)})
		if err != nil {
			t.Fatal(err)
		}
		if d.Code != code {
			t.Errorf("PRE_CREATE.%s: code %q (%s), want %q", option, d.Code, d.Message, code)
		}
		data, err := d.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if err := validate(decisionSchema, data); err != nil {
			t.Errorf("the SDK's decision %s does not validate: %v", data, err)
		}
	}
	sdk("NIC", event.CodeNoTrigger)
	sdk("DISK", "QUOTA_EXCEEDED")

	if _, err := cl.Publish(context.Background(), "POST_CREATE", "SERVER", &event.Event{BEUUID: "be", Input: json.RawMessage(`{"name":"web-1"}`)}); err != nil {
		t.Fatal(err)
	}
	if data := natstest.ChanRecv(t, posted, 10*time.Second); validate(eventSchema, data) != nil {
		t.Errorf("the SDK's event %s does not validate: %v", data, validate(eventSchema, data))
	}

	if err := w.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	d, err := cl.Decide(context.Background(), "PRE_CREATE", "DISK", nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.Allowed || d.Code != event.CodeNoWorker {
		t.Fatalf("fleet down: %+v, want a NO_WORKER refusal", d)
	}
	data, err := d.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if err := validate(decisionSchema, data); err != nil {
		t.Errorf("the SDK's NO_WORKER decision %s does not validate: %v", data, err)
	}
}
