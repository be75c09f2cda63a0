package event

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/triggerbus/triggerbus/pkg/subjects"
)

// Hostile input for the event and decision decoders: what a publisher, a
// broken service or an attacker may send. Every rejection is an error that
// says what is wrong; nothing panics or runs away.

func hostileSubject(t testing.TB) subjects.Subject {
	t.Helper()
	return mustSubject(t, "trigger.PRE_CREATE.SERVER")
}

// hostileNest returns v wrapped in n arrays.
func hostileNest(n int, v string) string {
	return strings.Repeat("[", n) + v + strings.Repeat("]", n)
}

func TestDecodeHostileRejected(t *testing.T) {
	big := `{"input":"` + strings.Repeat("x", DefaultMaxBytes) + `"}`
	tests := []struct {
		name string
		give string
		lim  Limits
		want string // in the error message
	}{
		{name: "oversized", give: big, want: "payload is 1048588 bytes, larger than the limit of 1048576"},
		{name: "oversized for a small limit", give: `{"input":"0123456789"}`, lim: Limits{MaxBytes: 8}, want: "payload is 22 bytes, larger than the limit of 8"},
		{name: "nested one level too deep", give: `{"input":` + hostileNest(DefaultMaxDepth, "1") + `}`, want: "JSON nested deeper than 64 levels"},
		{name: "nested 100k levels", give: `{"input":` + hostileNest(100_000, "") + `}`, lim: Limits{MaxBytes: 1 << 20}, want: "JSON nested deeper than 64 levels"},
		{name: "unclosed nesting", give: strings.Repeat("{\"a\":", 1000), want: "JSON nested deeper than 64 levels"},
		{name: "deep objects", give: strings.Repeat(`{"a":`, 65) + "1" + strings.Repeat("}", 65), want: "JSON nested deeper than 64 levels"},
		{name: "NaN", give: `{"input":NaN}`, want: "not JSON: invalid character 'N' looking for beginning of value"},
		{name: "Infinity", give: `{"input":{"cpu":Infinity}}`, want: "not JSON: invalid character 'I' looking for beginning of value"},
		{name: "hex number", give: `{"input":0x10}`, want: "not JSON: invalid character 'x' after object key:value pair"},
		{name: "truncated", give: `{"id":"01J`, want: "not JSON: unexpected end of JSON input"},
		{name: "two documents", give: `{} {}`, want: "not JSON: invalid character '{' after top-level value"},
		{name: "NUL in a string", give: "{\"id\":\"a\x00b\"}", want: `not JSON: invalid character '\x00' in string literal`},
		{name: "byte order mark", give: "\xef\xbb\xbf{}", want: "not JSON: invalid character 'ï' looking for beginning of value"},
		{name: "invalid UTF-8 outside strings", give: "{\"id\":\"x\"\xff}", want: "not JSON: invalid character 'ÿ' after object key:value pair"},
		{name: "array", give: `[{"id":"x"}]`, want: "the event is a JSON array, not an object"},
		{name: "string", give: `"{}"`, want: "the event is a JSON string, not an object"},
		{name: "number", give: `1e999`, want: "the event is a JSON number, not an object"},
		{name: "null", give: `null`, want: "the event is JSON null, not an object"},
		{name: "bool", give: `true`, want: "the event is a JSON bool, not an object"},
		{name: "timeStamp overflows", give: `{"timeStamp":1e400}`, want: `field "timeStamp": a JSON number 1e400 cannot be a int64`},
		{name: "timeStamp beyond int64", give: `{"timeStamp":9223372036854775808}`, want: `field "timeStamp": a JSON number 9223372036854775808 cannot be a int64`},
		{name: "timeStamp fraction", give: `{"timeStamp":1.5}`, want: `field "timeStamp": a JSON number 1.5 cannot be a int64`},
		{name: "timeStamp string", give: `{"timeStamp":"1764420000000"}`, want: `field "timeStamp": a JSON string cannot be a int64`},
		{name: "deadline fraction", give: `{"deadline":1.5}`, want: `field "deadline": a JSON number 1.5 cannot be a int64`},
		{name: "deadline string", give: `{"deadline":"1764420000000"}`, want: `field "deadline": a JSON string cannot be a int64`},
		{name: "id number", give: `{"id":12345}`, want: `field "id": a JSON number cannot be a string`},
		{name: "id object", give: `{"id":{"$gt":""}}`, want: `field "id": a JSON object cannot be a string`},
		{name: "beUUID array", give: `{"beUUID":["a"]}`, want: `field "beUUID": a JSON array cannot be a string`},
		{name: "triggerType bool", give: `{"triggerType":true}`, want: `field "triggerType": a JSON bool cannot be a string`},
		{name: "triggerType of another subject", give: `{"triggerType":"POST_CREATE"}`, want: `triggerType "POST_CREATE" does not match the subject's "PRE_CREATE"`},
		{name: "triggerType invalid UTF-8", give: "{\"triggerType\":\"PRE_CREATE\xff\"}", want: "triggerType \"PRE_CREATE\uFFFD\" does not match the subject's \"PRE_CREATE\""},
		{name: "triggerOption escaped NUL", give: `{"triggerOption":"SERVER\u0000"}`, want: `triggerOption "SERVER\x00" does not match the subject's "SERVER"`},
		{name: "last duplicate wins", give: `{"triggerType":"PRE_CREATE","triggerType":"POST_CREATE"}`, want: `triggerType "POST_CREATE" does not match`},
	}
	subj := hostileSubject(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := Decode([]byte(tt.give), subj, tt.lim)
			if err == nil {
				t.Fatalf("Decode(%.60q) = %+v, want an error", tt.give, e)
			}
			if !errors.Is(err, ErrInvalid) || !strings.HasPrefix(err.Error(), "event: invalid: ") {
				t.Errorf("Decode(%.60q) error %q does not wrap ErrInvalid", tt.give, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Decode(%.60q) error = %q, want it to contain %q", tt.give, err, tt.want)
			}
			if len(err.Error()) > 300 {
				t.Errorf("Decode(%.60q) error is %d bytes long: it must not echo the payload", tt.give, len(err.Error()))
			}
		})
	}
}

