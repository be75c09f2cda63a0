package event_test

import (
	"errors"
	"testing"

	"github.com/triggerbus/triggerbus/pkg/event"
)

func TestHeaderValueRoundTrip(t *testing.T) {
	tests := []struct{ name, give, want string }{
		{"plain", "trigger.PRE_CREATE.SERVER", "trigger.PRE_CREATE.SERVER"},
		{"spec example", "Euro \u20ac \U0001F600", "Euro%20%E2%82%AC%20%F0%9F%98%80"},
		{"quote and percent", `a"b%c`, "a%22b%25c"},
		{"control", "a\tb\x7f", "a%09b%7F"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := event.EncodeHeaderValue(tt.give); got != tt.want {
				t.Errorf("EncodeHeaderValue(%q) = %q, want %q", tt.give, got, tt.want)
			}
			if got, err := event.DecodeHeaderValue(tt.want); err != nil || got != tt.give {
				t.Errorf("DecodeHeaderValue(%q) = %q, %v, want %q", tt.want, got, err, tt.give)
			}
		})
	}
}

func TestDecodeHeaderValue(t *testing.T) {
	tests := []struct{ name, give, want string }{
		{"lower-case hex", "%e2%82%ac", "\u20ac"},
		{"needlessly encoded", "%61bc", "abc"},
		{"quoted", `"a b \"c\""`, `a b "c"`},
		{"quoted then percent", `"a%20b"`, "a b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := event.DecodeHeaderValue(tt.give); err != nil || got != tt.want {
				t.Errorf("DecodeHeaderValue(%q) = %q, %v, want %q", tt.give, got, err, tt.want)
			}
		})
	}
}

func TestDecodeHeaderValueErrors(t *testing.T) {
	tests := []struct{ name, give string }{
		{"overlong", "%C0%A0"},
		{"short escape", "ab%2"},
		{"not hex", "%zz"},
		{"raw invalid UTF-8", "a\xffb"},
		{"quoted backslash at end", `"ab\"`},
		{"quote inside quoted", `"a"b"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := event.DecodeHeaderValue(tt.give); !errors.Is(err, event.ErrHeaderValue) {
				t.Errorf("DecodeHeaderValue(%q) = %q, %v, want ErrHeaderValue", tt.give, got, err)
			}
		})
	}
}
