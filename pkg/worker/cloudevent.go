package worker

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/binding/format"
	"github.com/cloudevents/sdk-go/v2/binding/spec"
	ce "github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"

	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/subjects"
)

// A CloudEvent on a trigger subject, per the CloudEvents NATS protocol
// binding: a Content-Type of application/cloudevents... makes it a
// structured CloudEvent (the body is the JSON event format), else a
// ce-specversion header makes it a binary one (the attributes are ce-*
// headers, the body is data). Its data is the event (FDL's p shape); its
// type must be the subject it came on; its id and time are the event's id
// and timeStamp. The plain event, without these headers, pays only the look
// at its header names (cloudEventMode).

// ceMode is how a message carries a CloudEvent.
type ceMode uint8

const (
	notCloudEvent ceMode = iota
	ceBinary
	ceStructured
)

// cloudEventMode reports whether h marks a CloudEvent and in which mode.
// Header names are matched without regard to case.
func cloudEventMode(h nats.Header) ceMode {
	mode := notCloudEvent
	for k, v := range h {
		switch {
		case len(k) == len(subjects.HeaderContentType) && strings.EqualFold(k, subjects.HeaderContentType):
			if len(v) > 0 && hasPrefixFold(v[0], "application/cloudevents") {
				return ceStructured
			}
		case len(k) == len(subjects.HeaderCESpecVersion) && strings.EqualFold(k, subjects.HeaderCESpecVersion):
			mode = ceBinary
		}
	}
	return mode
}

// requestID returns the event id a PRE request carries in its headers, for
// a decision made before its event is decoded: Nats-Msg-Id or, for a
// binary-mode CloudEvent, its ce-id; "" when neither is there, or a ce-id
// does not decode or is longer than an id could sensibly be.
func requestID(h nats.Header) string {
	if len(h) == 0 {
		return ""
	}
	if id := h.Get(subjects.HeaderMsgID); id != "" {
		return id
	}
	if cloudEventMode(h) != ceBinary {
		return ""
	}
	id, err := event.DecodeHeaderValue(headerFold(h, subjects.HeaderCEID))
	if err != nil || len(id) > maxHeaderID {
		return ""
	}
	return id
}

// maxHeaderID bounds the ce-id a decision made before decoding repeats.
const maxHeaderID = 256

// decode decodes the event of in: a CloudEvent or the plain event.
func (w *Worker) decode(in *inbound) (*event.Event, error) {
	if len(in.header) != 0 {
		if mode := cloudEventMode(in.header); mode != notCloudEvent {
			return decodeCloudEvent(in.subject, in.subj, in.data, in.header, mode, w.limits)
		}
	}
	if in.shared && in.framed {
		ef := &eventFrame{}
		if err := event.DecodeSharedInto(&ef.ev, in.data, in.subj, w.limits); err != nil {
			return nil, err
		}
		in.frame = &ef.fr
		return &ef.ev, nil
	}
	if in.shared {
		return event.DecodeShared(in.data, in.subj, w.limits)
	}
	return event.Decode(in.data, in.subj, w.limits)
}

// decodeCloudEvent decodes the CloudEvent in body and h, which came on
// subject subj, as [event.Decode] decodes a plain event; errors wrap
// [event.ErrInvalid].
func decodeCloudEvent(subject string, subj subjects.Subject, body []byte, h nats.Header, mode ceMode, lim event.Limits) (ev *event.Event, err error) {
	defer func() {
		// The SDK reads what a publisher sent: a panic in it is that
		// publisher's invalid event, not the worker's end.
		if p := recover(); p != nil {
			ev, err = nil, fmt.Errorf("%w: CloudEvent cannot be read: %v", event.ErrInvalid, p)
		}
	}()
	maxBytes := lim.MaxBytes
	if maxBytes <= 0 {
		maxBytes = event.DefaultMaxBytes
	}
	if len(body) > maxBytes {
		return nil, fmt.Errorf("%w: payload is %d bytes, larger than the limit of %d", event.ErrInvalid, len(body), maxBytes)
	}
	m := &natsMessage{header: h, body: body, mode: mode}
	if mode == ceStructured {
		if mt := mediaType(headerFold(h, subjects.HeaderContentType)); mt != subjects.MediaCloudEvents {
			return nil, fmt.Errorf("%w: CloudEvent: event format %q is not supported, only %s", event.ErrInvalid, mt, subjects.MediaCloudEvents)
		}
	} else {
		sv, err := event.DecodeHeaderValue(headerFold(h, subjects.HeaderCESpecVersion))
		if err != nil {
			return nil, fmt.Errorf("%w: CloudEvent: %s: %w", event.ErrInvalid, subjects.HeaderCESpecVersion, err)
		}
		if m.version = spec.New().Version(sv); m.version == nil || sv != ce.CloudEventsVersionV1 {
			return nil, fmt.Errorf("%w: CloudEvent: specversion %q is not %s", event.ErrInvalid, sv, ce.CloudEventsVersionV1)
		}
	}
	e, err := binding.ToEvent(context.Background(), m)
	if err == nil {
		err = e.Validate()
	}
	if err != nil {
		return nil, fmt.Errorf("%w: CloudEvent: %w", event.ErrInvalid, err)
	}
	if v := e.SpecVersion(); v != ce.CloudEventsVersionV1 {
		return nil, fmt.Errorf("%w: CloudEvent: specversion %q is not %s", event.ErrInvalid, v, ce.CloudEventsVersionV1)
	}
	if e.Type() != subject {
		return nil, fmt.Errorf("%w: CloudEvent type %q is not the subject %q it was published on", event.ErrInvalid, e.Type(), subject)
	}
	if ct := e.DataContentType(); ct != "" && !isJSONMedia(mediaType(ct)) {
		return nil, fmt.Errorf("%w: CloudEvent datacontenttype %q is not JSON", event.ErrInvalid, ct)
	}
	ev, err = event.Decode(e.Data(), subj, lim)
	if err != nil {
		return nil, err
	}
	ev.ID = e.ID()
	if t := e.Time(); !t.IsZero() {
		ev.TimeStamp = t.UnixMilli()
	}
	return ev, nil
}

