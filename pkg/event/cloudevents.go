package event

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// CloudEvents attribute values travel in NATS headers percent-encoded, as
// the CloudEvents NATS protocol binding says: a space, a double quote, a
// percent sign and every byte outside printable ASCII become %XY.

// EncodeHeaderValue returns the NATS header value of a CloudEvents
// attribute value s.
func EncodeHeaderValue(s string) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if needsPercent(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) + 2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if needsPercent(c) {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0xf])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func needsPercent(c byte) bool { return c <= ' ' || c == '"' || c == '%' || c >= 0x7f }

// ErrHeaderValue is wrapped by the errors of [DecodeHeaderValue].
var ErrHeaderValue = errors.New("event: bad CloudEvents header value")

// DecodeHeaderValue returns the CloudEvents attribute value of the NATS
// header value v: a double-quoted value is unquoted first (older senders
// quote), then one round of percent-decoding is done. A malformed escape or
// a result that is not UTF-8 is an error wrapping [ErrHeaderValue].
func DecodeHeaderValue(v string) (string, error) {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		var b strings.Builder
		in := v[1 : len(v)-1]
		for i := 0; i < len(in); i++ {
			c := in[i]
			if c == '\\' {
				if i+1 == len(in) {
					return "", fmt.Errorf("%w: quoted value ends in a backslash", ErrHeaderValue)
				}
				i++
				c = in[i]
			} else if c == '"' {
				return "", fmt.Errorf("%w: unescaped double quote inside a quoted value", ErrHeaderValue)
			}
			b.WriteByte(c)
		}
		v = b.String()
	}
	if !strings.Contains(v, "%") {
		if !utf8.ValidString(v) {
			return "", fmt.Errorf("%w: not UTF-8", ErrHeaderValue)
		}
		return v, nil
	}
	out := make([]byte, 0, len(v))
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c != '%' {
			out = append(out, c)
			continue
		}
		if i+2 >= len(v) || unhex(v[i+1]) < 0 || unhex(v[i+2]) < 0 {
			return "", fmt.Errorf("%w: %% is not followed by two hexadecimal digits", ErrHeaderValue)
		}
		out = append(out, byte(unhex(v[i+1])<<4|unhex(v[i+2])))
		i += 2
	}
	if !utf8.Valid(out) {
		return "", fmt.Errorf("%w: percent-decodes to bytes that are not UTF-8", ErrHeaderValue)
	}
	return string(out), nil
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c - 'a' + 10)
	case c >= 'A' && c <= 'F':
		return int(c - 'A' + 10)
	}
	return -1
}
