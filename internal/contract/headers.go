package contract

import (
	"github.com/triggerbus/triggerbus/pkg/subjects"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// Carrier says on which messages a header travels.
type Carrier uint8

// The carriers of a header; a header may travel on several.
const (
	// OnPre: PRE requests.
	OnPre Carrier = 1 << iota
	// OnPost: POST events.
	OnPost
	// OnScheduled: SCHEDULED events.
	OnScheduled
	// OnDeadLetter: dead letters, which also keep the headers of their
	// event.
	OnDeadLetter
)

// Header is one NATS header of the wire contract.
type Header struct {
	Name        string
	On          Carrier
	SetBy       string
	Description string
	// Pattern, when set, is the regular expression its value matches.
	Pattern string
}

// Headers are the NATS headers the workers and the SDK read or write on
// trigger subjects. Headers that other features add (W3C trace context)
// join this table with the code that carries them.
var Headers = []Header{
	{
		Name: subjects.HeaderMsgID, On: OnPre | OnPost | OnScheduled, SetBy: "the publisher",
		Description: "The event id (the payload's id), where the event may be stored again (the SDK sends it on " +
			"durable publishes and with an id the caller chose; it leaves it out of a core publish of an id it made " +
			"and of PRE requests). JetStream de-duplicates POST events on it; a worker answering a PRE request " +
			"before decoding its event (BAD_REQUEST, EXPIRED, TRIGGER_ORIGINATED) uses it as the decision's id, " +
			"or a binary-mode CloudEvent's ce-id without it, and gives none without either (the SDK then uses the " +
			"event's id).",
	},
	{
		Name: subjects.HeaderDeadline, On: OnPre, SetBy: "the publisher",
		Description: "The absolute deadline of a PRE request, Unix milliseconds; the event's deadline field " +
			"says the same (the Go SDK sends that, which keeps its requests free of headers), and a worker " +
			"given both keeps the earlier. Each function's timeout is capped to what remains and the worker " +
			"answers before it; a request whose deadline has passed is answered EXPIRED; a value that is not " +
			"Unix milliseconds is answered BAD_REQUEST.",
		Pattern: `^-?[0-9]+$`,
	},
	{
		Name: subjects.HeaderOrigin, On: OnPre | OnPost | OnScheduled, SetBy: "the worker, on what a trigger function causes",
		Description: "The loop flag: a POST or SCHEDULED event carrying a value the worker honours is dropped " +
			"(counted), a PRE request carrying one is answered allowed with code TRIGGER_ORIGINATED. " +
			"A publisher outside the bus never sets it.",
	},
	{
		Name: subjects.HeaderTraceParent, On: OnPre | OnPost | OnScheduled, SetBy: "the publisher (pkg/client, with a tracer provider)",
		Description: "W3C trace context: the publisher's span. A worker that traces (tracing.enabled) makes the event's " +
			"span its child and carries the trace on to webhook requests and to the messages functions send; " +
			"a worker that does not ignores it. Lower case, as W3C writes it (another case is read too).",
		Pattern: `^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}(-.*)?$`,
	},
	{
		Name: subjects.HeaderTraceState, On: OnPre | OnPost | OnScheduled, SetBy: "the publisher, with traceparent",
		Description: "W3C trace context: vendor-specific trace state, carried on with traceparent.",
	},
	{
		Name: worker.HeaderSchedule, On: OnScheduled, SetBy: "the worker's scheduler",
		Description: "The ref of the one SCHEDULED function a tick is for; a SCHEDULED event without it runs " +
			"every SCHEDULED function.",
	},
	{
		Name: worker.HeaderReplay, On: OnPost | OnScheduled, SetBy: "trigger-worker dlq replay",
		Description: "Marks an event published again from the dead-letter stream; the value is the original event id.",
	},
	{
		Name: worker.HeaderReplayFunction, On: OnPost | OnScheduled, SetBy: "trigger-worker dlq replay",
		Description: "On a replayed event, the ref of the one function that runs it (the others matching " +
			"its subject do not).",
	},
	{
		Name: worker.HeaderFailedFunction, On: OnDeadLetter, SetBy: "the worker",
		Description: "The ref of the function whose failure made the dead letter.",
	},
	{
		Name: worker.HeaderError, On: OnDeadLetter, SetBy: "the worker",
		Description: "Why the last attempt failed, at most 1 KiB (cut to 256 bytes first when the dead letter " +
			"would not fit the max payload).",
	},
	{
		Name: worker.HeaderAttempts, On: OnDeadLetter, SetBy: "the worker",
		Description: "How many deliveries of the event there were.",
		Pattern:     `^[0-9]+$`,
	},
	{
		Name: worker.HeaderSubject, On: OnDeadLetter, SetBy: "the worker",
		Description: "The subject the event was published on, <prefix>.<TYPE>.<OPTION>; dlq replay publishes it there again.",
	},
	{
		Name: worker.HeaderFailedAt, On: OnDeadLetter, SetBy: "the worker",
		Description: "When the event failed for the last time, Unix milliseconds.",
		Pattern:     `^-?[0-9]+$`,
	},
	{
		Name: worker.HeaderOriginalMsgID, On: OnDeadLetter, SetBy: "the worker",
		Description: "The event's Nats-Msg-Id, or its id when it came without one (the dead letter's own " +
			"Nats-Msg-Id is dlq.<Trigger-Event-Seq>, which keeps a second copy out of the stream).",
	},
	{
		Name: worker.HeaderEventSeq, On: OnDeadLetter, SetBy: "the worker",
		Description: "The event's sequence in the event stream <PREFIX>_EVENTS.",
		Pattern:     `^[0-9]+$`,
	},
	{
		Name: worker.HeaderBodyTruncated, On: OnDeadLetter, SetBy: "the worker",
		Description: "Present when the event did not fit the max payload beside the headers: the event's size in " +
			"bytes. The dead letter's body is then only the event's start (or empty), and it cannot be replayed.",
		Pattern: `^[0-9]+$`,
	},
	{
		Name: worker.HeaderHeadersDropped, On: OnDeadLetter, SetBy: "the worker",
		Description: "Present when the event's own headers were left out to fit the max payload: their names, " +
			"comma-separated.",
	},
	{
		Name: subjects.HeaderContentType, On: OnPre | OnPost | OnScheduled, SetBy: "a CloudEvents publisher",
		Description: "application/cloudevents+json (parameters allowed) marks a structured-mode CloudEvent: " +
			"the body is the CloudEvents JSON event format and its data is the event. Any other " +
			"application/cloudevents media type (a batch, another format) is invalid.",
	},
	{
		Name: subjects.HeaderCESpecVersion, On: OnPre | OnPost | OnScheduled, SetBy: "a CloudEvents publisher (the SDK with its CloudEvents option)",
		Description: "Marks a binary-mode CloudEvent (the CloudEvents NATS protocol binding): its attributes are " +
			"the ce-* headers, percent-encoded, and the body is its data, the event. Must be 1.0.",
		Pattern: `^1\.0$`,
	},
	{
		Name: subjects.HeaderCEID, On: OnPre | OnPost | OnScheduled, SetBy: "a CloudEvents publisher",
		Description: "A binary-mode CloudEvent's id: it is the event's id (over any id in the data). Required.",
	},
	{
		Name: subjects.HeaderCESource, On: OnPre | OnPost | OnScheduled, SetBy: "a CloudEvents publisher",
		Description: "A binary-mode CloudEvent's source, a URI-reference naming the publisher. Required; " +
			"not interpreted.",
	},
	{
		Name: subjects.HeaderCEType, On: OnPre | OnPost | OnScheduled, SetBy: "a CloudEvents publisher",
		Description: "A binary-mode CloudEvent's type: the subject it is published on, <prefix>.<TYPE>.<OPTION>. " +
			"Another type is invalid (a PRE request is answered BAD_REQUEST, a POST event dropped as invalid).",
	},
	{
		Name: subjects.HeaderCETime, On: OnPre | OnPost | OnScheduled, SetBy: "a CloudEvents publisher",
		Description: "A binary-mode CloudEvent's time, RFC 3339: the event's timeStamp, in milliseconds (over any " +
			"timeStamp in the data). Optional.",
	},
	{
		Name: subjects.HeaderCEDataContentType, On: OnPre | OnPost | OnScheduled, SetBy: "a CloudEvents publisher",
		Description: "The media type of a binary-mode CloudEvent's data; a JSON type (application/json, *+json) " +
			"or absent. Other ce-* headers are extension attributes, accepted and not passed on.",
	},
}

// headersSchema is the JSON Schema of the headers a message on c carries.
func headersSchema(c Carrier) map[string]any {
	props := map[string]any{}
	for _, h := range Headers {
		if h.On&c == 0 {
			continue
		}
		s := map[string]any{
			"type":        "string",
			"description": h.Description + " Set by " + h.SetBy + ".",
		}
		if h.Pattern != "" {
			s["pattern"] = h.Pattern
		}
		props[h.Name] = s
	}
	return map[string]any{
		"type":                 "object",
		"properties":           props,
		"additionalProperties": map[string]any{"type": "string"},
	}
}
