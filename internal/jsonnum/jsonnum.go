// Package jsonnum reads JSON integers without strconv, for the decoders of
// pkg/event and of the Lua kind.
package jsonnum

// PlainInt parses b, a valid JSON number, when it is an integer of at most
// 18 digits, which always fits an int64.
func PlainInt(b []byte) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}
