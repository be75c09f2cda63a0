package event

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// The hand-written encoders must write what encoding/json writes for the
// same structs, byte for byte.

type plainEvent Event

func FuzzEncodeMatchesEncodingJSON(f *testing.F) {
	f.Add("01JDQ7Z6W3S6K4V0Q5H3YB3M8C", "PRE_CREATE", "SERVER", int64(1764420000000), "be", `{"cpu":4}`, `{"a":"<&>"}`, "msg \u2028 \x01 \xff é \"q\"", 0.21, true)
	f.Add("", "", "", int64(0), "", ``, ``, "", 0.0, false)
	f.Add("x", "t", "o", int64(-5), "b", `[1e400, 12345678901234567890]`, `null`, "\t\n\r\b\f", 1e-7, false)
	f.Add("x", "t", "o", int64(1), "b", `{ "a" : 1 }`, `"s"`, "", 1e21, true)
	f.Add("x", "t", "o", int64(1), "b", `{"a":"x y","b":"q\\\" z"}`, `{"a":1}}`, "", 1.5, true)
	f.Add("x", "t", "o", int64(1), "b", `{"a":"\u2028 \\"}`, `[1,"é",{"b":[null]}]x`, "", 1.5, true)
	// Strings and raw fields whose byte that needs a look falls at each
	// place of an eight-byte word.
	for n := range 10 {
		pad := "abcdefghij"[:n]
		f.Add(pad+`"`, pad+"<", pad+"\xe2\x80\xa8", int64(n), pad+"\xff", `{"`+pad+`":"`+pad+`<"}`, `["`+pad+"\u2029"+`",1]`,
			pad+"é"+pad+"\x1f&", float64(n), n%2 == 0)
		f.Add(pad+`\`, pad+">", pad+"\x7f", int64(-n), pad+"\u2028x", `{"`+pad+`\"":"`+pad+`\\"}`, `"`+pad+"\xe2\x82\xac"+`"`,
			strings.Repeat(pad+"\t", 20), 1.5, false)
	}
	f.Fuzz(func(t *testing.T, id, typ, opt string, ts int64, be, input, user, text string, ms float64, flag bool) {
		e := &Event{ID: id, TriggerType: typ, TriggerOption: opt, TimeStamp: ts, Deadline: -ts, BEUUID: be}
		if input != "" {
			e.Input = json.RawMessage(input)
		}
		if user != "" {
			e.User = json.RawMessage(user)
		}
		got, gotErr := e.Encode()
		want, wantErr := json.Marshal((*plainEvent)(e))
		if (gotErr != nil) != (wantErr != nil) {
			t.Fatalf("Encode error %v, encoding/json error %v", gotErr, wantErr)
		}
		if gotErr == nil && !bytes.Equal(got, want) {
			t.Fatalf("Encode =\n%s\nencoding/json =\n%s", got, want)
		}
		// AppendJSON writes the same after what the buffer holds, and
		// leaves it as it was on an error.
		app, appErr := e.AppendJSON([]byte("prefix"))
		if (appErr != nil) != (wantErr != nil) {
			t.Fatalf("AppendJSON error %v, encoding/json error %v", appErr, wantErr)
		}
		if appErr == nil && string(app) != "prefix"+string(want) || appErr != nil && string(app) != "prefix" {
			t.Fatalf("AppendJSON = %s, want prefix before\n%s", app, want)
		}

		d := &Decision{ID: id, Allowed: flag, Code: typ, Message: text, Function: opt, Modified: flag,
			Revision:  uint64(ts), // 0 omitted, and the whole range of uint64
			Functions: []FunctionResult{{Ref: be, Result: text, Ms: ms, Shadow: flag, Error: text}}}
		if input != "" {
			d.Input = json.RawMessage(input)
		}
		type plainDecision Decision
		got, gotErr = d.Encode()
		want, wantErr = json.Marshal((*plainDecision)(d))
		if (gotErr != nil) != (wantErr != nil) {
			t.Fatalf("Decision.Encode error %v, encoding/json error %v", gotErr, wantErr)
		}
		if gotErr == nil && !bytes.Equal(got, want) {
			t.Fatalf("Decision.Encode =\n%s\nencoding/json =\n%s", got, want)
		}
	})
}

func TestDecisionEncodeRevision(t *testing.T) {
	d := &Decision{ID: "x", Allowed: true, Revision: 7}
	got, err := d.Encode()
	if err != nil || string(got) != `{"id":"x","allowed":true,"modified":false,"functions":[],"revision":7}` {
		t.Errorf("Encode() = %s, %v", got, err)
	}
}

func TestDecisionEncodeNilFunctions(t *testing.T) {
	d := &Decision{ID: "x", Allowed: true}
	got, err := d.Encode()
	if err != nil || string(got) != `{"id":"x","allowed":true,"modified":false,"functions":[]}` {
		t.Errorf("Encode() = %s, %v", got, err)
	}
}

func TestAppendJSONExtra(t *testing.T) {
	e := &Event{ID: "x", Input: json.RawMessage(`{"a":1}`), Extra: map[string]json.RawMessage{"z": json.RawMessage(`true`)}}
	want, err := e.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.AppendJSON([]byte("["))
	if err != nil || string(got) != "["+string(want) {
		t.Errorf("AppendJSON = %s, %v; want [%s", got, err, want)
	}
	e.Input = json.RawMessage(`{`)
	if got, err := e.AppendJSON([]byte("[")); err == nil || string(got) != "[" {
		t.Errorf("AppendJSON of a bad input = %s, %v; want [ and an error", got, err)
	}
}
