package webhook

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	ce "github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/subjects"
)

// The formats of a webhook request ([Config.Format]).
const (
	// FormatJSON POSTs the event as the JSON body (the default).
	FormatJSON = "json"
	// FormatCloudEvents POSTs the event as a binary-mode CloudEvent (the
	// CloudEvents HTTP protocol binding): the body is the same JSON event,
	// the CloudEvent's data, and its attributes are headers: ce-specversion
	// 1.0, ce-id the event id, ce-type the event's subject
	// (<prefix>.<TYPE>.<OPTION>), ce-source the worker and the function
	// ("/triggerbus/<instance>/<ref>", so that id and source name one call),
	// ce-time the event's timeStamp, Content-Type application/json.
	FormatCloudEvents = "cloudevents"
)

// ceSource is the CloudEvents source of a call: the worker's instance and
// the function's ref, each path-escaped; the parts a call lacks are left
// out.
func ceSource(c handlers.Call) string {
	s := "/triggerbus"
	if c.Worker != "" {
		s += "/" + url.PathEscape(c.Worker)
		if c.Ref != "" {
			s += "/" + url.PathEscape(c.Ref)
		}
	}
	return s
}

// setCloudEvent makes req, whose body is the JSON of ev, a binary-mode
// CloudEvent of the call in ctx.
func (w *Handler) setCloudEvent(ctx context.Context, req *http.Request, ev *event.Event, body []byte) error {
	c, _ := handlers.CallFrom(ctx)
	e := ce.New(ce.CloudEventsVersionV1)
	e.SetID(ev.ID)
	if ev.ID == "" {
		e.SetID(event.NewID())
	}
	e.SetSource(ceSource(c))
	e.SetType(w.prefix + "." + ev.TriggerType + "." + ev.TriggerOption)
	if ev.TimeStamp != 0 {
		e.SetTime(time.UnixMilli(ev.TimeStamp).UTC())
	}
	e.SetDataContentType("application/json")
	e.DataEncoded = body
	if err := e.Validate(); err != nil {
		return fmt.Errorf("handlers: webhook: CloudEvent: %w", err)
	}
	req.Header.Del("Content-Type") // the binding sets it from datacontenttype
	if err := cehttp.WriteRequest(binding.WithForceBinary(ctx), binding.ToMessage(&e), req); err != nil {
		return fmt.Errorf("handlers: webhook: CloudEvent: %w", err)
	}
	return nil
}

// isCloudEventReply reports whether a response with header h is a
// CloudEvent: binary mode (a Ce-Specversion header) or structured mode (a
// Content-Type of application/cloudevents+json).
func isCloudEventReply(h http.Header) bool {
	if h.Get("Ce-Specversion") != "" {
		return true
	}
	ct := strings.ToLower(h.Get("Content-Type"))
	return strings.HasPrefix(ct, "application/cloudevents")
}

// cloudEventResult reads the result of a CloudEvent reply with header h and
// body data: its data, which must be JSON, is the function's result,
// parsed by [handlers.ParseResult] (no data is CONTINUE). A reply that is
// not a valid CloudEvent is an error wrapping [handlers.ErrBadResult].
func cloudEventResult(ctx context.Context, h http.Header, data []byte) (handlers.Result, error) {
	m := cehttp.NewMessage(h, io.NopCloser(bytes.NewReader(data)))
	defer m.Finish(nil)
	if enc := m.ReadEncoding(); enc != binding.EncodingBinary && enc != binding.EncodingStructured {
		return handlers.Result{}, fmt.Errorf("%w: the reply is a CloudEvent in a mode other than binary or structured (%s)", handlers.ErrBadResult, enc)
	}
	e, err := binding.ToEvent(ctx, m)
	if err == nil {
		err = e.Validate()
	}
	if err != nil {
		return handlers.Result{}, fmt.Errorf("%w: the reply is not a valid CloudEvent: %w", handlers.ErrBadResult, err)
	}
	if ct := e.DataContentType(); ct != "" {
		mt := strings.ToLower(strings.TrimSpace(strings.Split(ct, ";")[0]))
		if mt != "application/json" && mt != "text/json" && !strings.HasSuffix(mt, "+json") {
			return handlers.Result{}, fmt.Errorf("%w: the reply CloudEvent's datacontenttype %q is not JSON", handlers.ErrBadResult, ct)
		}
	}
	return handlers.ParseResult(e.Data())
}

// validFormat checks a [Config.Format] and the headers that go with it.
func (c Config) validFormat() error {
	switch c.Format {
	case "", FormatJSON:
		return nil
	case FormatCloudEvents:
		for name := range c.Headers {
			if len(name) > 3 && strings.EqualFold(name[:3], "ce-") {
				return fmt.Errorf("%w: webhook header %q is a CloudEvents attribute, set by the webhook itself in format %s", handlers.ErrInvalidConfig, name, FormatCloudEvents)
			}
		}
		if c.Prefix != "" {
			if _, err := subjects.NewScheme(c.Prefix); err != nil {
				return fmt.Errorf("%w: webhook prefix: %w", handlers.ErrInvalidConfig, err)
			}
		}
		return nil
	}
	return fmt.Errorf("%w: webhook format %q is not %s or %s", handlers.ErrInvalidConfig, c.Format, FormatJSON, FormatCloudEvents)
}