// natsMessage is a CloudEvent in a NATS message, for [binding.ToEvent].
type natsMessage struct {
	header  nats.Header
	body    []byte
	mode    ceMode
	version spec.Version // binary mode: the specversion's attributes
}

var (
	_ binding.MessageReader         = (*natsMessage)(nil)
	_ binding.MessageMetadataReader = (*natsMessage)(nil)
)

// GetAttribute returns the attribute of kind k and its value, from its
// header (binary mode only).
func (m *natsMessage) GetAttribute(k spec.Kind) (spec.Attribute, any) {
	if m.version == nil {
		return nil, nil
	}
	attr := m.version.AttributeFromKind(k)
	if attr == nil {
		return nil, nil
	}
	if k == spec.SpecVersion {
		return attr, m.version.String()
	}
	return attr, m.headerValue("ce-" + attr.Name())
}

// GetExtension returns the value of the extension attribute name, from its
// header (binary mode only).
func (m *natsMessage) GetExtension(name string) any {
	if m.version == nil {
		return nil
	}
	return m.headerValue("ce-" + name)
}

// headerValue is the decoded value of the header name, or nil when it is
// absent or does not decode (ReadBinary says why).
func (m *natsMessage) headerValue(name string) any {
	v := headerFold(m.header, name)
	if v == "" {
		return nil
	}
	d, err := event.DecodeHeaderValue(v)
	if err != nil {
		return nil
	}
	return d
}

func (m *natsMessage) ReadEncoding() binding.Encoding {
	if m.mode == ceStructured {
		return binding.EncodingStructured
	}
	return binding.EncodingBinary
}

func (m *natsMessage) ReadStructured(ctx context.Context, w binding.StructuredWriter) error {
	if m.mode != ceStructured {
		return binding.ErrNotStructured
	}
	return w.SetStructuredEvent(ctx, format.JSON, bytes.NewReader(m.body))
}

// ReadBinary hands every ce-* header to w, its value percent-decoded, the
// specversion first, then the body as data.
func (m *natsMessage) ReadBinary(_ context.Context, w binding.BinaryWriter) error {
	if m.mode != ceBinary {
		return binding.ErrNotBinary
	}
	if err := w.SetAttribute(m.version.AttributeFromKind(spec.SpecVersion), m.version.String()); err != nil {
		return err
	}
	for k, vs := range m.header {
		if len(k) <= len("ce-") || !hasPrefixFold(k, "ce-") || len(vs) == 0 {
			continue
		}
		name := strings.ToLower(k[len("ce-"):])
		if name == "specversion" {
			continue
		}
		if len(vs) > 1 {
			return fmt.Errorf("header %s is given %d times", k, len(vs))
		}
		v, err := event.DecodeHeaderValue(vs[0])
		if err != nil {
			return fmt.Errorf("header %s: %w", k, err)
		}
		if attr := m.version.Attribute(name); attr != nil {
			err = w.SetAttribute(attr, v)
		} else {
			err = w.SetExtension(name, v)
		}
		if err != nil {
			return fmt.Errorf("header %s: %w", k, err)
		}
	}
	if len(m.body) > 0 {
		return w.SetData(bytes.NewBuffer(m.body))
	}
	return nil
}

// headerFold returns the first value of the header name, matched without
// regard to case.
func headerFold(h nats.Header, name string) string {
	if v := h[name]; len(v) > 0 {
		return v[0]
	}
	for k, v := range h {
		if strings.EqualFold(k, name) && len(v) > 0 {
			return v[0]
		}
	}
	return ""
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// mediaType returns the media type of a Content-Type value, lower case,
// without parameters.
func mediaType(ct string) string {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return strings.ToLower(strings.TrimSpace(ct))
}

// isJSONMedia reports whether the media type mt is JSON.
func isJSONMedia(mt string) bool {
	return mt == "application/json" || mt == "text/json" || strings.HasSuffix(mt, "+json")
}
