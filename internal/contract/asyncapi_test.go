package contract_test

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"

	"github.com/triggerbus/triggerbus/internal/contract"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/subjects"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// asyncAPIDoc parses the generated AsyncAPI document as a client would.
func asyncAPIDoc(t *testing.T, prefix string) map[string]any {
	t.Helper()
	files, err := contract.Files(prefix)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(files["asyncapi.yaml"], &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// resolve follows a local reference (#/a/b) in doc.
func resolve(doc map[string]any, ref string) (any, error) {
	path, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, fmt.Errorf("reference %q is not local", ref)
	}
	var cur any = doc
	for tok := range strings.SplitSeq(path, "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("reference %q: %q is not in an object", ref, tok)
		}
		if cur, ok = m[tok]; !ok {
			return nil, fmt.Errorf("reference %q: no %q", ref, tok)
		}
	}
	return cur, nil
}

func refOf(v any) string {
	m, _ := v.(map[string]any)
	s, _ := m["$ref"].(string)
	return s
}

// TestAsyncAPIInvariants checks the document against the invariants of
// AsyncAPI 3.0 a client relies on. (The AsyncAPI 3.0 JSON Schema is not
// available offline at test time, so these are checked directly.)
func TestAsyncAPIInvariants(t *testing.T) {
	doc := asyncAPIDoc(t, "")
	if doc["asyncapi"] != "3.0.0" {
		t.Fatalf("asyncapi = %v, want 3.0.0", doc["asyncapi"])
	}
	info := doc["info"].(map[string]any)
	if info["title"] == "" || info["version"] != contract.Version {
		t.Errorf("info = %v", info)
	}
	// Every $ref anywhere resolves.
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if r, ok := v["$ref"].(string); ok {
				if _, err := resolve(doc, r); err != nil {
					t.Error(err)
				}
			}
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(doc)

	channels := doc["channels"].(map[string]any)
	param := regexp.MustCompile(`\{([^}]*)\}`)
	for id, c := range channels {
		ch := c.(map[string]any)
		msgs, _ := ch["messages"].(map[string]any)
		if len(msgs) == 0 {
			t.Errorf("channel %s has no message", id)
		}
		for name, m := range msgs {
			target, err := resolve(doc, refOf(m))
			if err != nil {
				t.Errorf("channel %s message %s: %v", id, name, err)
				continue
			}
			if tm, _ := target.(map[string]any); tm["payload"] == nil {
				t.Errorf("channel %s message %s has no payload", id, name)
			}
		}
		addr, _ := ch["address"].(string)
		params, _ := ch["parameters"].(map[string]any)
		var inAddr []string
		for _, m := range param.FindAllStringSubmatch(addr, -1) {
			inAddr = append(inAddr, m[1])
			if _, ok := params[m[1]]; !ok {
				t.Errorf("channel %s: address parameter {%s} is not described", id, m[1])
			}
		}
		for p := range params {
			if !slices.Contains(inAddr, p) {
				t.Errorf("channel %s: parameter %s is not in its address %q", id, p, addr)
			}
		}
	}
	// Every trigger type has its channel, on its subject.
	scheme, _ := subjects.NewScheme(subjects.DefaultPrefix)
	for _, typ := range subjects.Types() {
		ch, ok := channels[typ.Name].(map[string]any)
		if !ok {
			t.Errorf("no channel for %s", typ.Name)
			continue
		}
		opts := ch["parameters"].(map[string]any)["option"].(map[string]any)
		option := subjects.Any
		if enum, ok := opts["enum"].([]any); ok {
			option = enum[0].(string)
		} else if ex, ok := opts["examples"].([]any); ok {
			option = ex[0].(string)
		} else {
			option = "someOption"
		}
		subject, err := scheme.Build(typ.Name, option)
		if err != nil {
			t.Errorf("%s: %v", typ.Name, err)
			continue
		}
		if got := strings.Replace(ch["address"].(string), "{option}", option, 1); got != subject {
			t.Errorf("%s: address gives %q, the code %q", typ.Name, got, subject)
		}
	}
	if n := len(subjects.Types()); n != 27 {
		t.Errorf("the catalogue has %d types", n)
	}

	// Every operation references an existing channel, and messages of it;
	// every PRE type's operation has the decision reply, no other has one.
	ops := doc["operations"].(map[string]any)
	served := map[string]bool{}
	for id, o := range ops {
		op := o.(map[string]any)
		if a := op["action"]; a != "send" && a != "receive" {
			t.Errorf("operation %s: action %v", id, a)
		}
		chRef := refOf(op["channel"])
		if _, err := resolve(doc, chRef); err != nil || !strings.HasPrefix(chRef, "#/channels/") {
			t.Errorf("operation %s: channel %q: %v", id, chRef, err)
			continue
		}
		chID := strings.TrimPrefix(chRef, "#/channels/")
		served[chID] = true
		msgs, _ := op["messages"].([]any)
		if len(msgs) == 0 {
			t.Errorf("operation %s has no message", id)
		}
		for _, m := range msgs {
			if r := refOf(m); !strings.HasPrefix(r, chRef+"/messages/") {
				t.Errorf("operation %s: message %q is not one of its channel's", id, r)
			}
		}
		typ, _ := subjects.Lookup(chID)
		reply, hasReply := op["reply"].(map[string]any)
		if (typ != nil && typ.IsPre()) != hasReply {
			t.Errorf("operation %s on %s: reply %v", id, chID, hasReply)
		}
		if hasReply {
			rc := refOf(reply["channel"])
			for _, m := range reply["messages"].([]any) {
				if r := refOf(m); !strings.HasPrefix(r, rc+"/messages/") {
					t.Errorf("operation %s: reply message %q is not one of its reply channel's", id, r)
				}
			}
		}
	}
	for id := range channels {
		if id != "decisionReply" && !served[id] {
			t.Errorf("channel %s has no operation", id)
		}
	}

	// The registry channel names both keys a client must read.
	reg := channels["registry"].(map[string]any)
	desc := reg["description"].(string)
	for _, key := range []string{subjects.RegistryKey("<TYPE>", "<OPTION>"), subjects.RegistryKey("<TYPE>", subjects.Any)} {
		if !strings.Contains(desc, "BOTH keys") || !strings.Contains(desc, key) {
			t.Errorf("the registry channel does not say to read %s: %s", key, desc)
		}
	}
	if !strings.Contains(reg["address"].(string), scheme.RegistryBucket()) {
		t.Errorf("registry address %v does not name the bucket %s", reg["address"], scheme.RegistryBucket())
	}
}

