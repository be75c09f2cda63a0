package event

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// The decision decoder reads a PRE reply in one pass, without reflection,
// and gives what encoding/json's Unmarshal into a [Decision] gives: the
// same fields (names matched without regard to case, the last of a
// repeated name winning, unknown names skipped), the same strings (escapes
// and invalid UTF-8 read as Unmarshal reads them), and an error whenever
// Unmarshal has one (bad syntax anywhere, nesting deeper than 10000, a
// value of the wrong type). Only the error texts differ. FuzzDecodeDecision
// holds it to that.

// maxDecisionDepth is encoding/json's nesting limit.
const maxDecisionDepth = 10000

// decisionDecoder is the state of one decoding.
type decisionDecoder struct {
	data []byte
	i    int
	buf  []byte // scratch for strings with escapes or non-ASCII bytes

	id    string             // an id equal to it takes this string
	spare *[1]FunctionResult // backs the first functions array, if not nil
}

func (p *decisionDecoder) syntaxErr(what string) error {
	if p.i >= len(p.data) {
		return errors.New("unexpected end of JSON input")
	}
	return fmt.Errorf("invalid character %q %s (offset %d)", p.data[p.i], what, p.i)
}

func typeErr(what, field string) error {
	return fmt.Errorf("cannot read a JSON %s into %s", what, field)
}

