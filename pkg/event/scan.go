package event

import (
	"encoding/binary"
	"math/bits"
)

// A validating scanner for the one pass of [Event.UnmarshalJSON] and
// [Decode]: it accepts exactly what encoding/json's Valid accepts (the fuzz
// targets hold it to that) and bounds the nesting on the way. Each function
// returns the index just past what it scanned, or -1 when data is not valid
// JSON there or nests deeper than the limit; the callers then ask the slow
// path (checkDepth, encoding/json) for the error to report.
//
// With compact set the scanner also refuses JSON that json.Compact with
// HTML escaping would change: white space between tokens, and <, >, & or
// U+2028 and U+2029 (whose UTF-8 starts with 0xE2) in strings. The encoders
// copy a raw field that passes as it is, and leave the others to
// encoding/json, which also says why a value is not JSON.

// maxNesting is encoding/json's own nesting limit: Valid refuses deeper
// JSON whatever our limit.
const maxNesting = 10000

// scanValue scans the JSON value at data[i] (white space skipped first,
// unless compact); depth is the nesting of its container, maxDepth the
// deepest allowed.
func scanValue(data []byte, i, depth, maxDepth int, compact bool) int {
	if i = skipGap(data, i, compact); i >= len(data) {
		return -1
	}
	switch c := data[i]; {
	case c == '"':
		i, _ = scanString(data, i, compact)
		return i
	case c == '{':
		return scanObject(data, i, depth+1, maxDepth, compact)
	case c == '[':
		return scanArray(data, i, depth+1, maxDepth, compact)
	case c == '-' || c >= '0' && c <= '9':
		return scanNumber(data, i)
	case c == 't':
		return scanLiteral(data, i, "true")
	case c == 'f':
		return scanLiteral(data, i, "false")
	case c == 'n':
		return scanLiteral(data, i, "null")
	}
	return -1
}

// scanArray scans the array at data[i], at nesting depth.
func scanArray(data []byte, i, depth, maxDepth int, compact bool) int {
	if depth > maxDepth {
		return -1
	}
	i = skipGap(data, i+1, compact)
	if i < len(data) && data[i] == ']' {
		return i + 1
	}
	for {
		if i = scanValue(data, i, depth, maxDepth, compact); i < 0 {
			return -1
		}
		if i = skipGap(data, i, compact); i >= len(data) {
			return -1
		}
		switch data[i] {
		case ',':
			i++
		case ']':
			return i + 1
		default:
			return -1
		}
	}
}

// scanObject scans the object at data[i], at nesting depth.
func scanObject(data []byte, i, depth, maxDepth int, compact bool) int {
	if depth > maxDepth {
		return -1
	}
	i = skipGap(data, i+1, compact)
	if i < len(data) && data[i] == '}' {
		return i + 1
	}
	for {
		if i >= len(data) || data[i] != '"' {
			return -1
		}
		if i, _ = scanString(data, i, compact); i < 0 {
			return -1
		}
		if i = skipGap(data, i, compact); i >= len(data) || data[i] != ':' {
			return -1
		}
		if i = scanValue(data, i+1, depth, maxDepth, compact); i < 0 {
			return -1
		}
		if i = skipGap(data, i, compact); i >= len(data) {
			return -1
		}
		switch data[i] {
		case ',':
			i = skipGap(data, i+1, compact)
		case '}':
			return i + 1
		default:
			return -1
		}
	}
}

// The byte classes of a string's inside, for the bytes scanString looks at
// one at a time.
const (
	stopByte = 1 << iota // ends a run of plain bytes: '"', '\\' and the control characters
	htmlByte             // a byte compact refuses: <, >, & and 0xE2
)

var stringClass = func() (t [256]uint8) {
	for c := range 0x20 {
		t[c] = stopByte
	}
	t['"'], t['\\'] = stopByte, stopByte
	t['<'], t['>'], t['&'], t[0xE2] = htmlByte, htmlByte, htmlByte, htmlByte
	return t
}()

