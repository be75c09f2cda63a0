package lua

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

	lua "github.com/yuin/gopher-lua"

	"github.com/triggerbus/triggerbus/internal/jsonnum"
	"github.com/triggerbus/triggerbus/pkg/event"
)

// The JSON <-> Lua mapping of the Lua kind, used for p, for the modified
// input and by trigger.json, trigger.publish and trigger.request:
//
//   - an object is a table with string keys, in the order of the document;
//   - an array is a sequence, remembered as an array (outside the table, so
//     that a script may give it a metatable) so that it encodes back as an
//     array even when it is empty;
//   - null is trigger.null, a userdata, so that it survives the round trip;
//   - a number is a Lua number. When the float64 does not print back as the
//     document wrote it (an integer beyond 2^53, 1.0, 1e3), the text is
//     kept beside the table, and written back as long as the script leaves
//     that value as it was.
//
// A table encodes as an array when it is marked as one, or when its keys
// are the integers 1..n (a few holes are written as null); otherwise as an
// object, whose integer keys are written in decimal. Functions, userdata
// other than trigger.null, NaN, infinities, cycles and other key types are
// errors.

const (
	// jsonMaxDepth bounds the nesting of what is decoded and encoded, so
	// that a cycle in a table is an error rather than a stack overflow.
	jsonMaxDepth = 128
)

// numKey is where a number sits: a table and a key of it.
type numKey struct {
	t *lua.LTable
	k lua.LValue
}

// numberText is the text a number had in the document it was decoded from.
type numberText struct {
	v    lua.LNumber
	text string
}

// nullValue is the Value of the trigger.null userdata.
type nullValue struct{}

// jsonCodec holds what one call remembers about the JSON it decoded.
type jsonCodec struct {
	L        *lua.LState
	null     *lua.LUserData
	maxBytes int
	arrays   map[*lua.LTable]struct{}
	numbers  map[numKey]numberText
	// keys are object keys already decoded on this state, kept across
	// calls: events of one kind repeat theirs, so a key is made once.
	keys map[string]string
	// lazy settles p before it is encoded (lazy.go); nil for none.
	lazy *lazyEvent
}

const (
	// keysKeep bounds the codec's keys; a key longer than keyMaxKept is
	// not kept.
	keysKeep   = 128
	keyMaxKept = 32
)

// codecKeep is how many entries the codec's maps may have had for them
// to be cleared and kept for the next call rather than dropped.
const codecKeep = 1 << 10

func (c *jsonCodec) reset() {
	if len(c.arrays) > codecKeep {
		c.arrays = nil
	}
	if len(c.numbers) > codecKeep {
		c.numbers = nil
	}
	clear(c.arrays)
	clear(c.numbers)
}

func (c *jsonCodec) markArray(t *lua.LTable) {
	if c.arrays == nil {
		c.arrays = make(map[*lua.LTable]struct{})
	}
	c.arrays[t] = struct{}{}
}

// keepText records the document's text of the number stored at t[k].
func (c *jsonCodec) keepText(t *lua.LTable, k lua.LValue, v lua.LValue, text string) {
	if text == "" {
		return
	}
	if c.numbers == nil {
		c.numbers = make(map[numKey]numberText)
	}
	c.numbers[numKey{t, k}] = numberText{v: v.(lua.LNumber), text: text}
}

// decodeInto decodes data and stores it as t[k].
func (c *jsonCodec) decodeInto(t *lua.LTable, k lua.LValue, data []byte) error {
	v, text, err := c.decode(data)
	if err != nil {
		return err
	}
	t.RawSet(k, v)
	c.keepText(t, k, v, text)
	return nil
}

// decode decodes one JSON document, as encoding/json reads it (invalid
// UTF-8 and lone surrogates become U+FFFD). text is the number's text when
// the document is a number that does not print back as written.
func (c *jsonCodec) decode(data []byte) (v lua.LValue, text string, err error) {
	d := decoder{c: c, data: data}
	v, text, err = d.value(0)
	if err != nil {
		return nil, "", err
	}
	d.space()
	if d.pos < len(d.data) {
		return nil, "", d.errorf("data after the document")
	}
	return v, text, nil
}

// decoder is a JSON parser that builds Lua values directly.
type decoder struct {
	c    *jsonCodec
	data []byte
	pos  int
}

func (d *decoder) errorf(format string, args ...any) error {
	return fmt.Errorf("json: %s at offset %d", fmt.Sprintf(format, args...), d.pos)
}

func (d *decoder) unexpected() error {
	if d.pos >= len(d.data) {
		return d.errorf("unexpected end of the document")
	}
	return d.errorf("unexpected %q", d.data[d.pos])
}

func (d *decoder) space() { d.pos = spaceEnd(d.data, d.pos) }