func (p *decisionDecoder) space() {
	for p.i < len(p.data) {
		switch p.data[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// decodeDecision decodes data into d, which should be zero.
func decodeDecision(data []byte, d *Decision) error {
	return decodeDecisionFor(data, d, "", nil)
}

// decodeDecisionFor is decodeDecision with two savings for a reply whose
// id is known: an id equal to id is given id's string, and spare, if not
// nil, backs the first functions array instead of a new one (a decision
// and its one function in one allocation).
func decodeDecisionFor(data []byte, d *Decision, id string, spare *[1]FunctionResult) error {
	p := decisionDecoder{data: data, id: id, spare: spare}
	p.space()
	if p.i >= len(p.data) {
		return p.syntaxErr("")
	}
	var err error
	switch p.data[p.i] {
	case '{':
		err = p.decision(d)
	case 'n':
		err = p.literal("null")
	default:
		kind := p.kind()
		if err = p.skip(1); err == nil {
			err = typeErr(kind, "a decision")
		}
	}
	if err != nil {
		return err
	}
	p.space()
	if p.i < len(p.data) {
		return p.syntaxErr("after top-level value")
	}
	return nil
}

// kind names the JSON value at p.i.
func (p *decisionDecoder) kind() string {
	switch c := p.data[p.i]; {
	case c == '"':
		return "string"
	case c == '[':
		return "array"
	case c == '{':
		return "object"
	case c == 't' || c == 'f':
		return "bool"
	case c == 'n':
		return "null"
	default:
		return "number"
	}
}

// The names of the fields, matched like encoding/json matches them.
var (
	decisionFields = [...][]byte{[]byte("id"), []byte("allowed"), []byte("code"), []byte("message"), []byte("function"),
		[]byte("input"), []byte("modified"), []byte("functions"), []byte("revision")}
	resultFields = [...][]byte{[]byte("ref"), []byte("result"), []byte("ms"), []byte("shadow"), []byte("error")}
)

func fieldOf(names [][]byte, key []byte) int {
	for i, n := range names {
		if bytes.Equal(key, n) {
			return i
		}
	}
	for i, n := range names {
		if bytes.EqualFold(key, n) {
			return i
		}
	}
	return -1
}

// object reads an object whose first byte is at p.i, calling field for
// each member with p.i at its value; field must read the value.
func (p *decisionDecoder) object(depth int, field func(key []byte) error) error {
	if depth > maxDecisionDepth {
		return errors.New("exceeded max depth")
	}
	p.i++ // '{'
	p.space()
	if p.i < len(p.data) && p.data[p.i] == '}' {
		p.i++
		return nil
	}
	for {
		if p.i >= len(p.data) || p.data[p.i] != '"' {
			return p.syntaxErr("looking for beginning of object key string")
		}
		key, err := p.stringBytes()
		if err != nil {
			return err
		}
		p.space()
		if p.i >= len(p.data) || p.data[p.i] != ':' {
			return p.syntaxErr("after object key")
		}
		p.i++
		p.space()
		if p.i >= len(p.data) {
			return p.syntaxErr("")
		}
		if err := field(key); err != nil {
			return err
		}
		if more, err := p.more('}', "after object key:value pair"); !more {
			return err
		}
	}
}

// more passes what follows a member or an element: true after a comma,
// false (and a nil error) after the closing byte end.
func (p *decisionDecoder) more(end byte, what string) (bool, error) {
	p.space()
	if p.i >= len(p.data) {
		return false, p.syntaxErr("")
	}
	switch p.data[p.i] {
	case ',':
		p.i++
		p.space()
		return true, nil
	case end:
		p.i++
		return false, nil
	}
	return false, p.syntaxErr(what)
}

// array reads an array whose first byte is at p.i, calling elem for each
// element with p.i at it; elem must read the element.
func (p *decisionDecoder) array(depth int, elem func() error) error {
	if depth > maxDecisionDepth {
		return errors.New("exceeded max depth")
	}
	p.i++ // '['
	p.space()
	if p.i < len(p.data) && p.data[p.i] == ']' {
		p.i++
		return nil
	}
	for {
		if p.i >= len(p.data) {
			return p.syntaxErr("")
		}
		if err := elem(); err != nil {
			return err
		}
		if more, err := p.more(']', "after array element"); !more {
			return err
		}
	}
}

func (p *decisionDecoder) decision(d *Decision) error {
	return p.object(1, func(key []byte) error {
		switch fieldOf(decisionFields[:], key) {
		case 0:
			if p.id != "" && p.data[p.i] == '"' {
				return p.idField(&d.ID)
			}
			return p.stringField(&d.ID, "id")
		case 1:
			return p.boolField(&d.Allowed, "allowed")
		case 2:
			return p.internField(&d.Code, "code")
		case 3:
			return p.stringField(&d.Message, "message")
		case 4:
			return p.stringField(&d.Function, "function")
		case 5:
			// A RawMessage takes the value as it is, null included.
			start := p.i
			if err := p.skip(2); err != nil {
				return err
			}
			d.Input = append(d.Input[:0:0], p.data[start:p.i]...)
			return nil
		case 6:
			return p.boolField(&d.Modified, "modified")
		case 7:
			return p.functions(d)
		case 8:
			return p.uintField(&d.Revision, "revision")
		default:
			return p.skip(2)
		}
	})
}

// functions reads the functions array as encoding/json reads a slice: its
// elements are read into the slice's existing elements (so a repeated
// "functions" merges into the earlier one's), the slice is cut to the
// array's length, an empty array is a new empty slice, null is nil.
func (p *decisionDecoder) functions(d *Decision) error {
	switch p.data[p.i] {
	case 'n':
		if err := p.literal("null"); err != nil {
			return err
		}
		d.Functions = nil
		return nil
	case '[':
	default:
		kind := p.kind()
		if err := p.skip(2); err != nil {
			return err
		}
		return typeErr(kind, "functions")
	}
	fns := d.Functions
	n := 0
	err := p.array(2, func() error {
		if n >= cap(fns) {
			// A larger capacity than encoding/json's growth changes no
			// result: an element past the length is stale (left by an
			// earlier "functions") only below encoding/json's capacity too.
			switch {
			case cap(fns) == 0 && p.spare != nil:
				fns, p.spare = p.spare[:], nil
			case cap(fns) == 0:
				fns = make([]FunctionResult, 1, 4)
			default:
				fns = append(fns, FunctionResult{})
			}
		} else if n >= len(fns) {
			fns = fns[:n+1]
		}
		n++
		return p.result(&fns[n-1])
	})
	if err != nil {
		return err
	}
	if n == 0 {
		d.Functions = []FunctionResult{}
	} else {
		d.Functions = fns[:n]
	}
	return nil
}

func (p *decisionDecoder) result(r *FunctionResult) error {
	switch p.data[p.i] {
	case 'n':
		return p.literal("null")
	case '{':
	default:
		kind := p.kind()
		if err := p.skip(3); err != nil {
			return err
		}
		return typeErr(kind, "a function result")
	}
	return p.object(3, func(key []byte) error {
		switch fieldOf(resultFields[:], key) {
		case 0:
			return p.stringField(&r.Ref, "ref")
		case 1:
			return p.internField(&r.Result, "result")
		case 2:
			return p.floatField(&r.Ms, "ms")
		case 3:
			return p.boolField(&r.Shadow, "shadow")
		case 4:
			return p.stringField(&r.Error, "error")
		default:
			return p.skip(4)
		}
	})
}

// The fields' readers leave the field as it was on null, as encoding/json
// does. A value of the wrong type is an error whatever it holds; it is
// still checked, at the depth of a function result's field (deeper than a
// decision's: only which error is returned can differ).

func (p *decisionDecoder) stringField(dst *string, name string) error {
	switch p.data[p.i] {
	case '"':
		b, err := p.stringBytes()
		if err != nil {
			return err
		}
		*dst = string(b)
		return nil
	case 'n':
		return p.literal("null")
	}
	return p.wrongType(name)
}

// idField is stringField for the id, at a string: one equal to p.id is
// given p.id's string.
func (p *decisionDecoder) idField(dst *string) error {
	b, err := p.stringBytes()
	if err != nil {
		return err
	}
	if string(b) == p.id {
		*dst = p.id
	} else {
		*dst = string(b)
	}
	return nil
}

// internField is stringField for the fields whose values are mostly the
// outcomes and codes triggerbus sets: those are not allocated again.
func (p *decisionDecoder) internField(dst *string, name string) error {
	if p.data[p.i] != '"' {
		return p.stringField(dst, name)
	}
	b, err := p.stringBytes()
	if err != nil {
		return err
	}
	switch string(b) {
	case OutcomeSuccess:
		*dst = OutcomeSuccess
	case OutcomeContinue:
		*dst = OutcomeContinue
	case OutcomeFailed:
		*dst = OutcomeFailed
	case OutcomeError:
		*dst = OutcomeError
	case OutcomeTimeout:
		*dst = OutcomeTimeout
	case CodeNoTrigger:
		*dst = CodeNoTrigger
	case CodeNoWorker:
		*dst = CodeNoWorker
	case CodeHandlerError:
		*dst = CodeHandlerError
	case CodeExpired:
		*dst = CodeExpired
	case CodeShuttingDown:
		*dst = CodeShuttingDown
	case CodeBadRequest:
		*dst = CodeBadRequest
	default:
		*dst = string(b)
	}
	return nil
}

func (p *decisionDecoder) boolField(dst *bool, name string) error {
	switch p.data[p.i] {
	case 't':
		*dst = true
		return p.literal("true")
	case 'f':
		*dst = false
		return p.literal("false")
	case 'n':
		return p.literal("null")
	}
	return p.wrongType(name)
}

// numberField reads a number field's value: its bytes, or nil for null.
func (p *decisionDecoder) numberField(name string) ([]byte, error) {
	c := p.data[p.i]
	if c == 'n' {
		return nil, p.literal("null")
	}
	if c != '-' && (c < '0' || c > '9') {
		return nil, p.wrongType(name)
	}
	return p.number()
}

func (p *decisionDecoder) uintField(dst *uint64, name string) error {
	num, err := p.numberField(name)
	if num == nil {
		return err
	}
	v, err := strconv.ParseUint(string(num), 10, 64)
	if err != nil {
		return typeErr("number "+string(num), name)
	}
	*dst = v
	return nil
}

func (p *decisionDecoder) floatField(dst *float64, name string) error {
	num, err := p.numberField(name)
	if num == nil {
		return err
	}
	v, err := strconv.ParseFloat(string(num), 64)
	if err != nil {
		return typeErr("number "+string(num), name)
	}
	*dst = v
	return nil
}

// wrongType checks and passes a value of the wrong type for the field name,
// and returns the type error.
func (p *decisionDecoder) wrongType(name string) error {
	kind := p.kind()
	if err := p.skip(4); err != nil {
		return err
	}
	return typeErr(kind, name)
}

func (p *decisionDecoder) literal(lit string) error {
	for j := 0; j < len(lit); j++ {
		if p.i >= len(p.data) || p.data[p.i] != lit[j] {
			return p.syntaxErr("in literal " + lit)
		}
		p.i++
	}
	return nil
}

// number reads a JSON number and returns its bytes.
func (p *decisionDecoder) number() ([]byte, error) {
	start := p.i
	digits := func() int {
		n := 0
		for p.i < len(p.data) && p.data[p.i] >= '0' && p.data[p.i] <= '9' {
			p.i++
			n++
		}
		return n
	}
	if p.i < len(p.data) && p.data[p.i] == '-' {
		p.i++
	}
	switch {
	case p.i < len(p.data) && p.data[p.i] == '0':
		p.i++
	case p.i < len(p.data) && p.data[p.i] >= '1' && p.data[p.i] <= '9':
		digits()
	default:
		return nil, p.syntaxErr("in numeric literal")
	}
	if p.i < len(p.data) && p.data[p.i] == '.' {
		p.i++
		if digits() == 0 {
			return nil, p.syntaxErr("after decimal point in numeric literal")
		}
	}
	if p.i < len(p.data) && (p.data[p.i] == 'e' || p.data[p.i] == 'E') {
		p.i++
		if p.i < len(p.data) && (p.data[p.i] == '+' || p.data[p.i] == '-') {
			p.i++
		}
		if digits() == 0 {
			return nil, p.syntaxErr("in exponent of numeric literal")
		}
	}
	return p.data[start:p.i], nil
}

// stringBytes reads the string whose opening quote is at p.i and returns
// its value: a slice of the input when it has no escape and is ASCII,
// otherwise p.buf, valid until the next call.
func (p *decisionDecoder) stringBytes() ([]byte, error) {
	p.i++ // '"'
	start := p.i
	for p.i < len(p.data) {
		c := p.data[p.i]
		switch {
		case c == '"':
			p.i++
			return p.data[start : p.i-1], nil
		case c == '\\' || c >= utf8.RuneSelf:
			p.i = start
			return p.unquote()
		case c < ' ':
			return nil, p.syntaxErr("in string literal")
		}
		p.i++
	}
	return nil, p.syntaxErr("")
}

// unquote reads the rest of a string (from p.i, after its opening quote)
// as encoding/json does: escapes resolved, an unpaired surrogate escape and
// each byte of invalid UTF-8 read as U+FFFD.
func (p *decisionDecoder) unquote() ([]byte, error) {
	b := p.buf[:0]
	for p.i < len(p.data) {
		c := p.data[p.i]
		switch {
		case c == '"':
			p.i++
			p.buf = b
			return b, nil
		case c < ' ':
			return nil, p.syntaxErr("in string literal")
		case c == '\\':
			if p.i+1 >= len(p.data) {
				p.i = len(p.data)
				return nil, p.syntaxErr("")
			}
			p.i++
			switch e := p.data[p.i]; e {
			case '"', '\\', '/':
				b = append(b, e)
				p.i++
			case 'b':
				b = append(b, '\b')
				p.i++
			case 'f':
				b = append(b, '\f')
				p.i++
			case 'n':
				b = append(b, '\n')
				p.i++
			case 'r':
				b = append(b, '\r')
				p.i++
			case 't':
				b = append(b, '\t')
				p.i++
			case 'u':
				p.i++
				r, err := p.hex4()
				if err != nil {
					return nil, err
				}
				if utf16.IsSurrogate(r) {
					// A pair when a \u escape follows that makes one;
					// otherwise U+FFFD, and the next escape is read alone.
					dec := utf8.RuneError
					if p.i+1 < len(p.data) && p.data[p.i] == '\\' && p.data[p.i+1] == 'u' {
						if r2, ok := hex4At(p.data, p.i+2); ok {
							if pair := utf16.DecodeRune(r, r2); pair != utf8.RuneError {
								dec = pair
								p.i += 6
							}
						}
					}
					r = dec
				}
				b = utf8.AppendRune(b, r)
			default:
				return nil, p.syntaxErr("in string escape code")
			}
		case c < utf8.RuneSelf:
			b = append(b, c)
			p.i++
		default:
			r, size := utf8.DecodeRune(p.data[p.i:])
			if r == utf8.RuneError && size == 1 {
				b = utf8.AppendRune(b, utf8.RuneError)
			} else {
				b = append(b, p.data[p.i:p.i+size]...)
			}
			p.i += size
		}
	}
	return nil, p.syntaxErr("")
}

// hex4 reads the four hex digits of a \u escape at p.i.
func (p *decisionDecoder) hex4() (rune, error) {
	for j := range 4 {
		if p.i+j >= len(p.data) {
			p.i = len(p.data)
			return 0, p.syntaxErr("")
		}
		if _, ok := hexVal(p.data[p.i+j]); !ok {
			p.i += j
			return 0, p.syntaxErr("in \\u hexadecimal character escape")
		}
	}
	r, _ := hex4At(p.data, p.i)
	p.i += 4
	return r, nil
}

func hex4At(data []byte, i int) (rune, bool) {
	if i+4 > len(data) {
		return 0, false
	}
	var r rune
	for _, c := range data[i : i+4] {
		v, ok := hexVal(c)
		if !ok {
			return 0, false
		}
		r = r<<4 | rune(v)
	}
	return r, true
}

func hexVal(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// skip checks and passes the value at p.i, at nesting depth depth when it
// is an object or array.
func (p *decisionDecoder) skip(depth int) error {
	if p.i >= len(p.data) {
		return p.syntaxErr("")
	}
	switch c := p.data[p.i]; {
	case c == '"':
		return p.skipString()
	case c == '{':
		return p.object(depth, func([]byte) error { return p.skip(depth + 1) })
	case c == '[':
		return p.array(depth, func() error { return p.skip(depth + 1) })
	case c == 't':
		return p.literal("true")
	case c == 'f':
		return p.literal("false")
	case c == 'n':
		return p.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		_, err := p.number()
		return err
	}
	return p.syntaxErr("looking for beginning of value")
}

// skipString checks and passes a string without decoding it.
func (p *decisionDecoder) skipString() error {
	p.i++ // '"'
	for p.i < len(p.data) {
		c := p.data[p.i]
		switch {
		case c == '"':
			p.i++
			return nil
		case c < ' ':
			return p.syntaxErr("in string literal")
		case c == '\\':
			p.i++
			if p.i >= len(p.data) {
				return p.syntaxErr("")
			}
			switch p.data[p.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				p.i++
			case 'u':
				p.i++
				if _, err := p.hex4(); err != nil {
					return err
				}
			default:
				return p.syntaxErr("in string escape code")
			}
		default:
			p.i++
		}
	}
	return p.syntaxErr("")
}