// TestDecodeHostileAccepted: what Decode lets through, and how. Invalid
// UTF-8 inside strings is not an error (as with encoding/json): decoded
// fields get U+FFFD, raw fields keep their bytes for the functions, whose
// decoders do the same replacement. Numbers in raw fields are kept as
// written, however large.
func TestDecodeHostileAccepted(t *testing.T) {
	subj := hostileSubject(t)
	tests := []struct {
		name  string
		give  string
		check func(t *testing.T, e *Event)
	}{
		{name: "nesting at the limit", give: `{"input":` + hostileNest(DefaultMaxDepth-1, "1") + `}`},
		{name: "brackets inside strings are not nesting", give: `{"input":"` + strings.Repeat("[{", 10_000) + `"}`},
		{name: "escaped quotes before brackets", give: `{"input":"\\\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}`},
		{name: "huge numbers are kept as written", give: `{"input":{"cpu":1e400,"ram":123456789012345678901234567890,"neg":-0}}`,
			check: func(t *testing.T, e *Event) {
				if want := `{"cpu":1e400,"ram":123456789012345678901234567890,"neg":-0}`; string(e.Input) != want {
					t.Errorf("Input = %s, want %s", e.Input, want)
				}
			}},
		{name: "invalid UTF-8 in a decoded field", give: "{\"id\":\"ab\xffcd\",\"beUUID\":\"\xed\xa0\x80\"}",
			check: func(t *testing.T, e *Event) {
				if e.ID != "ab\uFFFDcd" || !utf8.ValidString(e.BEUUID) {
					t.Errorf("ID = %q, BEUUID = %q, want U+FFFD for the invalid bytes", e.ID, e.BEUUID)
				}
			}},
		{name: "invalid UTF-8 in a raw field", give: "{\"input\":{\"name\":\"web\xff\"}}",
			check: func(t *testing.T, e *Event) {
				if !bytes.Equal(e.Input, []byte("{\"name\":\"web\xff\"}")) {
					t.Errorf("Input = %q, want the bytes as sent", e.Input)
				}
			}},
		{name: "lone surrogate escape", give: `{"id":"\ud800"}`,
			check: func(t *testing.T, e *Event) {
				if e.ID != "\uFFFD" {
					t.Errorf("ID = %q, want U+FFFD", e.ID)
				}
			}},
		{name: "many unknown fields", give: "{" + strings.Repeat(`"x":1,`, 10_000) + `"y":2}`,
			check: func(t *testing.T, e *Event) {
				if len(e.Extra) != 2 {
					t.Errorf("Extra has %d fields, want 2 (x and y)", len(e.Extra))
				}
			}},
		{name: "empty key and prototype keys", give: `{"":1,"__proto__":{"admin":true},"constructor":null}`},
		{name: "null contract fields", give: `{"id":null,"timeStamp":null,"input":null,"customer":null}`,
			check: func(t *testing.T, e *Event) {
				if e.ID == "" || e.TimeStamp == 0 || e.Input != nil {
					t.Errorf("event = %+v, want id and timeStamp filled and no input", e)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := Decode([]byte(tt.give), subj, Limits{})
			if err != nil {
				t.Fatalf("Decode(%.60q) error = %v, want it accepted", tt.give, err)
			}
			if tt.check != nil {
				tt.check(t, e)
			}
			if _, err := e.Encode(); err != nil {
				t.Errorf("Encode of the accepted event: %v", err)
			}
		})
	}
}

func TestDecodeDecisionHostile(t *testing.T) {
	tests := []struct {
		name string
		give string
		want string
	}{
		{name: "empty", give: ``, want: "event: decision: unexpected end of JSON input"},
		{name: "not JSON", give: `<html>502 Bad Gateway</html>`, want: "event: decision: invalid character '<' looking for beginning of value"},
		{name: "NaN", give: `{"id":"x","allowed":NaN}`, want: "event: decision: invalid character 'N' looking for beginning of value"},
		{name: "allowed as a string", give: `{"id":"x","allowed":"true"}`, want: "event: decision: json: cannot unmarshal string into Go struct field Decision.allowed of type bool"},
		{name: "allowed as a number", give: `{"id":"x","allowed":1}`, want: "cannot unmarshal number into Go struct field Decision.allowed of type bool"},
		{name: "functions as an object", give: `{"id":"x","functions":{"ref":"f"}}`, want: "cannot unmarshal object into Go struct field Decision.functions of type []event.FunctionResult"},
		{name: "ms overflows", give: `{"id":"x","functions":[{"ref":"f","ms":1e400}]}`, want: "cannot unmarshal number 1e400 into Go struct field FunctionResult.functions.ms of type float64"},
		{name: "nested past encoding/json's limit", give: `{"id":"x","input":` + hostileNest(10_001, "") + `}`, want: "event: decision: invalid character '[' exceeded max depth"},
		{name: "none of id, allowed, code", give: `{"message":"ok","functions":[]}`, want: "event: decision: reply has none of id, allowed, code"},
		{name: "an array", give: `[{"allowed":true}]`, want: "cannot unmarshal array into Go value of type event.Decision"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := DecodeDecision([]byte(tt.give))
			if err == nil {
				t.Fatalf("DecodeDecision(%.60q) = %+v, want an error", tt.give, d)
			}
			if !strings.HasPrefix(err.Error(), "event: decision: ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("DecodeDecision(%.60q) error = %q, want it to contain %q", tt.give, err, tt.want)
			}
		})
	}
}