// spaceEnd returns where the JSON white space at data[pos] ends.
func spaceEnd(data []byte, pos int) int {
	for pos < len(data) {
		switch data[pos] {
		case ' ', '\t', '\n', '\r':
			pos++
		default:
			return pos
		}
	}
	return pos
}

func (d *decoder) literal(word string, v lua.LValue) (lua.LValue, string, error) {
	if !bytes.HasPrefix(d.data[d.pos:], []byte(word)) {
		return nil, "", d.unexpected()
	}
	d.pos += len(word)
	return v, "", nil
}

func (d *decoder) value(depth int) (lua.LValue, string, error) {
	d.space()
	if d.pos >= len(d.data) {
		return nil, "", d.unexpected()
	}
	switch c := d.data[d.pos]; {
	case c == '{':
		if depth >= jsonMaxDepth {
			return nil, "", d.errorf("nested deeper than %d levels", jsonMaxDepth)
		}
		return d.object(depth)
	case c == '[':
		if depth >= jsonMaxDepth {
			return nil, "", d.errorf("nested deeper than %d levels", jsonMaxDepth)
		}
		return d.array(depth)
	case c == '"':
		s, err := d.string()
		return lua.LString(s), "", err
	case c == 't':
		return d.literal("true", lua.LTrue)
	case c == 'f':
		return d.literal("false", lua.LFalse)
	case c == 'n':
		return d.literal("null", d.c.null)
	case c == '-' || (c >= '0' && c <= '9'):
		return d.number()
	}
	return nil, "", d.unexpected()
}

func (d *decoder) object(depth int) (lua.LValue, string, error) {
	d.pos++ // {
	t := d.c.L.CreateTable(0, 4)
	d.space()
	if d.pos < len(d.data) && d.data[d.pos] == '}' {
		d.pos++
		return t, "", nil
	}
	for {
		d.space()
		if d.pos >= len(d.data) || d.data[d.pos] != '"' {
			return nil, "", d.unexpected()
		}
		key, err := d.key()
		if err != nil {
			return nil, "", err
		}
		d.space()
		if d.pos >= len(d.data) || d.data[d.pos] != ':' {
			return nil, "", d.unexpected()
		}
		d.pos++
		v, text, err := d.value(depth + 1)
		if err != nil {
			return nil, "", err
		}
		t.RawSetString(key, v)
		if text != "" { // before boxing the key
			d.c.keepText(t, lua.LString(key), v, text)
		}
		if done, err := d.separator('}'); err != nil {
			return nil, "", err
		} else if done {
			return t, "", nil
		}
	}
}

func (d *decoder) array(depth int) (lua.LValue, string, error) {
	d.pos++ // [
	t := d.c.L.CreateTable(4, 0)
	d.c.markArray(t)
	d.space()
	if d.pos < len(d.data) && d.data[d.pos] == ']' {
		d.pos++
		return t, "", nil
	}
	for i := 1; ; i++ {
		v, text, err := d.value(depth + 1)
		if err != nil {
			return nil, "", err
		}
		t.RawSetInt(i, v)
		if text != "" {
			d.c.keepText(t, lua.LNumber(i), v, text)
		}
		if done, err := d.separator(']'); err != nil {
			return nil, "", err
		} else if done {
			return t, "", nil
		}
	}
}

// separator reads what follows a member of an object or array: a comma
// (more members follow), or end, which closes it (done).
func (d *decoder) separator(end byte) (done bool, err error) {
	d.space()
	if d.pos >= len(d.data) {
		return false, d.unexpected()
	}
	switch d.data[d.pos] {
	case ',':
		d.pos++
		return false, nil
	case end:
		d.pos++
		return true, nil
	}
	return false, d.unexpected()
}

func (d *decoder) number() (lua.LValue, string, error) {
	start := d.pos
	var ok bool
	if d.pos, ok = numberEnd(d.data, d.pos); !ok {
		return nil, "", d.unexpected()
	}
	if n, ok := smallInt(d.data[start:d.pos]); ok {
		// Exact, and written back as it is: no text to keep.
		return lua.LNumber(n), "", nil
	}
	text := string(d.data[start:d.pos])
	f, err := strconv.ParseFloat(text, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return nil, "", d.errorf("number %s: %v", text, err)
	}
	if math.IsInf(f, 0) || string(event.AppendJSONFloat(nil, f)) != text {
		return lua.LNumber(f), text, nil
	}
	return lua.LNumber(f), "", nil
}

// smallInt reads b, a valid JSON number, when it is an integer of at most
// 15 digits other than -0: a float64 holds it exactly, and writes it back
// as the same digits.
func smallInt(b []byte) (int64, bool) {
	digits := len(b)
	if digits > 0 && b[0] == '-' {
		digits--
	}
	if digits > 15 || string(b) == "-0" {
		return 0, false
	}
	return jsonnum.PlainInt(b)
}

