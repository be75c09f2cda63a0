package contract

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/triggerbus/triggerbus/pkg/subjects"
)

// Version is the version of the wire contract the documents describe
// (info.version of the AsyncAPI document). It changes when the contract
// changes in a way a client must follow.
const Version = "1.0.0"

// Protocol is what a client that is not the Go SDK must do, as the
// AsyncAPI document's description says it.
const Protocol = `triggerbus runs trigger functions on NATS. A publisher sends each trigger point to the subject
<prefix>.<TYPE>.<OPTION> (the channels below, one per trigger type of the catalogue):

- POST and SCHEDULED types: publish the event (core NATS, or JetStream for a durable publish, when the
  workers' event stream captures the subject). Set Nats-Msg-Id to the event id when the event may be
  sent again (a JetStream publish that is retried, an id chosen by the caller): JetStream keeps one copy
  of an event published twice with the same id.
- PRE types: send the event as a NATS request with its deadline (the absolute deadline, Unix
  milliseconds) in the event's deadline field or in the header Trigger-Deadline (a worker given both
  keeps the earlier), and a timeout no later than it. The reply is a decision. When the decision's code
  is SHUTTING_DOWN, ask again (the Go SDK asks up to 3 more times). A reply that is not a decision
  is refused (BAD_REPLY); a timeout takes the caller's policy (code TIMEOUT). Nats-Msg-Id is optional
  on a request: a decision the worker makes before decoding the event (BAD_REQUEST, EXPIRED,
  TRIGGER_ORIGINATED) carries it as its id (a binary-mode CloudEvent without it: its ce-id), and none
  without either.
- When NATS answers "no responders" (no worker is subscribed), read the PRE registry, the JetStream
  key-value bucket <PREFIX>_REGISTRY (the registry channel): get BOTH keys <TYPE>.<OPTION> and <TYPE>.ANY
  (a function registered for ANY serves every option). If either exists, whatever its value,
  functions are registered and no worker answers: answer with the caller's policy, refused by default
  (allowed false, code NO_WORKER). If neither exists (or the bucket does not exist), answer allowed with
  code NO_TRIGGER. If the registry cannot be read, answer NO_WORKER with the caller's policy: fail
  closed.
- Never set Trigger-Origin: the workers stamp what trigger functions cause with it.`

