package event

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unsafe"

	"github.com/triggerbus/triggerbus/internal/jsonnum"
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
	ID            string `json:"id,omitempty"`
	TriggerType   string `json:"triggerType,omitempty"`
	TriggerOption string `json:"triggerOption,omitempty"`
	TimeStamp     int64  `json:"timeStamp,omitempty"`
	// Deadline is a PRE request's deadline, Unix milliseconds, as the SDK
	// sends it; 0 is none. The Trigger-Deadline header says the same, and a
	// worker keeps the earlier of the two. Events of other types ignore it.
	Deadline int64           `json:"deadline,omitempty"`
	BEUUID   string          `json:"beUUID,omitempty"`
	Customer json.RawMessage `json:"customer,omitempty"`
	User     json.RawMessage `json:"user,omitempty"`
	Input    json.RawMessage `json:"input,omitempty"`

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
	return decodeEvent(data, subj, lim, false)
}

// DecodeShared is [Decode] for a caller that hands data over: the event's
// raw fields and strings are cut from data itself rather than from a copy,
// so the caller must not change data afterwards, and a change to a raw field
// of the event (Input, Customer, User, Extra's values) shows in data. The
// event and the errors are those of Decode.
func DecodeShared(data []byte, subj subjects.Subject, lim Limits) (*Event, error) {
	return decodeEvent(data, subj, lim, true)
}

// DecodeSharedInto is [DecodeShared] into e, a zero Event the caller
// allocated (within a larger allocation of its own, say). The error is
// DecodeShared's; after one, e is not to be used.
func DecodeSharedInto(e *Event, data []byte, subj subjects.Subject, lim Limits) error {
	return decodeInto(e, data, subj, lim, true)
}

func decodeEvent(data []byte, subj subjects.Subject, lim Limits, shared bool) (*Event, error) {
	e := &Event{}
	if err := decodeInto(e, data, subj, lim, shared); err != nil {
		return nil, err
	}
	return e, nil
}

func decodeInto(e *Event, data []byte, subj subjects.Subject, lim Limits, shared bool) error {
	maxBytes, maxDepth := lim.MaxBytes, lim.MaxDepth
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	if maxDepth <= 0 {
		maxDepth = DefaultMaxDepth
	}
	if len(data) > maxBytes {
		return fmt.Errorf("%w: payload is %d bytes, larger than the limit of %d", ErrInvalid, len(data), maxBytes)
	}
	if len(bytes.TrimSpace(data)) > 0 {
		var typ string
		if subj.Type != nil {
			typ = subj.Type.Name
		}
		valid, err := e.decode(data, min(maxDepth, maxNesting), typ, subj.Option, shared)
		if !valid {
			// Not JSON or too deep: the checks one at a time say which.
			if err := checkDepth(data, maxDepth); err != nil {
				return err
			}
			err = notJSON(data)
		}
		if err != nil {
			return fmt.Errorf("%w: %w", ErrInvalid, err)
		}
	}
	if subj.Type != nil {
		if e.TriggerType == "" {
			e.TriggerType = subj.Type.Name
		} else if e.TriggerType != subj.Type.Name {
			return fmt.Errorf("%w: triggerType %q does not match the subject's %q", ErrInvalid, e.TriggerType, subj.Type.Name)
		}
		if e.TriggerOption == "" {
			e.TriggerOption = subj.Option
		} else if e.TriggerOption != subj.Option {
			return fmt.Errorf("%w: triggerOption %q does not match the subject's %q", ErrInvalid, e.TriggerOption, subj.Option)
		}
	}
	if e.ID == "" {
		e.ID = NewID()
	}
	if e.TimeStamp == 0 {
		e.TimeStamp = time.Now().UnixMilli()
	}
	return nil
}

// The contract's fields, in the order UnmarshalJSON decodes them.
const (
	fieldID = iota
	fieldTriggerType
	fieldTriggerOption
	fieldTimeStamp
	fieldDeadline
	fieldBEUUID
	fieldCustomer
	fieldUser
	fieldInput
	numFields
)

var fieldNames = [numFields]string{"id", "triggerType", "triggerOption", "timeStamp", "deadline", "beUUID", "customer", "user", "input"}