// TestAsyncAPIPrefix: the document follows the prefix it is made for.
func TestAsyncAPIPrefix(t *testing.T) {
	doc := asyncAPIDoc(t, "fco.eu1.trigger")
	ch := doc["channels"].(map[string]any)["PRE_CREATE"].(map[string]any)
	if got := ch["address"]; got != "fco.eu1.trigger.PRE_CREATE.{option}" {
		t.Errorf("address = %v", got)
	}
	reg := doc["channels"].(map[string]any)["registry"].(map[string]any)
	if got := reg["address"]; got != "$KV.FCO_EU1_TRIGGER_REGISTRY.{type}.{option}" {
		t.Errorf("registry address = %v", got)
	}
	// The decision log's address is where the worker publishes.
	scheme, err := subjects.NewScheme("fco.eu1.trigger")
	if err != nil {
		t.Fatal(err)
	}
	dlq := doc["channels"].(map[string]any)["deadLetters"].(map[string]any)["address"].(string)
	if got, want := strings.NewReplacer("{type}", "POST_CREATE", "{option}", "SERVER").Replace(dlq), scheme.DeadLetterSubject("POST_CREATE", "SERVER"); got != want {
		t.Errorf("dead-letter address gives %q, the code %q", got, want)
	}
	dlog := doc["channels"].(map[string]any)["decisionLog"].(map[string]any)["address"].(string)
	if got, want := strings.NewReplacer("{type}", "PRE_CREATE", "{option}", "SERVER").Replace(dlog), scheme.DecisionSubject("PRE_CREATE", "SERVER"); got != want {
		t.Errorf("decision log address gives %q, the code %q", got, want)
	}
	if _, err := contract.Files("bad..prefix"); err == nil {
		t.Error("a bad prefix gives a document")
	}
}