// hostileReasons are the beginnings of every message Decode may give,
// after "event: invalid: ": a caller (and the PRE reply's message) always
// learns which rule the payload broke.
var hostileReasons = []string{
	"payload is ", "JSON nested deeper than ", "not JSON: ", "the event is a JSON ", "the event is JSON null",
	`field "`, "triggerType ", "triggerOption ",
}

// FuzzDecodeHostile decodes fuzzed payloads wrapped in fuzzed nesting,
// under fuzzed limits. Decode never panics; it accepts only what fits the
// limits, and every rejection wraps ErrInvalid with one of the reasons of
// hostileReasons.
func FuzzDecodeHostile(f *testing.F) {
	for _, s := range []string{`1`, `"x"`, `{"a":[1,2]}`, `NaN`, `1e400`, "\"\xff\"", `[`, `]]]`, `"\\"`, `{"id":1}`} {
		f.Add([]byte(s), uint16(0), uint16(0), uint8(0))
		f.Add([]byte(s), uint16(70), uint16(0), uint8(64))
		f.Add([]byte(s), uint16(3), uint16(20), uint8(2))
	}
	subj := hostileSubject(f)
	f.Fuzz(func(t *testing.T, inner []byte, depth, maxBytes uint16, maxDepth uint8) {
		depth %= 512
		payload := []byte(`{"input":` + hostileNest(int(depth), string(inner)) + `}`)
		lim := Limits{MaxBytes: int(maxBytes), MaxDepth: int(maxDepth)}
		e, err := Decode(payload, subj, lim)
		if err != nil {
			if e != nil || !errors.Is(err, ErrInvalid) {
				t.Fatalf("Decode = %v, %v, want nil and an ErrInvalid", e, err)
			}
			reason, ok := strings.CutPrefix(err.Error(), "event: invalid: ")
			if !ok {
				t.Fatalf("Decode error %q does not start with the sentinel's text", err)
			}
			for _, r := range hostileReasons {
				if strings.HasPrefix(reason, r) {
					return
				}
			}
			t.Fatalf("Decode error %q gives none of the known reasons", err)
		}
		effMax, effDepth := lim.MaxBytes, lim.MaxDepth
		if effMax <= 0 {
			effMax = DefaultMaxBytes
		}
		if effDepth <= 0 {
			effDepth = DefaultMaxDepth
		}
		if len(payload) > effMax {
			t.Fatalf("Decode accepted %d bytes over a limit of %d", len(payload), effMax)
		}
		if int(depth)+1 > effDepth {
			t.Fatalf("Decode accepted nesting %d over a limit of %d", depth+1, effDepth)
		}
	})
}