// fieldIndex returns the contract field called name, or -1. Only deadline
// and customer have the same length, so at most two comparisons get past
// the length.
func fieldIndex(name []byte) int {
	for f, n := range fieldNames {
		if string(name) == n {
			return f
		}
	}
	return -1
}

// UnmarshalJSON decodes an event object, keeping unknown fields in Extra. A
// field given more than once takes its last value. The raw fields (Customer,
// User, Input and Extra's values) hold the exact bytes of their values, in one
// copy of data.
//
// It validates data and finds the object's members in one pass, without
// decoding them; only the contract's scalar fields are decoded.
func (e *Event) UnmarshalJSON(data []byte) error {
	if i := skipSpace(data, 0); i < len(data) && data[i] == '{' {
		*e = Event{} // decode fills in a zero event
	}
	valid, err := e.decode(data, maxNesting, "", "", false)
	if !valid {
		return notJSON(data)
	}
	return err
}

// notJSON returns the error of data, which is not valid JSON: encoding/json's
// *json.SyntaxError, which says where.
func notJSON(data []byte) error {
	var v struct{}
	err := json.Unmarshal(data, &v)
	if err == nil {
		err = errors.New("invalid JSON")
	}
	return fmt.Errorf("not JSON: %w", err)
}

// decode is UnmarshalJSON in one pass over data, into e, a zero Event, with
// objects and arrays nested at most maxDepth deep. valid is false when data
// is not one valid JSON value within that depth (e is then left in any
// state); otherwise err says why the value is not an event. typ and option, when the
// triggerType and triggerOption given equal them, are used without a copy.
// The raw fields, and the plain ASCII strings of id and beUUID, are cut from
// one copy of data, or from data itself when shared.
func (e *Event) decode(data []byte, maxDepth int, typ, option string, shared bool) (valid bool, err error) {
	i := skipSpace(data, 0)
	if i >= len(data) {
		return false, nil
	}
	if data[i] != '{' {
		end := scanValue(data, i, 0, maxDepth, false)
		if end < 0 || skipSpace(data, end) != len(data) {
			return false, nil
		}
		switch data[i] {
		case 'n':
			return true, errors.New("the event is JSON null, not an object")
		case '[':
			return true, errors.New("the event is a JSON array, not an object")
		case '"':
			return true, errors.New("the event is a JSON string, not an object")
		case 't', 'f':
			return true, errors.New("the event is a JSON bool, not an object")
		}
		return true, errors.New("the event is a JSON number, not an object")
	}
	if maxDepth < 1 {
		return false, nil
	}

	// A span is a key or value in data; plain when it is a string whose
	// inside is the string itself (scanString says so on the way).
	type span struct {
		start, end int
		plain      bool
	}
	var (
		fields [numFields]span // the last value of each contract field; end 0 when absent
		extra  []span          // the other members: key, then value
		next   int             // the field after the last one found
	)
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		i++
	} else {
		for {
			if i >= len(data) || data[i] != '"' {
				return false, nil
			}
			// The fields mostly come in the order Encode writes them: a
			// key that is the name of the field after the last one is
			// taken without a scan.
			key := span{start: i}
			f := -1
			if next < numFields {
				name := fieldNames[next]
				if end := i + len(name) + 2; end <= len(data) && data[end-1] == '"' && string(data[i+1:end-1]) == name {
					key.end, key.plain, f = end, true, next
				}
			}
			if f < 0 {
				if key.end, key.plain = scanString(data, i, false); key.end < 0 {
					return false, nil
				}
				if key.plain {
					f = fieldIndex(data[key.start+1 : key.end-1])
				} else {
					f = fieldIndex([]byte(unquote(data[key.start:key.end])))
				}
			}
			if i = skipSpace(data, key.end); i >= len(data) || data[i] != ':' {
				return false, nil
			}
			v := span{start: skipSpace(data, i+1)}
			if v.start < len(data) && data[v.start] == '"' {
				v.end, v.plain = scanString(data, v.start, false)
			} else {
				v.end = scanValue(data, v.start, 1, maxDepth, false)
			}
			if v.end < 0 {
				return false, nil
			}
			if f >= 0 {
				fields[f] = v
				next = f + 1
			} else {
				extra = append(extra, key, v)
			}
			if i = skipSpace(data, v.end); i >= len(data) {
				return false, nil
			}
			if data[i] == '}' {
				i++
				break
			}
			if data[i] != ',' {
				return false, nil
			}
			i = skipSpace(data, i+1)
		}
	}
	if skipSpace(data, i) != len(data) {
		return false, nil
	}

	var own []byte // the copy of data the raw fields are cut from
	if shared {
		own = data
	}
	raw := func(v span) json.RawMessage {
		if own == nil {
			own = bytes.Clone(data)
		}
		return own[v.start:v.end:v.end]
	}
	// str decodes the string field f at v. A plain value is a view of own,
	// not a copy: no slice handed out covers its bytes (the raw fields are
	// capped at their own ends), so they never change.
	str := func(v span, f int) (string, error) {
		if !v.plain {
			return decodeString(data[v.start:v.end], false, f)
		}
		if v.end-v.start == 2 {
			return "", nil
		}
		b := raw(v)
		return unsafe.String(&b[1], len(b)-2), nil
	}
	if len(extra) > 0 {
		e.Extra = make(map[string]json.RawMessage, len(extra)/2)
		for j := 0; j < len(extra); j += 2 {
			k, v := extra[j], extra[j+1]
			var name string
			if k.plain {
				name = string(data[k.start+1 : k.end-1])
			} else {
				name = unquote(data[k.start:k.end])
			}
			e.Extra[name] = raw(v)
		}
	}
	for f, v := range fields {
		val := data[v.start:v.end]
		if v.end == 0 || string(val) == "null" {
			continue
		}
		var err error
		switch f {
		case fieldID:
			e.ID, err = str(v, f)
		case fieldTriggerType:
			if !known(val, typ, &e.TriggerType) {
				e.TriggerType, err = decodeString(val, v.plain, f)
			}
		case fieldTriggerOption:
			if !known(val, option, &e.TriggerOption) {
				e.TriggerOption, err = decodeString(val, v.plain, f)
			}
		case fieldBEUUID:
			e.BEUUID, err = str(v, f)
		case fieldTimeStamp:
			if n, ok := jsonnum.PlainInt(val); ok {
				e.TimeStamp = n
			} else {
				err = unmarshalField(val, &e.TimeStamp, f)
			}
		case fieldDeadline:
			if n, ok := jsonnum.PlainInt(val); ok {
				e.Deadline = n
			} else {
				err = unmarshalField(val, &e.Deadline, f)
			}
		case fieldCustomer:
			e.Customer = raw(v)
		case fieldUser:
			e.User = raw(v)
		case fieldInput:
			e.Input = raw(v)
		}
		if err != nil {
			return true, err
		}
	}
	return true, nil
}

