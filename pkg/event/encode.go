package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"unicode/utf8"
)

// The encoders of this file write the same JSON as encoding/json would for
// the Event and Decision structs (field order, omitempty, HTML-safe string
// escaping, compacted raw fields), without reflection: they are on the path
// of every event a publisher sends and every decision a worker answers.

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, escaped like encoding/json with
// HTML escaping on.
func appendString(b []byte, s string) []byte { return AppendJSONString(b, s, true) }

// AppendJSONString appends s to b as a JSON string, escaped as encoding/json
// does: control characters, quote and backslash, U+2028 and U+2029, bytes
// that are not UTF-8 as U+FFFD, and with escapeHTML also <, > and &.
func AppendJSONString(b []byte, s string, escapeHTML bool) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if i+8 <= len(s) {
			// Skip eight plain bytes at a time, or to the first byte
			// that needs a look (see zeroBytes in scan.go); w&highs marks
			// the bytes that are not ASCII.
			w := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
				uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
			m := zeroBytes(w^'"'*ones) | zeroBytes(w^'\\'*ones) | (w-0x20*ones)&^w&highs | w&highs
			if escapeHTML {
				m |= zeroBytes(w^'<'*ones) | zeroBytes(w^'>'*ones) | zeroBytes(w^'&'*ones)
			}
			if m == 0 {
				i += 8
				continue
			}
			i += bits.TrailingZeros64(m) >> 3
		}
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && (!escapeHTML || (c != '<' && c != '>' && c != '&')) {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendRaw appends a raw JSON value compacted and HTML-escaped, as
// encoding/json does for a json.RawMessage; invalid JSON is an error.
func appendRaw(b []byte, raw json.RawMessage) ([]byte, error) {
	if scanValue(raw, 0, 0, maxNesting, true) == len(raw) {
		// Valid, compact and with nothing to escape (the compact scan of
		// scan.go checks all three in one pass): as it is. Raw fields
		// are mostly written by encoders, so this is the common case, at
		// a fraction of json.Compact's cost.
		return append(b, raw...), nil
	}
	n := len(b)
	buf := bytes.NewBuffer(b)
	if err := json.Compact(buf, raw); err != nil {
		return b[:n], err
	}
	b = buf.Bytes()
	if bytes.ContainsAny(b[n:], "<>&\u2028\u2029") {
		compacted := bytes.Clone(b[n:])
		buf = bytes.NewBuffer(b[:n])
		json.HTMLEscape(buf, compacted)
		b = buf.Bytes()
	}
	return b, nil
}

// appendFloat appends f as encoding/json writes a float64.
func appendFloat(b []byte, f float64) ([]byte, error) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return b, errors.New("event: unsupported float value")
	}
	return AppendJSONFloat(b, f), nil
}

// AppendJSONFloat appends f to b as encoding/json writes a float64:
// integers without a fraction or exponent below 1e21, exponents for very
// small and very large numbers. f must be finite: encoding/json refuses
// infinities and NaN, which this writes as strconv does.
func AppendJSONFloat(b []byte, f float64) []byte {
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// Clean up e-09 to e-9, as encoding/json does.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// appendJSON writes an event without Extra fields, in one pass of appends.
func (e *Event) appendJSON(b []byte) ([]byte, error) {
	n := len(b)
	b = append(b, '{')
	if e.ID != "" {
		b = append(comma(b, n), `"id":`...)
		b = appendString(b, e.ID)
	}
	if e.TriggerType != "" {
		b = append(comma(b, n), `"triggerType":`...)
		b = appendString(b, e.TriggerType)
	}
	if e.TriggerOption != "" {
		b = append(comma(b, n), `"triggerOption":`...)
		b = appendString(b, e.TriggerOption)
	}
	if e.TimeStamp != 0 {
		b = append(comma(b, n), `"timeStamp":`...)
		b = strconv.AppendInt(b, e.TimeStamp, 10)
	}
	if e.Deadline != 0 {
		b = append(comma(b, n), `"deadline":`...)
		b = strconv.AppendInt(b, e.Deadline, 10)
	}
	if e.BEUUID != "" {
		b = append(comma(b, n), `"beUUID":`...)
		b = appendString(b, e.BEUUID)
	}
	var err error
	if len(e.Customer) > 0 {
		b = append(comma(b, n), `"customer":`...)
		if b, err = appendRaw(b, e.Customer); err != nil {
			return nil, fmt.Errorf("event: field customer: %w", err)
		}
	}
	if len(e.User) > 0 {
		b = append(comma(b, n), `"user":`...)
		if b, err = appendRaw(b, e.User); err != nil {
			return nil, fmt.Errorf("event: field user: %w", err)
		}
	}
	if len(e.Input) > 0 {
		b = append(comma(b, n), `"input":`...)
		if b, err = appendRaw(b, e.Input); err != nil {
			return nil, fmt.Errorf("event: field input: %w", err)
		}
	}
	return append(b, '}'), nil
}

// comma appends the comma before a field of the object that starts at
// b[n], unless the field is its first.
func comma(b []byte, n int) []byte {
	if len(b) > n+1 {
		b = append(b, ',')
	}
	return b
}

// appendJSON writes a decision.
func (d *Decision) appendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"id":`...)
	b = appendString(b, d.ID)
	b = append(b, `,"allowed":`...)
	b = strconv.AppendBool(b, d.Allowed)
	if d.Code != "" {
		b = append(b, `,"code":`...)
		b = appendString(b, d.Code)
	}
	if d.Message != "" {
		b = append(b, `,"message":`...)
		b = appendString(b, d.Message)
	}
	if d.Function != "" {
		b = append(b, `,"function":`...)
		b = appendString(b, d.Function)
	}
	var err error
	if len(d.Input) > 0 {
		b = append(b, `,"input":`...)
		if b, err = appendRaw(b, d.Input); err != nil {
			return nil, err
		}
	}
	b = append(b, `,"modified":`...)
	b = strconv.AppendBool(b, d.Modified)
	b = append(b, `,"functions":[`...)
	for i := range d.Functions {
		f := &d.Functions[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"ref":`...)
		b = appendString(b, f.Ref)
		b = append(b, `,"result":`...)
		b = appendString(b, f.Result)
		b = append(b, `,"ms":`...)
		if b, err = appendFloat(b, f.Ms); err != nil {
			return nil, err
		}
		if f.Shadow {
			b = append(b, `,"shadow":true`...)
		}
		if f.Error != "" {
			b = append(b, `,"error":`...)
			b = appendString(b, f.Error)
		}
		b = append(b, '}')
	}
	b = append(b, ']')
	if d.Revision != 0 {
		b = append(b, `,"revision":`...)
		b = strconv.AppendUint(b, d.Revision, 10)
	}
	return append(b, '}'), nil
}
