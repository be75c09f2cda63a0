package natstrace

import (
	"strings"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// System is the messaging.system of every span: NATS.
const System = "nats"

// Header is a [propagation.TextMapCarrier] over a message's headers. Set
// replaces a value; Get matches the key exactly, and else in any case, since
// a publisher in another language may write Traceparent. A nil Header reads
// as empty and Set on it does nothing (give the message a header first:
// nats.NewMsg does).
type Header nats.Header

var _ propagation.TextMapCarrier = Header(nil)

// Get returns the first value of key, "" if none.
func (h Header) Get(key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	for k, v := range h {
		if len(v) > 0 && strings.EqualFold(k, key) {
			return v[0]
		}
	}
	return ""
}

// Set sets key to value.
func (h Header) Set(key, value string) {
	if h != nil {
		h[key] = []string{value}
	}
}

// Keys lists the keys of the headers.
func (h Header) Keys() []string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	return keys
}

// Operation types of messaging spans (messaging.operation.type).
const (
	OpSend    = "send"
	OpProcess = "process"
	OpSettle  = "settle"
)

// Attributes returns the messaging attributes of a span of operation op
// (one of the Op constants) on subject; id, the event id, is left out when
// empty.
func Attributes(op, subject, id string) []attribute.KeyValue {
	a := make([]attribute.KeyValue, 0, 5)
	a = append(a,
		semconv.MessagingSystemKey.String(System),
		semconv.MessagingOperationTypeKey.String(op),
		semconv.MessagingOperationName(op),
		semconv.MessagingDestinationName(subject),
	)
	if id != "" {
		a = append(a, semconv.MessagingMessageID(id))
	}
	return a
}

// MessageID is the messaging.message.id attribute: the event id.
func MessageID(id string) attribute.KeyValue { return semconv.MessagingMessageID(id) }

// The attributes of a PRE decision, on the publisher's Decide span and the
// worker's reply span.
const (
	AttrAllowed = attribute.Key("trigger.decision.allowed")
	AttrCode    = attribute.Key("trigger.decision.code")
)
