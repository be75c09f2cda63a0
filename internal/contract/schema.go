package contract

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/subjects"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// Codes are the decision codes triggerbus sets itself (a function that
// refuses chooses its own code), with when each is given.
var Codes = []struct{ Code, When string }{
	{event.CodeTimeout, "a function timed out (failure_policy fail), or no decision came before the deadline (SDK, its OnTimeout policy)"},
	{event.CodeHandlerError, "a function errored (failure_policy fail), or the decision could not be encoded"},
	{event.CodeBadRequest, "the request is not a valid event for its subject, its deadline (the event's deadline or Trigger-Deadline) is not Unix milliseconds, or (SDK) it is larger than the NATS max payload; always refused"},
	{event.CodeTriggerOriginated, "the request carries a Trigger-Origin the worker honours; allowed"},
	{event.CodeNoWorker, "(client) functions are registered for the subject but no worker answered; the caller's policy, refused by default"},
	{event.CodeNoTrigger, "(client) no worker answered and no function is registered for the subject; allowed"},
	{event.CodeExpired, "the request's deadline (the event's deadline or Trigger-Deadline) had passed when it reached the worker; refused"},
	{event.CodeShuttingDown, "the worker is stopping and did not run the request; ask again (the SDK retries)"},
	{event.CodeFailed, "a function returned FAILED without a code of its own"},
	{event.CodeDecisionTooLarge, "the decision as built was larger than the NATS max payload; refused"},
	{event.CodeBadReply, "(client) something answered the request with what is not a decision; refused"},
}

// Outcomes are the results of one function in a decision.
var Outcomes = []string{event.OutcomeSuccess, event.OutcomeContinue, event.OutcomeFailed, event.OutcomeError, event.OutcomeTimeout}

// descriptions of the fields of the contract's Go types, by type and JSON
// name. A field without one is an error of the generator.
var descriptions = map[reflect.Type]map[string]string{
	reflect.TypeFor[event.Event](): {
		"id":            "The event id; the SDK sets a time-ordered id (Crockford base32, 26 characters) and sends it as Nats-Msg-Id too on durable publishes and on events whose id the caller chose (not on PRE requests). A worker gives an event without one a new id.",
		"triggerType":   "The trigger type; when present it must be the subject's.",
		"triggerOption": "The trigger option; when present it must be the subject's.",
		"timeStamp":     "When the action happened, Unix milliseconds; a worker stamps an event without one with the time it took it up.",
		"deadline":      "PRE only: the caller's deadline, Unix milliseconds, as the SDK sends it (other publishers may send the Trigger-Deadline header instead). When both are given the worker keeps the earlier; events of other types ignore it.",
		"beUUID":        "The billing entity of the action.",
		"customer":      "The customer the action is for (FDL's p.customer).",
		"user":          "The user who acts (FDL's p.user).",
		"input":         "The resource or request the action is about (FDL's p.input); a PRE function may return a modified copy.",
	},
	reflect.TypeFor[event.Decision](): {
		"id":        "The event id of the request.",
		"allowed":   "Whether the action may go on.",
		"code":      "Why it may not (or a note on how it was decided): a refusing function's own code or one of triggerbus's.",
		"message":   "A text for people on the code.",
		"function":  "The ref of the function that refused.",
		"input":     "The input as the functions modified it; present when modified is true.",
		"modified":  "Whether a function returned a modified input.",
		"functions": "What each function that ran returned, in order.",
		"revision":  "The revision of the fleet's function bundle whose functions decided; absent when the worker serves the functions of its own files or ran none.",
	},
	reflect.TypeFor[event.FunctionResult](): {
		"ref":    "The function's ref.",
		"result": "Its outcome.",
		"ms":     "Its run time, milliseconds.",
		"shadow": "True for a function in shadow mode: result is what it would have decided, and did not change the decision.",
		"error":  "The error text of an ERROR or TIMEOUT outcome.",
	},
	reflect.TypeFor[worker.RegistryEntry](): {
		"functions": "The refs of every instance's functions for the key, sorted.",
		"updatedMs": "When the value was last written, Unix milliseconds.",
		"instances": "The registrations by worker instance name; absent in values written by workers before instances were kept.",
	},
	reflect.TypeFor[worker.DecisionRecord](): {
		"id":           "The event id of the request (its Nats-Msg-Id when the decision has none).",
		"subject":      "The subject the request came on, <prefix>.<TYPE>.<OPTION>.",
		"at":           "When the decision was answered, RFC 3339.",
		"allowed":      "Whether the action was allowed.",
		"code":         "The decision's code: a refusing function's own or one of triggerbus's (see the Decision schema).",
		"message":      "The decision's text for people.",
		"function":     "The ref of the function that refused.",
		"functions":    "What each function that ran returned, in order.",
		"revision":     "The revision of the fleet's function bundle whose functions decided; absent when the worker serves the functions of its own files or ran none.",
		"worker":       "The instance name of the worker that decided (registry.instance).",
		"ms":           "How long the worker took, from taking the request up to the answer, milliseconds.",
		"deadline":     "The caller's deadline (the earlier of the event's deadline and Trigger-Deadline), RFC 3339; absent when it gave none.",
		"input_sha256": "The SHA-256 of the request's event, hex (decision_log.input hash or full).",
		"input":        "The request's event (decision_log.input full), when it is JSON.",
	},
	reflect.TypeFor[worker.RegistryInstance](): {
		"functions": "The instance's functions for the key.",
		"seenMs":    "When the instance last wrote its registrations, Unix milliseconds; a running worker rewrites them every registry.refresh.",
		"host":      "The host the instance runs on.",
	},
}

