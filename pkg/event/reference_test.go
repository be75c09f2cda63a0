package event

import (
	"encoding/json"
	"errors"
	"fmt"
)

// refUnmarshal is the first implementation of Event.UnmarshalJSON (through a
// map of raw fields, then one json.Unmarshal per contract field). It is kept
// as the reference FuzzUnmarshalReference holds the current one to.
func refUnmarshal(e *Event, data []byte) error {
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
		if f, ok := refKnown[k]; ok {
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

var refKnown = map[string]func(e *Event, raw json.RawMessage) error{
	"id":            func(e *Event, raw json.RawMessage) error { return refField(raw, &e.ID, "id") },
	"triggerType":   func(e *Event, raw json.RawMessage) error { return refField(raw, &e.TriggerType, "triggerType") },
	"triggerOption": func(e *Event, raw json.RawMessage) error { return refField(raw, &e.TriggerOption, "triggerOption") },
	"timeStamp":     func(e *Event, raw json.RawMessage) error { return refField(raw, &e.TimeStamp, "timeStamp") },
	"deadline":      func(e *Event, raw json.RawMessage) error { return refField(raw, &e.Deadline, "deadline") },
	"beUUID":        func(e *Event, raw json.RawMessage) error { return refField(raw, &e.BEUUID, "beUUID") },
	"customer":      func(e *Event, raw json.RawMessage) error { e.Customer = refNonNull(raw); return nil },
	"user":          func(e *Event, raw json.RawMessage) error { e.User = refNonNull(raw); return nil },
	"input":         func(e *Event, raw json.RawMessage) error { e.Input = refNonNull(raw); return nil },
}

func refField(raw json.RawMessage, v any, name string) error {
	if string(raw) == "null" {
		return nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return fmt.Errorf("field %q: %s", name, fmt.Sprintf("a JSON %s cannot be a %s", te.Value, te.Type))
		}
		return fmt.Errorf("field %q: %s", name, err.Error())
	}
	return nil
}

func refNonNull(raw json.RawMessage) json.RawMessage {
	if string(raw) == "null" {
		return nil
	}
	return raw
}
