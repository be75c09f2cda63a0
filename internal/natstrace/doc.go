// Package natstrace carries W3C trace context (traceparent, tracestate) in
// the headers of NATS messages, and names the attributes of the messaging
// spans triggerbus makes, after the OpenTelemetry semantic conventions for
// messaging (messaging.system "nats", messaging.destination.name the
// subject, messaging.message.id the event id).
//
// pkg/client (the publisher's spans) and pkg/worker (the consumer's) share
// it, so that both ends write and read the context the same way. It does no
// I/O and starts no span itself.
package natstrace