// AsyncAPI returns the AsyncAPI 3.0 document of the trigger subjects under
// prefix (subjects.DefaultPrefix when ""), as a YAML tree.
func AsyncAPI(prefix string) (map[string]any, error) {
	if prefix == "" {
		prefix = subjects.DefaultPrefix
	}
	scheme, err := subjects.NewScheme(prefix)
	if err != nil {
		return nil, fmt.Errorf("contract: %w", err)
	}
	schemasRef := func(n string) string { return "#/components/schemas/" + n }
	defs, err := schemas(schemasRef)
	if err != nil {
		return nil, err
	}
	compSchemas := map[string]any{
		"PreHeaders":        headersSchema(OnPre),
		"PostHeaders":       headersSchema(OnPost),
		"ScheduledHeaders":  headersSchema(OnScheduled),
		"DeadLetterHeaders": headersSchema(OnDeadLetter),
	}
	for k, v := range defs {
		compSchemas[k] = v
	}
	messages := map[string]any{
		"decision": map[string]any{
			"name":        "decision",
			"title":       "PRE decision",
			"summary":     "The single answer to a PRE request, sent to the request's reply subject.",
			"contentType": "application/json",
			"payload":     map[string]any{"$ref": schemasRef("Decision")},
		},
		"decisionRecords": map[string]any{
			"name":  "decisionRecords",
			"title": "Decision log records",
			"summary": "One or more PRE decisions, one DecisionRecord per line (JSON Lines): a worker batches " +
				"the records of a subject it publishes together.",
			"contentType": "application/jsonl",
			"payload":     map[string]any{"$ref": schemasRef("DecisionRecord")},
		},
		"deadLetter": map[string]any{
			"name":  "deadLetter",
			"title": "Dead letter",
			"summary": "An event that failed every delivery, with its own headers and the dead-letter headers. " +
				"With Trigger-Body-Truncated the body is only the event's start.",
			"contentType": "application/json",
			"headers":     map[string]any{"$ref": schemasRef("DeadLetterHeaders")},
			"payload":     map[string]any{"$ref": schemasRef("Event")},
		},
		"registryEntry": map[string]any{
			"name":        "registryEntry",
			"title":       "PRE registry entry",
			"summary":     "The value of a key <TYPE>.<OPTION> of the PRE registry bucket.",
			"contentType": "application/json",
			"payload":     map[string]any{"$ref": schemasRef("RegistryEntry")},
		},
	}
	channels := map[string]any{
		"decisionReply": map[string]any{
			"address":     nil,
			"title":       "PRE reply",
			"description": "The reply subject of a PRE request (a NATS inbox the requester chose).",
			"messages":    map[string]any{"decision": map[string]any{"$ref": "#/components/messages/decision"}},
		},
	}
	operations := map[string]any{}
	var preTypes, deliveredTypes []string
	for _, t := range subjects.Types() {
		msgID := t.Name
		headers := "PostHeaders"
		switch {
		case t.IsPre():
			headers = "PreHeaders"
			preTypes = append(preTypes, t.Name)
		case t.Name == "SCHEDULED":
			headers = "ScheduledHeaders"
		}
		if !t.IsPre() {
			deliveredTypes = append(deliveredTypes, t.Name)
		}
		messages[msgID] = map[string]any{
			"name":        msgID,
			"title":       t.Name + " event",
			"summary":     t.Description,
			"contentType": "application/json",
			"headers":     map[string]any{"$ref": schemasRef(headers)},
			"payload": map[string]any{"allOf": []any{
				map[string]any{"$ref": schemasRef("Event")},
				map[string]any{"properties": map[string]any{"triggerType": map[string]any{"const": t.Name}}},
			}},
		}
		channels[t.Name] = map[string]any{
			"address":     scheme.Pattern(t.Name, "") + "{option}",
			"title":       t.Name,
			"description": fmt.Sprintf("%s Phase %s; options: %s.", t.Description, t.Phase, t.OptionKind),
			"parameters":  map[string]any{"option": optionParameter(t)},
			"messages":    map[string]any{"event": map[string]any{"$ref": "#/components/messages/" + msgID}},
		}
		op := map[string]any{
			"action":   "receive",
			"channel":  map[string]any{"$ref": "#/channels/" + t.Name},
			"messages": []any{map[string]any{"$ref": "#/channels/" + t.Name + "/messages/event"}},
		}
		if t.IsPre() {
			op["title"] = "Decide " + t.Name
			op["summary"] = "The worker fleet (one worker of its queue group) runs the " + t.Name + " functions and replies with the decision."
			op["reply"] = map[string]any{
				"channel":  map[string]any{"$ref": "#/channels/decisionReply"},
				"messages": []any{map[string]any{"$ref": "#/channels/decisionReply/messages/decision"}},
			}
			operations["decide"+camel(t.Name)] = op
		} else {
			op["title"] = "Run " + t.Name
			op["summary"] = "The worker fleet (one worker of its queue group) runs the " + t.Name + " functions."
			operations["run"+camel(t.Name)] = op
		}
	}
	channels["registry"] = typedChannel("$KV."+scheme.RegistryBucket()+".{type}.{option}", "PRE registry",
		"The JetStream key-value bucket "+scheme.RegistryBucket()+", one key "+
			subjects.RegistryKey("<TYPE>", "<OPTION>")+" per PRE type and option that has functions ("+
			subjects.RegistryKey("<TYPE>", subjects.Any)+" for a type's functions of every option). "+
			"A key exists exactly while some worker instance registers functions there; registrations stay when "+
			"workers stop and never expire. After \"no responders\" a client reads BOTH keys "+
			subjects.RegistryKey("<TYPE>", "<OPTION>")+" and "+subjects.RegistryKey("<TYPE>", subjects.Any)+
			" (a direct get of each): either present means NO_WORKER (refused by default), neither NO_TRIGGER (allowed).",
		map[string]any{"description": "A PRE trigger type.", "enum": preTypes},
		map[string]any{"description": "The option, or " + subjects.Any + " for functions of every option.", "examples": []string{subjects.Any}},
		"entry", "registryEntry")
	channels["deadLetters"] = typedChannel(scheme.Prefix()+".dlq.{type}.{option}", "Dead letters",
		"Events delivered durably (POST and SCHEDULED on the event stream) whose function failed "+
			"every attempt (delivery.max_deliver), stored in the JetStream stream "+scheme.DeadLetterStream()+
			" on their type and option for 14 days. `trigger-worker dlq ls|show|replay|purge` reads and "+
			"replays them; a replay publishes the event to Trigger-Subject with Trigger-Replay.",
		map[string]any{"description": "The trigger type of the event.", "enum": deliveredTypes},
		map[string]any{"description": "The option of the event's subject."},
		"deadLetter", "deadLetter")
	channels["decisionLog"] = typedChannel(scheme.Prefix()+".decisions.{type}.{option}", "Decision log",
		"The decision log (decision_log.enabled, on by default where the server has JetStream): "+
			"every PRE decision a worker answers, or the refusals and a sample of the rest, stored in the "+
			"JetStream stream "+scheme.DecisionStream()+" on the request's type and option. Each line of a "+
			"message is one record; the stream keeps decision_log.max_age and max_bytes, oldest first. "+
			"`trigger-worker decisions` reads it; so does any JetStream consumer.",
		map[string]any{"description": "The PRE trigger type of the request.", "enum": preTypes},
		map[string]any{"description": "The option of the request's subject."},
		"records", "decisionRecords")
	operations["deadLetter"] = sendOperation("Store a dead letter",
		"A worker stores the event whose last delivery failed, then acks the event; a dead letter that cannot be stored leaves the event to be delivered again.",
		"deadLetters", "deadLetter")
	operations["logDecisions"] = sendOperation("Log PRE decisions",
		"A worker publishes the records of the decisions it answered, after each answer has left, batched every 50 ms.",
		"decisionLog", "records")
	operations["register"] = sendOperation("Register PRE functions",
		"A worker writes its own instance's registrations by compare-and-swap, and rewrites them every registry.refresh.",
		"registry", "entry")
	return map[string]any{
		"asyncapi": "3.0.0",
		"id":       "urn:triggerbus:" + prefix,
		"info": map[string]any{
			"title":       "triggerbus",
			"version":     Version,
			"description": Protocol,
		},
		"defaultContentType": "application/json",
		"servers": map[string]any{
			"nats": map[string]any{
				"host":        "localhost:4222",
				"protocol":    "nats",
				"description": "The NATS server (or cluster) of the worker fleet; JetStream for durable POST delivery and the PRE registry.",
			},
		},
		"channels":   channels,
		"operations": operations,
		"components": map[string]any{"schemas": compSchemas, "messages": messages},
	}, nil
}

