package client

import (
	"time"

	"github.com/nats-io/nats.go"

	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/subjects"
)

// setCloudEvent makes the message of e, published on subject, a binary-mode
// CloudEvent with source: its attributes go in ce-* headers, percent-encoded
// as the CloudEvents NATS protocol binding says; the body, e's JSON, is the
// data.
func setCloudEvent(h nats.Header, subject, source string, e *event.Event) {
	h.Set(subjects.HeaderCESpecVersion, "1.0")
	h.Set(subjects.HeaderCEID, event.EncodeHeaderValue(e.ID))
	h.Set(subjects.HeaderCESource, event.EncodeHeaderValue(source))
	h.Set(subjects.HeaderCEType, event.EncodeHeaderValue(subject))
	h.Set(subjects.HeaderCETime, time.UnixMilli(e.TimeStamp).UTC().Format(time.RFC3339Nano))
	h.Set(subjects.HeaderCEDataContentType, "application/json")
}
