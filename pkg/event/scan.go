package event

// A validating scanner for the one pass of [Event.UnmarshalJSON] and
// [Decode]: it accepts exactly what encoding/json's Valid accepts (the fuzz
// targets hold it to that) and bounds the nesting on the way. Each function
// returns the index just past what it scanned, or -1 when data is not valid
// JSON there or nests deeper than the limit; the callers then ask the slow
// path (checkDepth, encoding/json) for the error to report.

// maxNesting is encoding/json's own nesting limit: Valid refuses deeper
// JSON whatever our limit.
const maxNesting = 10000

// scanValue scans the JSON value at data[i] (white space skipped first);
// depth is the nesting of its container, maxDepth the deepest allowed.
func scanValue(data []byte, i, depth, maxDepth int) int {
	i = skipSpace(data, i)
	if i >= len(data) {
		return -1
	}
	switch c := data[i]; {
	case c == '{':
		return scanObject(data, i, depth+1, maxDepth)
	case c == '[':
		if depth+1 > maxDepth {
			return -1
		}
		i = skipSpace(data, i+1)
		if i < len(data) && data[i] == ']' {
			return i + 1
		}
		for {
			if i = scanValue(data, i, depth+1, maxDepth); i < 0 {
				return -1
			}
			i = skipSpace(data, i)
			if i >= len(data) {
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
	case c == '"':
		return scanString(data, i)
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

// scanObject scans the object at data[i], at nesting depth.
func scanObject(data []byte, i, depth, maxDepth int) int {
	if depth > maxDepth {
		return -1
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		return i + 1
	}
	for {
		if i >= len(data) || data[i] != '"' {
			return -1
		}
		if i = scanString(data, i); i < 0 {
			return -1
		}
		if i = skipSpace(data, i); i >= len(data) || data[i] != ':' {
			return -1
		}
		if i = scanValue(data, i+1, depth, maxDepth); i < 0 {
			return -1
		}
		if i = skipSpace(data, i); i >= len(data) {
			return -1
		}
		switch data[i] {
		case ',':
			i = skipSpace(data, i+1)
		case '}':
			return i + 1
		default:
			return -1
		}
	}
}

// scanString scans the string at data[i] (its opening quote).
func scanString(data []byte, i int) int {
	for i++; i < len(data); i++ {
		switch c := data[i]; {
		case c == '"':
			return i + 1
		case c == '\\':
			i++
			if i >= len(data) {
				return -1
			}
			switch data[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(data) {
					return -1
				}
				for _, h := range data[i+1 : i+5] {
					if !isHex(h) {
						return -1
					}
				}
				i += 4
			default:
				return -1
			}
		case c < 0x20:
			return -1
		}
	}
	return -1
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