// Eight bytes at a time (SWAR): in x-ones&^x the high bit of each zero byte
// of x is set, and of no byte below the first zero one (bytes above it may
// be set by the borrow), so the lowest bit set marks the first zero byte.
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// zeroBytes marks the zero bytes of x, exactly up to the first. A string's
// plain bytes run to the first '"', '\\' or control character (below 0x20):
// scanString marks those with zeroBytes(w^'"'*ones), zeroBytes(w^'\\'*ones)
// and (w-0x20*ones)&^w&highs, which borrows the same way.
func zeroBytes(x uint64) uint64 { return (x - ones) &^ x & highs }

// htmlStops marks, exactly up to the first, the bytes of w compact refuses.
func htmlStops(w uint64) uint64 {
	return zeroBytes(w^'<'*ones) | zeroBytes(w^'>'*ones) | zeroBytes(w^'&'*ones) | zeroBytes(w^0xE2*ones)
}

// scanString scans the string at data[i] (its opening quote). plain
// reports whether its inside is the string itself: ASCII without escapes.
func scanString(data []byte, i int, compact bool) (end int, plain bool) {
	var high uint64 // the plain bytes, or'ed: a high bit set is a byte that is not ASCII
	escaped := false
	i++
	for {
		// Skip the plain bytes, a word at a time while data has eight
		// more, then byte by byte.
		for {
			if i+8 > len(data) {
				mask := uint8(stopByte)
				if compact {
					mask |= htmlByte
				}
				for i < len(data) && stringClass[data[i]]&mask == 0 {
					high |= uint64(data[i])
					i++
				}
				break
			}
			w := binary.LittleEndian.Uint64(data[i : i+8 : i+8])
			quotes := zeroBytes(w ^ '"'*ones)
			s := quotes | zeroBytes(w^'\\'*ones) | (w-0x20*ones)&^w&highs
			if compact {
				s |= htmlStops(w)
			}
			if s != 0 {
				// The bytes below the first stop's high bit: the stop
				// itself is ASCII.
				first := s & -s
				high |= w & (first - 1)
				i += bits.TrailingZeros64(s) >> 3
				if first&quotes != 0 {
					return i + 1, !escaped && high&highs == 0
				}
				break
			}
			high |= w
			i += 8
		}
		if i >= len(data) {
			return -1, false
		}
		switch data[i] {
		case '"':
			return i + 1, !escaped && high&highs == 0
		case '\\':
			escaped = true
			i++
			if i >= len(data) {
				return -1, false
			}
			switch data[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				if i+4 >= len(data) || !isHex(data[i+1]) || !isHex(data[i+2]) || !isHex(data[i+3]) || !isHex(data[i+4]) {
					return -1, false
				}
				i += 5
			default:
				return -1, false
			}
		default: // a control character, or a byte compact refuses
			return -1, false
		}
	}
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

// scanNumber scans the number at data[i]: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func scanNumber(data []byte, i int) int {
	if data[i] == '-' {
		i++
	}
	switch {
	case i < len(data) && data[i] == '0':
		i++
	case i < len(data) && data[i] >= '1' && data[i] <= '9':
		i = skipDigits(data, i+1)
	default:
		return -1
	}
	if i < len(data) && data[i] == '.' {
		j := skipDigits(data, i+1)
		if j == i+1 {
			return -1
		}
		i = j
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		j := skipDigits(data, i)
		if j == i {
			return -1
		}
		i = j
	}
	return i
}

func skipDigits(data []byte, i int) int {
	for i < len(data) && data[i] >= '0' && data[i] <= '9' {
		i++
	}
	return i
}

// scanLiteral scans the literal lit at data[i].
func scanLiteral(data []byte, i int, lit string) int {
	if len(data)-i < len(lit) || string(data[i:i+len(lit)]) != lit {
		return -1
	}
	return i + len(lit)
}

// skipSpace returns the index of the first byte at or after i that is not
// JSON white space.
func skipSpace(data []byte, i int) int {
	for i < len(data) && data[i] <= ' ' && spaces>>data[i]&1 != 0 {
		i++
	}
	return i
}

// skipGap is skipSpace but for compact, which takes no white space: there
// the token must be at i.
func skipGap(data []byte, i int, compact bool) int {
	if compact {
		return i
	}
	return skipSpace(data, i)
}

// spaces has the bits of JSON's white space bytes set.
const spaces uint64 = 1<<' ' | 1<<'\t' | 1<<'\n' | 1<<'\r'