// TestAsyncAPIMessageSchemas: the document's schemas compile (AsyncAPI's
// schema format is a superset of draft-07), a message's payload accepts
// the events the code encodes for its channel and refuses another type's,
// and its headers schema accepts the headers the SDK sets.
func TestAsyncAPIMessageSchemas(t *testing.T) {
	files, err := contract.Files("")
	if err != nil {
		t.Fatal(err)
	}
	var y any
	if err := yaml.Unmarshal(files["asyncapi.yaml"], &y); err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft7)
	if err := c.AddResource("asyncapi.json", y); err != nil {
		t.Fatal(err)
	}
	payload, err := c.Compile("asyncapi.json#/components/messages/PRE_CREATE/payload")
	if err != nil {
		t.Fatal(err)
	}
	headers, err := c.Compile("asyncapi.json#/components/schemas/PreHeaders")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"Decision", "RegistryEntry", "DecisionRecord"} {
		if _, err := c.Compile("asyncapi.json#/components/schemas/" + name); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	// The dead-letter headers the worker sets validate.
	dlh, err := c.Compile("asyncapi.json#/components/schemas/DeadLetterHeaders")
	if err != nil {
		t.Fatal(err)
	}
	if err := validate(dlh, []byte(`{"Trigger-Failed-Function":"notify","Trigger-Error":"boom","Trigger-Attempts":"5","Trigger-Subject":"trigger.POST_CREATE.SERVER","Trigger-Failed-At":"1764921600000","Trigger-Msg-Id":"01JDQ7Z6W3S6K4V0Q5H3YB3M8C","Trigger-Event-Seq":"42","Nats-Msg-Id":"dlq.42","traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}`)); err != nil {
		t.Errorf("dead-letter headers: %v", err)
	}
	if err := validate(dlh, []byte(`{"Trigger-Attempts":"five"}`)); err == nil {
		t.Error("a Trigger-Attempts that is not a number validates")
	}
	// A record as the worker writes it validates; one without what every
	// record has does not.
	record, err := c.Compile("asyncapi.json#/components/messages/decisionRecords/payload")
	if err != nil {
		t.Fatal(err)
	}
	dl := time.UnixMilli(1764921600000)
	line, err := json.Marshal(worker.DecisionRecord{
		ID: event.NewID(), Subject: "trigger.PRE_CREATE.SERVER", At: time.Now(), Code: "QUOTA", Message: "over quota",
		Function: "quota", Functions: []event.FunctionResult{{Ref: "quota", Result: event.OutcomeFailed, Ms: 0.4}},
		Revision: 3, Worker: "w1", Ms: 0.6, Deadline: &dl, InputSHA256: strings.Repeat("ab", 32), Input: json.RawMessage(`{"cpu":4}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := validate(record, line); err != nil {
		t.Errorf("decision record %s: %v", line, err)
	}
	if err := validate(record, []byte(`{"id":"x","allowed":true}`)); err == nil {
		t.Error("a decision record without subject, at, functions, worker and ms validates")
	}
	data, err := (&event.Event{ID: event.NewID(), TriggerType: "PRE_CREATE", TriggerOption: "SERVER"}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	if err := validate(payload, data); err != nil {
		t.Errorf("PRE_CREATE event: %v", err)
	}
	if err := validate(payload, []byte(`{"triggerType":"PRE_DELETE"}`)); err == nil {
		t.Error("the PRE_CREATE message accepts a PRE_DELETE event")
	}
	if err := validate(headers, []byte(`{"Nats-Msg-Id":"x","Trigger-Deadline":"1764921600000"}`)); err != nil {
		t.Errorf("PRE headers: %v", err)
	}
	if err := validate(headers, []byte(`{"Trigger-Deadline":"soon"}`)); err == nil {
		t.Error("a Trigger-Deadline that is not Unix milliseconds validates")
	}
	if err := validate(headers, []byte(`{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01","tracestate":"vendor=opaque"}`)); err != nil {
		t.Errorf("PRE headers with trace context: %v", err)
	}
	if err := validate(headers, []byte(`{"traceparent":"4bf92f3577b34da6a3ce929d0e0e4736"}`)); err == nil {
		t.Error("a traceparent that is not W3C trace context validates")
	}
}
