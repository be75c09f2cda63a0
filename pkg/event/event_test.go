package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/triggerbus/triggerbus/pkg/subjects"
)

func mustSubject(t testing.TB, s string) subjects.Subject {
	t.Helper()
	scheme, err := subjects.NewScheme(subjects.DefaultPrefix)
	if err != nil {
		t.Fatal(err)
	}
	subj, err := scheme.Parse(s)
	if err != nil {
		t.Fatalf("Parse(%q) error = %v", s, err)
	}
	return subj
}

func TestDecodeFills(t *testing.T) {
	tests := []struct {
		name    string
		subject string
		give    string
	}{
		{"empty payload", "trigger.PRE_CREATE.SERVER", ""},
		{"white space only", "trigger.PRE_CREATE.SERVER", " \n\t "},
		{"empty object", "trigger.POST_CREATE.DISK", "{}"},
		{"null fields", "trigger.POST_CREATE.DISK", `{"id":null,"timeStamp":null,"triggerType":null,"triggerOption":null}`},
		{"empty strings and zero time", "trigger.POST_CREATE.DISK", `{"id":"","timeStamp":0,"triggerType":"","triggerOption":""}`},
		{"option-less type", "trigger.PRE_AUTH.ANY", `{"input":{"username":"ann"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			subj := mustSubject(t, tt.subject)
			before := time.Now().UnixMilli()
			e, err := Decode([]byte(tt.give), subj, Limits{})
			after := time.Now().UnixMilli()
			if err != nil {
				t.Fatalf("Decode(%q) error = %v", tt.give, err)
			}
			if len(e.ID) != 26 {
				t.Errorf("Decode(%q).ID = %q, want a new 26-character id", tt.give, e.ID)
			}
			if e.TimeStamp < before || e.TimeStamp > after {
				t.Errorf("Decode(%q).TimeStamp = %d, want now (%d..%d)", tt.give, e.TimeStamp, before, after)
			}
			if e.TriggerType != subj.Type.Name || e.TriggerOption != subj.Option {
				t.Errorf("Decode(%q) type/option = %q/%q, want %q/%q", tt.give, e.TriggerType, e.TriggerOption, subj.Type.Name, subj.Option)
			}
		})
	}
}

func TestDecodeKeeps(t *testing.T) {
	give := `{"id":"01JDQ7Z6W3S6K4V0Q5H3YB3M8C","triggerType":"PRE_CREATE","triggerOption":"SERVER",` +
		`"timeStamp":1764420000000,"deadline":1764420005000,"beUUID":"b1c6","customer":{"resourceUUID":"c1"},"user":{"email":"a@b.c"},` +
		`"input":{"resourceName":"web-1","cpu":4}}`
	e, err := Decode([]byte(give), mustSubject(t, "trigger.PRE_CREATE.SERVER"), Limits{})
	if err != nil {
		t.Fatalf("Decode() error = %v", err)
	}
	want := Event{
		ID: "01JDQ7Z6W3S6K4V0Q5H3YB3M8C", TriggerType: "PRE_CREATE", TriggerOption: "SERVER",
		TimeStamp: 1764420000000, Deadline: 1764420005000, BEUUID: "b1c6",
		Customer: json.RawMessage(`{"resourceUUID":"c1"}`), User: json.RawMessage(`{"email":"a@b.c"}`),
		Input: json.RawMessage(`{"resourceName":"web-1","cpu":4}`),
	}
	if !eventsEqual(e, &want) {
		t.Errorf("Decode() = %+v, want %+v", e, want)
	}
}

// TestDecodeRaw checks that raw fields keep the input's bytes exactly: white
// space, numbers no float64 can hold, and nesting.
func TestDecodeRaw(t *testing.T) {
	input := `{ "huge": 1e400, "big": 12345678901234567890, "exact": 0.10000000000000000001,` +
		` "nested": [ {"a": [[1], {"b": null}]}, "x\u00e9\"y" ], "html": "<b>&</b>" }`
	customer := `[1,  2]`
	extra := `{"deep": {"er": [true, false, null]}, "n": -0.0e-0}`
	give := `{"input": ` + input + `, "customer":` + customer + `, "x-extra" : ` + extra + `, "beUUID":"b"}`
	e, err := Decode([]byte(give), mustSubject(t, "trigger.POST_MODIFY.SERVER"), Limits{})
	if err != nil {
		t.Fatalf("Decode() error = %v", err)
	}
	if string(e.Input) != input {
		t.Errorf("Input = %s, want %s", e.Input, input)
	}
	if string(e.Customer) != customer {
		t.Errorf("Customer = %s, want %s", e.Customer, customer)
	}
	if string(e.Extra["x-extra"]) != extra {
		t.Errorf(`Extra["x-extra"] = %s, want %s`, e.Extra["x-extra"], extra)
	}
	// The raw fields are copies: changing the input does not change the event.
	buf := []byte(give)
	e, _ = Decode(buf, mustSubject(t, "trigger.POST_MODIFY.SERVER"), Limits{})
	clear(buf)
	if string(e.Input) != input || string(e.Extra["x-extra"]) != extra {
		t.Error("the event's raw fields share memory with the payload")
	}
}

func TestDecodeDepth(t *testing.T) {
	subj := mustSubject(t, "trigger.POST_CREATE.SERVER")
	nest := func(n int) string { // n levels, the event object included
		return `{"input":` + strings.Repeat("[", n-1) + strings.Repeat("]", n-1) + `}`
	}
	tests := []struct {
		name    string
		give    string
		lim     Limits
		wantErr bool
	}{
		{"at the default limit", nest(DefaultMaxDepth), Limits{}, false},
		{"over the default limit", nest(DefaultMaxDepth + 1), Limits{}, true},
		{"at a set limit", nest(3), Limits{MaxDepth: 3}, false},
		{"over a set limit", `{"a":{"b":{"c":{}}}}`, Limits{MaxDepth: 3}, true},
		{"brackets inside a string", `{"input":"` + strings.Repeat("[{", 500) + `"}`, Limits{MaxDepth: 2}, false},
		{"escaped quote inside a string", `{"input":"\"[[[[\\"}`, Limits{MaxDepth: 1}, false},
		{"escaped quote then real nesting", `{"input":"\\\"","x":[[[]]]}`, Limits{MaxDepth: 3}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode([]byte(tt.give), subj, tt.lim)
			if tt.wantErr != (err != nil) {
				t.Fatalf("Decode(%.40q, %+v) error = %v, want error %v", tt.give, tt.lim, err, tt.wantErr)
			}
			if err != nil && (!errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "nested deeper than")) {
				t.Errorf("Decode() error = %v, want ErrInvalid about nesting", err)
			}
		})
	}
}

func TestDecodeInvalid(t *testing.T) {
	big := `{"input":"` + strings.Repeat("x", DefaultMaxBytes) + `"}`
	tests := []struct {
		name    string
		subject string
		give    string
		lim     Limits
		wantMsg string
	}{
		{"not JSON", "", `hello`, Limits{}, "not JSON"},
		{"truncated", "", `{"id":`, Limits{}, "not JSON"},
		{"trailing data", "", `{} {}`, Limits{}, "not JSON"},
		{"array", "", `[{"id":"x"}]`, Limits{}, "the event is a JSON array, not an object"},
		{"string", "", `"event"`, Limits{}, "the event is a JSON string, not an object"},
		{"number", "", `42`, Limits{}, "the event is a JSON number, not an object"},
		{"bool", "", `true`, Limits{}, "the event is a JSON bool, not an object"},
		{"null", "", `null`, Limits{}, "the event is JSON null, not an object"},
		{"over the default size", "", big, Limits{}, "larger than the limit of 1048576"},
		{"over a set size", "", `{"input":{"a":1}}`, Limits{MaxBytes: 16}, "payload is 17 bytes, larger than the limit of 16"},
		{"too deep", "", `[[[]]]`, Limits{MaxDepth: 2}, "nested deeper than 2 levels"},
		{"type mismatch", "", `{"triggerType":"POST_CREATE"}`, Limits{}, `triggerType "POST_CREATE" does not match the subject's "PRE_CREATE"`},
		{"type of another case", "", `{"triggerType":"pre_create"}`, Limits{}, `triggerType "pre_create" does not match`},
		{"option mismatch", "", `{"triggerOption":"DISK"}`, Limits{}, `triggerOption "DISK" does not match the subject's "SERVER"`},
		{"option ANY for a type with options", "", `{"triggerOption":"ANY"}`, Limits{}, `triggerOption "ANY" does not match`},
		{"option of an option-less type", "trigger.PRE_AUTH.ANY", `{"triggerOption":"USER"}`, Limits{}, `triggerOption "USER" does not match the subject's "ANY"`},
		{"timeStamp a string", "", `{"timeStamp":"x"}`, Limits{}, `field "timeStamp": a JSON string cannot be a int64`},
		{"timeStamp a fraction", "", `{"timeStamp":1.5}`, Limits{}, `field "timeStamp"`},
		{"timeStamp too big", "", `{"timeStamp":1e400}`, Limits{}, `field "timeStamp"`},
		{"deadline a string", "", `{"deadline":"x"}`, Limits{}, `field "deadline": a JSON string cannot be a int64`},
		{"deadline too big", "", `{"deadline":1e400}`, Limits{}, `field "deadline"`},
		{"id a number", "", `{"id":7}`, Limits{}, `field "id": a JSON number cannot be a string`},
		{"triggerType an object", "", `{"triggerType":{}}`, Limits{}, `field "triggerType"`},
		{"triggerOption an array", "", `{"triggerOption":["SERVER"]}`, Limits{}, `field "triggerOption"`},
		{"beUUID a bool", "", `{"beUUID":true}`, Limits{}, `field "beUUID"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			subject := tt.subject
			if subject == "" {
				subject = "trigger.PRE_CREATE.SERVER"
			}
			e, err := Decode([]byte(tt.give), mustSubject(t, subject), tt.lim)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Decode(%.40q) = %v, %v, want ErrInvalid", tt.give, e, err)
			}
			if e != nil {
				t.Errorf("Decode(%.40q) returned an event with its error", tt.give)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("Decode(%.40q) error = %q, want it to contain %q", tt.give, err, tt.wantMsg)
			}
		})
	}
}

func TestDecodeNoSubject(t *testing.T) {
	e, err := Decode([]byte(`{"triggerType":"ANYTHING"}`), subjects.Subject{}, Limits{})
	if err != nil || e.TriggerType != "ANYTHING" || e.TriggerOption != "" {
		t.Errorf("Decode() with no subject = %+v, %v, want the event as given", e, err)
	}
}

func TestEncodeKeepsExtra(t *testing.T) {
	give := `{"zeta":{"k":[1,2]},"id":"01JDQ7Z6W3S6K4V0Q5H3YB3M8C","alpha":null,"input":{"cpu":4},"Id":"other","big":12345678901234567890,"huge":1e400}`
	e, err := Decode([]byte(give), mustSubject(t, "trigger.POST_CREATE.SERVER"), Limits{})
	if err != nil {
		t.Fatalf("Decode() error = %v", err)
	}
	out, err := e.Encode()
	if err != nil {
		t.Fatalf("Encode() error = %v", err)
	}
	var got map[string]json.RawMessage
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("Encode() = %s, not a JSON object: %v", out, err)
	}
	want := map[string]string{
		"zeta": `{"k":[1,2]}`, "alpha": `null`, "Id": `"other"`, "big": `12345678901234567890`, "huge": `1e400`,
		"id": `"01JDQ7Z6W3S6K4V0Q5H3YB3M8C"`, "input": `{"cpu":4}`,
		"triggerType": `"POST_CREATE"`, "triggerOption": `"SERVER"`,
	}
	for k, v := range want {
		if string(got[k]) != v {
			t.Errorf("Encode() field %q = %s, want %s (all: %s)", k, got[k], v, out)
		}
	}
	if _, ok := got["timeStamp"]; !ok || len(got) != len(want)+1 {
		t.Errorf("Encode() = %s, want the fields %v and timeStamp", out, want)
	}
}

func TestEncodeExtraNeverOverrides(t *testing.T) {
	e := &Event{ID: "mine", Extra: map[string]json.RawMessage{"id": json.RawMessage(`"theirs"`), "x": json.RawMessage(`1`)}}
	out, err := e.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != `{"id":"mine","x":1}` {
		t.Errorf("Encode() = %s, want the contract field to win", out)
	}
}

// TestEncodeRaw pins down what Encode does with the raw fields: it compacts
// them and escapes <, > and & (encoding/json's rules for a RawMessage), and
// keeps numbers as written.
func TestEncodeRaw(t *testing.T) {
	e := &Event{ID: "x", Input: json.RawMessage("{ \"a\" : [ 1e400 , 12345678901234567890 ],\n \"h\": \"<&>\" }")}
	out, err := e.Encode()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"x","input":{"a":[1e400,12345678901234567890],"h":"\u003c\u0026\u003e"}}`
	if string(out) != want {
		t.Errorf("Encode() = %s, want %s", out, want)
	}
}

func TestEncodeEmpty(t *testing.T) {
	for _, e := range []*Event{{}, {Extra: map[string]json.RawMessage{}}} {
		out, err := e.Encode()
		if err != nil || string(out) != `{}` {
			t.Errorf("Encode(%+v) = %s, %v, want {}", e, out, err)
		}
	}
}

// eventsEqual compares events field by field, raw fields as JSON values (see
// canonical).
func eventsEqual(a, b *Event) bool {
	if a.ID != b.ID || a.TriggerType != b.TriggerType || a.TriggerOption != b.TriggerOption ||
		a.TimeStamp != b.TimeStamp || a.Deadline != b.Deadline || a.BEUUID != b.BEUUID ||
		!rawEqual(a.Customer, b.Customer) || !rawEqual(a.User, b.User) || !rawEqual(a.Input, b.Input) ||
		len(a.Extra) != len(b.Extra) {
		return false
	}
	for k, v := range a.Extra {
		w, ok := b.Extra[k]
		if !ok || !rawEqual(v, w) {
			return false
		}
	}
	return true
}

// rawEqual reports whether two raw JSON values are the same once put in the
// form Encode writes (compact, with <, > and & escaped). Numbers are compared
// as written, so 1e400 and big integers need no float64.
func rawEqual(a, b json.RawMessage) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	return bytes.Equal(canonical(a), canonical(b))
}

func canonical(raw json.RawMessage) []byte {
	out, err := json.Marshal(raw)
	if err != nil {
		return append([]byte("invalid:"), raw...)
	}
	return out
}

func TestIDOf(t *testing.T) {
	for data, want := range map[string]string{
		`{"id":"evt-1","input":{}}`: "evt-1",
		`{"id":"\u0065vt"}`:         "evt",
		`{"input":{}}`:              "",
		`{"id":5}`:                  "",
		`[1]`:                       "",
		`not json`:                  "",
	} {
		if got := IDOf([]byte(data)); got != want {
			t.Errorf("IDOf(%s) = %q, want %q", data, got, want)
		}
	}
}