// refiners add what a field's Go type cannot say: the sets its value comes
// from and its bounds.
var refiners = map[reflect.Type]map[string]func(s map[string]any){
	reflect.TypeFor[event.Event](): {
		"triggerType": func(s map[string]any) {
			var names []string
			for _, t := range subjects.Types() {
				names = append(names, t.Name)
			}
			s["enum"] = names
		},
		"triggerOption": func(s map[string]any) {
			s["minLength"] = 1
			s["maxLength"] = subjects.MaxTokenLen
			s["pattern"] = tokenPattern
		},
	},
	reflect.TypeFor[event.Decision](): {
		"code": func(s map[string]any) {
			var ex []string
			for _, c := range Codes {
				ex = append(ex, c.Code)
			}
			s["examples"] = ex
			var b strings.Builder
			b.WriteString(s["description"].(string))
			for _, c := range Codes {
				fmt.Fprintf(&b, " %s: %s.", c.Code, c.When)
			}
			s["description"] = b.String()
		},
		"revision": func(s map[string]any) { s["minimum"] = 1 },
	},
	reflect.TypeFor[worker.DecisionRecord](): {
		"revision":     func(s map[string]any) { s["minimum"] = 1 },
		"ms":           func(s map[string]any) { s["minimum"] = 0 },
		"input_sha256": func(s map[string]any) { s["pattern"] = "^[0-9a-f]{64}$" },
	},
	reflect.TypeFor[event.FunctionResult](): {
		"result": func(s map[string]any) { s["enum"] = Outcomes },
		"ms":     func(s map[string]any) { s["minimum"] = 0 },
	},
}

// tokenPattern matches a subject token of the ASCII alphabet and beyond
// (subjects.ValidateToken): no '.', '*', '>', white space or control
// character. The other white space is written as itself, which both ECMA
// 262 and Go regular expressions read. The bound on its length is in bytes
// in the code and in characters here.
const tokenPattern = "^[^.*>\\s\\x00-\\x1f\\x7f-\\x9f\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]+$"

// schemaOf is the JSON Schema of the struct type t; ref names the schema of
// another struct type, which goes to defs.
func schemaOf(t reflect.Type, ref func(string) string, defs map[string]any) (map[string]any, error) {
	desc, ok := descriptions[t]
	if !ok {
		return nil, fmt.Errorf("contract: no descriptions for %s", t)
	}
	props := map[string]any{}
	var required []string
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" || !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" {
			name = f.Name
		}
		d, ok := desc[name]
		if !ok {
			return nil, fmt.Errorf("contract: no description for field %q of %s", name, t)
		}
		s, err := valueSchema(f.Type, ref, defs)
		if err != nil {
			return nil, fmt.Errorf("contract: field %q of %s: %w", name, t, err)
		}
		s["description"] = d
		if r := refiners[t][name]; r != nil {
			r(s)
		}
		props[name] = s
		if !strings.Contains(opts, "omitempty") {
			required = append(required, name)
		}
	}
	for name := range desc {
		if _, ok := props[name]; !ok {
			return nil, fmt.Errorf("contract: description of %q, which %s does not have", name, t)
		}
	}
	s := map[string]any{"type": "object", "properties": props}
	if len(required) > 0 {
		s["required"] = required
	}
	return s, nil
}