// known sets *dst to s when val is the JSON string of s without escapes, and
// reports whether it did.
func known(val []byte, s string, dst *string) bool {
	if s == "" || len(val) != len(s)+2 || val[0] != '"' || string(val[1:len(val)-1]) != s {
		return false
	}
	*dst = s
	return true
}

// decodeString decodes the JSON value val of contract field f; plain says
// val is a string whose inside is the string itself.
func decodeString(val []byte, plain bool, f int) (string, error) {
	if plain {
		return string(val[1 : len(val)-1]), nil
	}
	var s string
	err := unmarshalField(val, &s, f)
	return s, err
}

// unquote decodes a valid JSON string with escapes or non-ASCII bytes (invalid
// UTF-8 becomes U+FFFD, as encoding/json does).
func unquote(quoted []byte) string {
	var s string
	_ = json.Unmarshal(quoted, &s) // a valid JSON string: cannot fail
	return s
}

// unmarshalField decodes the JSON value val of contract field f into v with
// encoding/json, for the values the fast paths leave alone.
func unmarshalField(val []byte, v any, f int) error {
	if err := json.Unmarshal(val, v); err != nil {
		return fmt.Errorf("field %q: %s", fieldNames[f], typeErrorText(err))
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

// MarshalJSON encodes the event with its Extra fields. A field of Extra never
// overrides a contract field.
func (e *Event) MarshalJSON() ([]byte, error) {
	// The field names and a time stamp take about 120 bytes; a buffer
	// that fits the whole event is one allocation.
	size := 160 + len(e.ID) + len(e.TriggerType) + len(e.TriggerOption) + len(e.BEUUID) + len(e.Input) + len(e.Customer) + len(e.User)
	base, err := e.appendJSON(make([]byte, 0, size))
	if err != nil || len(e.Extra) == 0 {
		return base, err
	}
	all := make(map[string]json.RawMessage, len(e.Extra)+8)
	for k, v := range e.Extra {
		if fieldIndex([]byte(k)) >= 0 {
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

// AppendJSON appends the JSON of the event, the bytes Encode returns, to b
// and returns the extended buffer; on an error it returns b unchanged. An
// event without Extra fields is written straight into b: a caller that
// reuses its buffer encodes without allocating.
func (e *Event) AppendJSON(b []byte) ([]byte, error) {
	if len(e.Extra) > 0 {
		data, err := e.MarshalJSON()
		if err != nil {
			return b, err
		}
		return append(b, data...), nil
	}
	out, err := e.appendJSON(b)
	if err != nil {
		return b, err
	}
	return out, nil
}

// IDOf returns the id of the event document data, as the decoder reads
// it; "" when data is not a JSON object or its id is not a string. It
// gives no new id to an event without one.
func IDOf(data []byte) string {
	var v struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(data, &v) != nil {
		return ""
	}
	return v.ID
}

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

// origin is the Trigger-Origin of the work done under a context.
type origin struct {
	value string
	stamp func(subject string, data []byte) string
}

// WithOrigin returns a context that says the work done under it is caused by
// a trigger function, with the Trigger-Origin value to stamp on everything it
// sends. The publisher SDK reads it.
func WithOrigin(ctx context.Context, value string) context.Context {
	return &originCtx{Context: ctx, o: origin{value: value}}
}

// WithOriginStamp is [WithOrigin] for a worker that signs its loop flags:
// value is what the work shows outside the bus (webhook headers, command
// environments), and stamp returns the value for one message it sends on
// the bus, bound to its subject and body. stamp must not keep data: the
// publisher SDK reuses the buffer once the message is sent.
func WithOriginStamp(ctx context.Context, value string, stamp func(subject string, data []byte) string) context.Context {
	return &originCtx{Context: ctx, o: origin{value: value, stamp: stamp}}
}

// OriginContext holds the context [WithOriginStamp] returns, for a caller
// that keeps it inside a larger allocation of its own (a worker's call):
// Init, on a zero OriginContext, returns the context.
type OriginContext struct{ c originCtx }

// Init returns the context of [WithOriginStamp](ctx, value, stamp), held in
// o. o must be a zero OriginContext, and is initialized once.
func (o *OriginContext) Init(ctx context.Context, value string, stamp func(subject string, data []byte) string) context.Context {
	o.c = originCtx{Context: ctx, o: origin{value: value, stamp: stamp}}
	return &o.c
}

// originCtx carries an origin: one allocation, where context.WithValue
// would box the origin in a second.
type originCtx struct {
	context.Context
	o origin
}

func (c *originCtx) Value(key any) any {
	if _, ok := key.(originKey); ok {
		return &c.o
	}
	return c.Context.Value(key)
}

// OriginFrom returns the Trigger-Origin value of ctx to show outside the
// bus, if the work done under ctx is caused by a trigger function.
func OriginFrom(ctx context.Context) (string, bool) {
	o, ok := ctx.Value(originKey{}).(*origin)
	if !ok {
		return "", false
	}
	return o.value, o.value != ""
}

// OriginFor returns the Trigger-Origin value of ctx for a message with
// subject and data, if the work done under ctx is caused by a trigger
// function.
func OriginFor(ctx context.Context, subject string, data []byte) (string, bool) {
	o, ok := ctx.Value(originKey{}).(*origin)
	if !ok {
		return "", false
	}
	if o.stamp != nil {
		v := o.stamp(subject, data)
		return v, v != ""
	}
	return o.value, o.value != ""
}
