package event

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/triggerbus/triggerbus/pkg/subjects"
)

// Default limits of [Decode].
const (
	DefaultMaxBytes = 1 << 20
	DefaultMaxDepth = 64
)

// ErrInvalid is wrapped by every error of [Decode]: the event is not valid for
// its subject.
var ErrInvalid = errors.New("event: invalid")

// Event is the payload of a trigger event, the shape of FDL's p table. Fields
// the contract does not name are kept in Extra so that nothing is lost when
// the event is handed on.
type Event struct {
	ID            string          `json:"id,omitempty"`
	TriggerType   string          `json:"triggerType,omitempty"`
	TriggerOption string          `json:"triggerOption,omitempty"`
	TimeStamp     int64           `json:"timeStamp,omitempty"`
	BEUUID        string          `json:"beUUID,omitempty"`
	Customer      json.RawMessage `json:"customer,omitempty"`
	User          json.RawMessage `json:"user,omitempty"`
	Input         json.RawMessage `json:"input,omitempty"`

	// Extra holds the other top-level fields, raw.
	Extra map[string]json.RawMessage `json:"-"`
}

// Limits bound what [Decode] accepts. Zero fields take the defaults.
type Limits struct {
	// MaxBytes is the largest payload accepted; 0 means DefaultMaxBytes.
	MaxBytes int
	// MaxDepth is the deepest nesting of arrays and objects; 0 means DefaultMaxDepth.
	MaxDepth int
}

// Decode parses data as the event of subject subj. It rejects payloads that
// are too large or too deep, not JSON, not an object, or whose triggerType or
// triggerOption disagree with the subject, with an error wrapping
// [ErrInvalid] that says why. It fills ID (a new id), TimeStamp (now),
// TriggerType and TriggerOption when they are absent. An empty payload is an
// empty event.
func Decode(data []byte, subj subjects.Subject, lim Limits) (*Event, error) {
	maxBytes, maxDepth := lim.MaxBytes, lim.MaxDepth
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	if maxDepth <= 0 {
		maxDepth = DefaultMaxDepth
	}
	if len(data) > maxBytes {
		return nil, fmt.Errorf("%w: payload is %d bytes, larger than the limit of %d", ErrInvalid, len(data), maxBytes)
	}
	e := &Event{}
	if len(bytes.TrimSpace(data)) > 0 {
		if err := checkDepth(data, maxDepth); err != nil {
			return nil, err
		}
		if err := e.UnmarshalJSON(data); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
	}
	if subj.Type != nil {
		if e.TriggerType == "" {
			e.TriggerType = subj.Type.Name
		} else if e.TriggerType != subj.Type.Name {
			return nil, fmt.Errorf("%w: triggerType %q does not match the subject's %q", ErrInvalid, e.TriggerType, subj.Type.Name)
		}
		if e.TriggerOption == "" {
			e.TriggerOption = subj.Option
		} else if e.TriggerOption != subj.Option {
			return nil, fmt.Errorf("%w: triggerOption %q does not match the subject's %q", ErrInvalid, e.TriggerOption, subj.Option)
		}
	}
	if e.ID == "" {
		e.ID = NewID()
	}
	if e.TimeStamp == 0 {
		e.TimeStamp = time.Now().UnixMilli()
	}
	return e, nil
}

// known lists the contract's field names, for UnmarshalJSON.
var known = map[string]func(e *Event, raw json.RawMessage) error{
	"id":            func(e *Event, raw json.RawMessage) error { return unmarshalField(raw, &e.ID, "id") },
	"triggerType":   func(e *Event, raw json.RawMessage) error { return unmarshalField(raw, &e.TriggerType, "triggerType") },
	"triggerOption": func(e *Event, raw json.RawMessage) error { return unmarshalField(raw, &e.TriggerOption, "triggerOption") },
	"timeStamp":     func(e *Event, raw json.RawMessage) error { return unmarshalField(raw, &e.TimeStamp, "timeStamp") },
	"beUUID":        func(e *Event, raw json.RawMessage) error { return unmarshalField(raw, &e.BEUUID, "beUUID") },
	"customer":      func(e *Event, raw json.RawMessage) error { e.Customer = nonNull(raw); return nil },
	"user":          func(e *Event, raw json.RawMessage) error { e.User = nonNull(raw); return nil },
	"input":         func(e *Event, raw json.RawMessage) error { e.Input = nonNull(raw); return nil },
}

func unmarshalField(raw json.RawMessage, v any, name string) error {
	if string(raw) == "null" {
		return nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("field %q: %s", name, typeErrorText(err))
	}
	return nil
}

func typeErrorText(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("a JSON %s cannot be a %s", te.Value, te.Type)
	}
	return err.Error()
}

func nonNull(raw json.RawMessage) json.RawMessage {
	if string(raw) == "null" {
		return nil
	}
	return raw
}

// UnmarshalJSON decodes an event object, keeping unknown fields in Extra.
func (e *Event) UnmarshalJSON(data []byte) error {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return fmt.Errorf("the event is a JSON %s, not an object", te.Value)
		}
		return fmt.Errorf("not JSON: %w", err)
	}
	if fields == nil {
		return errors.New("the event is JSON null, not an object")
	}
	*e = Event{}
	for k, raw := range fields {
		if f, ok := known[k]; ok {
			if err := f(e, raw); err != nil {
				return err
			}
			continue
		}
		if e.Extra == nil {
			e.Extra = make(map[string]json.RawMessage)
		}
		e.Extra[k] = raw
	}
	return nil
}

// MarshalJSON encodes the event with its Extra fields. A field of Extra never
// overrides a contract field.
func (e *Event) MarshalJSON() ([]byte, error) {
	type plain Event
	base, err := json.Marshal((*plain)(e))
	if err != nil || len(e.Extra) == 0 {
		return base, err
	}
	all := make(map[string]json.RawMessage, len(e.Extra)+8)
	for k, v := range e.Extra {
		if _, ok := known[k]; ok {
			continue
		}
		all[k] = v
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(base, &fields); err != nil {
		return nil, err
	}
	for k, v := range fields {
		all[k] = v
	}
	return json.Marshal(all)
}

// Encode returns the JSON of the event.
func (e *Event) Encode() ([]byte, error) { return e.MarshalJSON() }

// checkDepth rejects JSON nested deeper than max without decoding it.
func checkDepth(data []byte, max int) error {
	depth, inString, escaped := 0, false, false
	for _, c := range data {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			depth++
			if depth > max {
				return fmt.Errorf("%w: JSON nested deeper than %d levels", ErrInvalid, max)
			}
		case '}', ']':
			depth--
		}
	}
	return nil
}

type originKey struct{}

// WithOrigin returns a context that says the work done under it is caused by
// a trigger function, with the Trigger-Origin value to stamp on everything it
// sends. The publisher SDK reads it.
func WithOrigin(ctx context.Context, origin string) context.Context {
	return context.WithValue(ctx, originKey{}, origin)
}

// OriginFrom returns the Trigger-Origin value of ctx, if the work done under
// ctx is caused by a trigger function.
func OriginFrom(ctx context.Context) (string, bool) {
	o, ok := ctx.Value(originKey{}).(string)
	return o, ok && o != ""
}