// numberEnd returns where the JSON number at data[pos] ends or, when it is
// not one, the offset of the byte that makes it invalid, and false.
func numberEnd(data []byte, pos int) (int, bool) {
	digits := func() int {
		n := 0
		for pos < len(data) && data[pos] >= '0' && data[pos] <= '9' {
			pos++
			n++
		}
		return n
	}
	if data[pos] == '-' {
		pos++
	}
	if pos < len(data) && data[pos] == '0' {
		pos++
	} else if digits() == 0 {
		return pos, false
	}
	if pos < len(data) && data[pos] == '.' {
		pos++
		if digits() == 0 {
			return pos, false
		}
	}
	if pos < len(data) && (data[pos] == 'e' || data[pos] == 'E') {
		pos++
		if pos < len(data) && (data[pos] == '+' || data[pos] == '-') {
			pos++
		}
		if digits() == 0 {
			return pos, false
		}
	}
	return pos, true
}

// key reads an object's key at d.pos: string, with a plain key (no
// escapes, ASCII) taken from the codec's keys.
func (d *decoder) key() (string, error) {
	start := d.pos + 1
	end := start
	for end < len(d.data) && end-start <= keyMaxKept {
		c := d.data[end]
		if c == '"' {
			raw := d.data[start:end]
			if k, ok := d.c.keys[string(raw)]; ok {
				d.pos = end + 1
				return k, nil
			}
			k := string(raw)
			if d.c.keys == nil {
				d.c.keys = make(map[string]string)
			}
			if len(d.c.keys) < keysKeep {
				d.c.keys[k] = k
			}
			d.pos = end + 1
			return k, nil
		}
		if c == '\\' || c < 0x20 || c >= utf8.RuneSelf {
			break
		}
		end++
	}
	return d.string()
}

// string reads a JSON string at d.pos.
func (d *decoder) string() (string, error) {
	d.pos++ // "
	start := d.pos
	// The common case: nothing to unescape or replace.
	for d.pos < len(d.data) {
		c := d.data[d.pos]
		if c == '"' {
			s := string(d.data[start:d.pos])
			d.pos++
			return s, nil
		}
		if c == '\\' || c < 0x20 || c >= utf8.RuneSelf {
			break
		}
		d.pos++
	}
	b := append([]byte(nil), d.data[start:d.pos]...)
	for d.pos < len(d.data) {
		c := d.data[d.pos]
		switch {
		case c == '"':
			d.pos++
			return string(b), nil
		case c < 0x20:
			return "", d.errorf("control character %q in a string", c)
		case c == '\\':
			if d.pos+1 >= len(d.data) {
				return "", d.unexpected()
			}
			e := d.data[d.pos+1]
			d.pos += 2
			switch e {
			case '"', '\\', '/':
				b = append(b, e)
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				r, ok := d.hex4()
				if !ok {
					return "", d.errorf("invalid \\u escape")
				}
				if utf16.IsSurrogate(r) {
					r = utf8.RuneError
					// A high surrogate followed by \uDC00-\uDFFF is one rune.
					if save := d.pos; d.pos+1 < len(d.data) && d.data[d.pos] == '\\' && d.data[d.pos+1] == 'u' {
						d.pos += 2
						if r2, ok := d.hex4(); ok {
							if rr := utf16.DecodeRune(d.runeBefore(save), r2); rr != utf8.RuneError {
								r = rr
							} else {
								d.pos = save
							}
						} else {
							d.pos = save
						}
					}
				}
				b = utf8.AppendRune(b, r)
			default:
				d.pos--
				return "", d.errorf("invalid escape \\%c", e)
			}
		case c < utf8.RuneSelf:
			b = append(b, c)
			d.pos++
		default:
			r, size := utf8.DecodeRune(d.data[d.pos:])
			b = utf8.AppendRune(b, r)
			d.pos += size
		}
	}
	return "", d.unexpected()
}

// runeBefore returns the rune of the \uXXXX escape that ends at end.
func (d *decoder) runeBefore(end int) rune {
	r, _ := readHex4(d.data[end-4 : end])
	return r
}

// hex4 reads the four hex digits of a \u escape.
func (d *decoder) hex4() (rune, bool) {
	if d.pos+4 > len(d.data) {
		return 0, false
	}
	r, ok := readHex4(d.data[d.pos : d.pos+4])
	if ok {
		d.pos += 4
	}
	return r, ok
}

