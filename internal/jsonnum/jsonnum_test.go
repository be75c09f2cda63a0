package jsonnum

import (
	"strconv"
	"testing"
)

func TestPlainInt(t *testing.T) {
	for _, s := range []string{"0", "-0", "7", "-7", "8192", "999999999999999999", "-999999999999999999"} {
		n, ok := PlainInt([]byte(s))
		want, err := strconv.ParseInt(s, 10, 64)
		if !ok || err != nil || n != want {
			t.Errorf("PlainInt(%q) = %d, %v; want %d", s, n, ok, want)
		}
	}
	for _, s := range []string{"", "-", "1000000000000000000", "1.5", "1e3", "12a", "--1"} {
		if n, ok := PlainInt([]byte(s)); ok {
			t.Errorf("PlainInt(%q) = %d, true; want false", s, n)
		}
	}
}