var (
	rawMessage = reflect.TypeFor[json.RawMessage]()
	timeType   = reflect.TypeFor[time.Time]()
)

func valueSchema(t reflect.Type, ref func(string) string, defs map[string]any) (map[string]any, error) {
	switch t {
	case rawMessage:
		return map[string]any{}, nil // any JSON value
	case timeType:
		return map[string]any{"type": "string", "format": "date-time"}, nil // encoding/json writes RFC 3339
	}
	switch t.Kind() {
	case reflect.Pointer:
		return valueSchema(t.Elem(), ref, defs) // a nil one is left out (omitempty) by the types here
	case reflect.String:
		return map[string]any{"type": "string"}, nil
	case reflect.Bool:
		return map[string]any{"type": "boolean"}, nil
	case reflect.Int, reflect.Int64, reflect.Uint64:
		return map[string]any{"type": "integer"}, nil
	case reflect.Float64:
		return map[string]any{"type": "number"}, nil
	case reflect.Slice:
		items, err := valueSchema(t.Elem(), ref, defs)
		if err != nil {
			return nil, err
		}
		return map[string]any{"type": "array", "items": items}, nil
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			return nil, fmt.Errorf("map key %s", t.Key())
		}
		v, err := valueSchema(t.Elem(), ref, defs)
		if err != nil {
			return nil, err
		}
		return map[string]any{"type": "object", "additionalProperties": v}, nil
	case reflect.Struct:
		if _, ok := defs[t.Name()]; !ok {
			defs[t.Name()] = nil // placeholder against recursion
			s, err := schemaOf(t, ref, defs)
			if err != nil {
				return nil, err
			}
			defs[t.Name()] = s
		}
		return map[string]any{"$ref": ref(t.Name())}, nil
	}
	return nil, fmt.Errorf("no schema for Go type %s", t)
}

// schemas builds the named schemas of the contract's types; ref makes the
// reference to a named schema.
func schemas(ref func(string) string) (map[string]any, error) {
	defs := map[string]any{}
	ev, err := schemaOf(reflect.TypeFor[event.Event](), ref, defs)
	if err != nil {
		return nil, err
	}
	ev["additionalProperties"] = true
	ev["description"] = "A trigger event: the payload of a POST event or a PRE request, the shape of FDL's p table. " +
		"Fields the contract does not name are kept and handed on. An empty payload is an empty event."
	defs["Event"] = ev
	for _, t := range []reflect.Type{reflect.TypeFor[event.Decision](), reflect.TypeFor[worker.RegistryEntry](), reflect.TypeFor[worker.DecisionRecord]()} {
		if _, err := valueSchema(t, ref, defs); err != nil {
			return nil, err
		}
	}
	defs["Decision"].(map[string]any)["description"] = "The single answer to a PRE request."
	defs["RegistryEntry"].(map[string]any)["description"] = "The value of a key of the PRE registry: the registrations of every worker instance with functions for the key's type and option."
	defs["DecisionRecord"].(map[string]any)["description"] = "One PRE decision in the decision log: a line of a message on <prefix>.decisions.<TYPE>.<OPTION>."
	return defs, nil
}

// Draft is the JSON Schema dialect of the schemas [JSONSchemas] returns.
const Draft = "https://json-schema.org/draft/2020-12/schema"

// SchemaID is the $id of the JSON Schema of name ("event" or "decision").
func SchemaID(name string) string {
	return "https://github.com/triggerbus/triggerbus/docs/schema/" + name + ".json"
}

// JSONSchemas returns the JSON Schemas of the event and the decision, by
// name ("event", "decision"), self-contained ($defs).
func JSONSchemas() (map[string]map[string]any, error) {
	defs, err := schemas(func(n string) string { return "#/$defs/" + n })
	if err != nil {
		return nil, err
	}
	out := map[string]map[string]any{}
	for name, root := range map[string]string{"event": "Event", "decision": "Decision"} {
		s := map[string]any{"$schema": Draft, "$id": SchemaID(name), "title": "triggerbus " + name}
		for k, v := range defs[root].(map[string]any) {
			s[k] = v
		}
		if name == "decision" {
			s["$defs"] = map[string]any{"FunctionResult": defs["FunctionResult"]}
		}
		out[name] = s
	}
	return out, nil
}