func readHex4(b []byte) (rune, bool) {
	var r rune
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// encode returns the JSON of v.
func (c *jsonCodec) encode(v lua.LValue) ([]byte, error) {
	return c.appendValue(nil, v, "", 0)
}

// encodeAt returns the JSON of t[k], with the document's text of a number
// that is still the number decoded there.
func (c *jsonCodec) encodeAt(t *lua.LTable, k lua.LValue) ([]byte, error) {
	return c.appendAt(nil, t, k)
}

// appendAt is encodeAt appending to b.
func (c *jsonCodec) appendAt(b []byte, t *lua.LTable, k lua.LValue) ([]byte, error) {
	v := t.RawGet(k)
	return c.appendValue(b, v, c.textOf(t, k, v), 0)
}

func (c *jsonCodec) textOf(t *lua.LTable, k, v lua.LValue) string {
	if len(c.numbers) == 0 {
		return ""
	}
	n, ok := v.(lua.LNumber)
	if !ok {
		return ""
	}
	if nt, ok := c.numbers[numKey{t, k}]; ok && nt.v == n {
		return nt.text
	}
	return ""
}

func (c *jsonCodec) appendValue(b []byte, v lua.LValue, text string, depth int) ([]byte, error) {
	if c.maxBytes > 0 && len(b) > c.maxBytes {
		return nil, fmt.Errorf("json: document larger than the limit of %d bytes", c.maxBytes)
	}
	switch v := v.(type) {
	case *lua.LNilType:
		return append(b, "null"...), nil
	case lua.LBool:
		return strconv.AppendBool(b, bool(v)), nil
	case lua.LNumber:
		if text != "" {
			return append(b, text...), nil
		}
		f := float64(v)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("json: cannot encode the number %v", f)
		}
		return event.AppendJSONFloat(b, f), nil
	case lua.LString:
		return appendString(b, string(v)), nil
	case *lua.LUserData:
		if _, ok := v.Value.(nullValue); ok {
			return append(b, "null"...), nil
		}
		return nil, errors.New("json: cannot encode a userdata")
	case *lua.LTable:
		if depth >= jsonMaxDepth {
			return nil, fmt.Errorf("json: nested deeper than %d levels (a table that contains itself?)", jsonMaxDepth)
		}
		return c.appendTable(b, v, depth+1)
	}
	return nil, fmt.Errorf("json: cannot encode a %s", v.Type())
}

func (c *jsonCodec) appendTable(b []byte, t *lua.LTable, depth int) ([]byte, error) {
	_, marked := c.arrays[t]
	return c.appendTableWith(b, t, depth, marked, c.appendValue)
}

// appendTableWith writes t as a JSON array (keys 1..n, dense enough) or
// object; its values go through value, and an empty t is [] when
// emptyArray says so, else {}.
func (c *jsonCodec) appendTableWith(b []byte, t *lua.LTable, depth int, emptyArray bool,
	value func(b []byte, v lua.LValue, text string, depth int) ([]byte, error)) ([]byte, error) {
	if err := c.lazy.settle(t); err != nil {
		return nil, err
	}
	count, maxInt, onlyInts := 0, 0, true
	for k, _ := t.Next(lua.LNil); k != lua.LNil; k, _ = t.Next(k) {
		count++
		if n, ok := k.(lua.LNumber); ok && onlyInts && n >= 1 && float64(n) == math.Trunc(float64(n)) && n < lua.LNumber(lua.MaxArrayIndex) {
			maxInt = max(maxInt, int(n))
			continue
		}
		onlyInts = false
	}
	if count == 0 {
		if emptyArray {
			return append(b, "[]"...), nil
		}
		return append(b, "{}"...), nil
	}
	if onlyInts && maxInt <= 2*count+8 {
		b = append(b, '[')
		for i := 1; i <= maxInt; i++ {
			if i > 1 {
				b = append(b, ',')
			}
			k := lua.LNumber(i)
			v := t.RawGetInt(i)
			var err error
			if b, err = value(b, v, c.textOf(t, k, v), depth); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	}
	b = append(b, '{')
	first := true
	for k, v := t.Next(lua.LNil); k != lua.LNil; k, v = t.Next(k) {
		if !first {
			b = append(b, ',')
		}
		first = false
		switch k := k.(type) {
		case lua.LString:
			b = appendString(b, string(k))
		case lua.LNumber:
			f := float64(k)
			if math.IsNaN(f) || math.IsInf(f, 0) {
				return nil, fmt.Errorf("json: cannot encode the key %v", f)
			}
			b = append(b, '"')
			b = event.AppendJSONFloat(b, f)
			b = append(b, '"')
		default:
			return nil, fmt.Errorf("json: cannot encode a table key that is a %s", k.Type())
		}
		b = append(b, ':')
		var err error
		if b, err = value(b, v, c.textOf(t, k, v), depth); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

// appendString writes s as a JSON string. Bytes that are not UTF-8 become
// U+FFFD, as with encoding/json; HTML characters are left alone.
func appendString(b []byte, s string) []byte { return event.AppendJSONString(b, s, false) }