// typedChannel is a channel whose address has a {type} and an {option}
// parameter, with one message: its name in the channel and in the
// components.
func typedChannel(address, title, description string, typ, option map[string]any, message, component string) map[string]any {
	return map[string]any{
		"address":     address,
		"title":       title,
		"description": description,
		"parameters":  map[string]any{"type": typ, "option": option},
		"messages":    map[string]any{message: map[string]any{"$ref": "#/components/messages/" + component}},
	}
}

// sendOperation is the workers' send operation of one message of a channel.
func sendOperation(title, summary, channel, message string) map[string]any {
	return map[string]any{
		"action":   "send",
		"title":    title,
		"summary":  summary,
		"channel":  map[string]any{"$ref": "#/channels/" + channel},
		"messages": []any{map[string]any{"$ref": "#/channels/" + channel + "/messages/" + message}},
	}
}

// optionParameter is the channel parameter of t's option.
func optionParameter(t *subjects.TriggerType) map[string]any {
	p := map[string]any{}
	switch {
	case !t.OptionKind.HasOptions():
		p["description"] = t.Name + " takes no option: its events are published with " + subjects.Any + "."
		p["enum"] = []string{subjects.Any}
	case t.OptionKind.Closed():
		p["description"] = "A value of the " + string(t.OptionKind) + " set (closed)."
		p["enum"] = concrete(t.KnownOptions())
	default:
		p["description"] = "A value of the " + string(t.OptionKind) + " set (open: any subject token with no '.', '*', '>', white space or control character, at most " +
			fmt.Sprint(subjects.MaxTokenLen) + " bytes; never " + subjects.Any + ")."
		if k := concrete(t.KnownOptions()); len(k) > 0 {
			p["examples"] = k
		}
	}
	return p
}

// concrete is options without ANY, which no event of a type with options
// is published with.
func concrete(options []string) []string {
	return slices.DeleteFunc(slices.Clone(options), func(o string) bool { return o == subjects.Any })
}

// camel turns PRE_CREATE into PreCreate.
func camel(s string) string {
	var b strings.Builder
	for w := range strings.SplitSeq(strings.ToLower(s), "_") {
		if w != "" {
			b.WriteString(strings.ToUpper(w[:1]) + w[1:])
		}
	}
	return b.String()
}

// Files returns the contract's documents by their path under docs/:
// asyncapi.yaml, schema/event.json and schema/decision.json, for the
// subjects under prefix ("" is the default).
func Files(prefix string) (map[string][]byte, error) {
	doc, err := AsyncAPI(prefix)
	if err != nil {
		return nil, err
	}
	var y bytes.Buffer
	y.WriteString("# Generated by `trigger-worker schema asyncapi`: do not edit.\n")
	enc := yaml.NewEncoder(&y)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("contract: asyncapi: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("contract: asyncapi: %w", err)
	}
	out := map[string][]byte{"asyncapi.yaml": y.Bytes()}
	js, err := JSONSchemas()
	if err != nil {
		return nil, err
	}
	for name, s := range js {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		if err := enc.Encode(s); err != nil {
			return nil, fmt.Errorf("contract: %s schema: %w", name, err)
		}
		out["schema/"+name+".json"] = b.Bytes()
	}
	return out, nil
}
