package lua

import (
	"unicode/utf8"
)

// canonicalMaxKeys is the most keys an object may have for appendCanonical
// to check it for duplicates; a larger one is left to the codec.
const canonicalMaxKeys = 64

// appendCanonical appends to b what the codec writes for the value it
// decodes from data (encode of decode), without building the value, and
// reports whether it could: ok is false for a document it leaves to the
// codec, and b is then unspecified. It accepts documents whose strings need
// no unescaping or replacing (no backslash, valid UTF-8 without U+2028 and
// U+2029) and whose objects have no duplicate key; numbers, which the
// codec writes back with the document's text, are copied.
//
// A call uses it for the input as the script received it: comparing that
// with the input after the call tells whether the script changed it.
func appendCanonical(b, data []byte, maxBytes int) ([]byte, bool) {
	if maxBytes > 0 && len(data) > maxBytes {
		return b, false
	}
	s := canonicalScan{data: data, out: b}
	if !s.value(0) {
		return b, false
	}
	s.space()
	if s.pos != len(data) {
		return b, false
	}
	return s.out, true
}

type canonicalScan struct {
	data []byte
	pos  int
	out  []byte
}

func (s *canonicalScan) space() { s.pos = spaceEnd(s.data, s.pos) }

func (s *canonicalScan) value(depth int) bool {
	s.space()
	if s.pos >= len(s.data) {
		return false
	}
	switch c := s.data[s.pos]; {
	case c == '{':
		return depth < jsonMaxDepth && s.object(depth)
	case c == '[':
		return depth < jsonMaxDepth && s.array(depth)
	case c == '"':
		_, _, ok := s.string()
		return ok
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return s.number()
	}
	return false
}

func (s *canonicalScan) literal(word string) bool {
	if len(s.data)-s.pos < len(word) || string(s.data[s.pos:s.pos+len(word)]) != word {
		return false
	}
	s.out = append(s.out, word...)
	s.pos += len(word)
	return true
}

func (s *canonicalScan) object(depth int) bool {
	s.pos++ // {
	s.out = append(s.out, '{')
	s.space()
	if s.pos < len(s.data) && s.data[s.pos] == '}' {
		s.pos++
		s.out = append(s.out, '}')
		return true
	}
	// The keys seen so far, as offsets of their bodies in data: a key
	// needs no unescaping, so equal keys have equal bytes.
	var seen [canonicalMaxKeys][2]int32
	n := 0
	for {
		s.space()
		if s.pos >= len(s.data) || s.data[s.pos] != '"' {
			return false
		}
		start, end, ok := s.string()
		if !ok || n == canonicalMaxKeys || int64(end) > 1<<31-1 {
			return false
		}
		key := s.data[start:end]
		for _, k := range seen[:n] {
			if string(s.data[k[0]:k[1]]) == string(key) {
				return false
			}
		}
		seen[n] = [2]int32{int32(start), int32(end)}
		n++
		s.space()
		if s.pos >= len(s.data) || s.data[s.pos] != ':' {
			return false
		}
		s.pos++
		s.out = append(s.out, ':')
		if !s.value(depth + 1) {
			return false
		}
		done, ok := s.separator('}')
		if !ok {
			return false
		}
		if done {
			return true
		}
	}
}

func (s *canonicalScan) array(depth int) bool {
	s.pos++ // [
	s.out = append(s.out, '[')
	s.space()
	if s.pos < len(s.data) && s.data[s.pos] == ']' {
		s.pos++
		s.out = append(s.out, ']')
		return true
	}
	for {
		if !s.value(depth + 1) {
			return false
		}
		done, ok := s.separator(']')
		if !ok {
			return false
		}
		if done {
			return true
		}
	}
}

// separator copies the comma or the closing end that follows a member.
func (s *canonicalScan) separator(end byte) (done, ok bool) {
	s.space()
	if s.pos >= len(s.data) {
		return false, false
	}
	switch c := s.data[s.pos]; c {
	case ',', end:
		s.pos++
		s.out = append(s.out, c)
		return c == end, true
	}
	return false, false
}

// string copies a string that the codec writes back as it is, and returns
// the offsets of its body.
func (s *canonicalScan) string() (start, end int, ok bool) {
	s.pos++ // "
	start = s.pos
	for s.pos < len(s.data) {
		c := s.data[s.pos]
		switch {
		case c == '"':
			end = s.pos
			s.pos++
			s.out = append(s.out, s.data[start-1:s.pos]...)
			return start, end, true
		case c == '\\' || c < 0x20:
			return 0, 0, false
		case c < utf8.RuneSelf:
			s.pos++
		default:
			r, size := utf8.DecodeRune(s.data[s.pos:])
			if (r == utf8.RuneError && size == 1) || r == '\u2028' || r == '\u2029' {
				return 0, 0, false
			}
			s.pos += size
		}
	}
	return 0, 0, false
}

// number copies a number: the codec writes it back with its text.
func (s *canonicalScan) number() bool {
	end, ok := numberEnd(s.data, s.pos)
	if !ok {
		return false
	}
	s.out = append(s.out, s.data[s.pos:end]...)
	s.pos = end
	return true
}
