package handlers_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/triggerbus/triggerbus/pkg/handlers"
)

// Hostile result documents, as a broken or malicious webhook or command
// may return them: every rejection wraps ErrBadResult and says what is
// wrong; nothing panics.

func hostileNest(n int, v string) string {
	return strings.Repeat("[", n) + v + strings.Repeat("]", n)
}

func TestParseResultHostileRejected(t *testing.T) {
	tests := []struct {
		name string
		give string
		want string
	}{
		{name: "HTML error page", give: `<html><body>502 Bad Gateway</body></html>`, want: "not a JSON object: invalid character '<' looking for beginning of value"},
		{name: "NaN", give: `{"exitState":"FAILED","errorCode":NaN}`, want: "not a JSON object: invalid character 'N' looking for beginning of value"},
		{name: "Infinity in input", give: `{"input":{"cpu":Infinity}}`, want: "not a JSON object: invalid character 'I' looking for beginning of value"},
		{name: "exitState a number", give: `{"exitState":1}`, want: `exitState is a JSON number, want a string`},
		{name: "exitState an object", give: `{"exitState":{"FAILED":true}}`, want: `exitState is a JSON object, want a string`},
		{name: "message an object", give: `{"exitState":"FAILED","errorMessage":{"a":[1,{"b":null}]}}`, want: `errorMessage is a JSON object, want a string`},
		{name: "unknown keys and case", give: `{"EXITSTATE":"FAILED","exitstate":"SUCCESS","extra":[1,2,3]}`, want: `unknown key "EXITSTATE" (keys are case-sensitive: exitState)`},
		{name: "key twice", give: `{"exitState":"FAILED","exitState":"SUCCESS"}`, want: `key "exitState" appears more than once`},
		{name: "key twice, escaped", give: `{"exitState":"FAILED","exit\u0053tate":"SUCCESS"}`, want: `key "exitState" appears more than once`},
		{name: "exitState unknown", give: `{"exitState":"MAYBE"}`, want: `unknown exitState "MAYBE" (want SUCCESS, CONTINUE or FAILED)`},
		{name: "exitState invalid UTF-8", give: "{\"exitState\":\"FAILED\xff\"}", want: "unknown exitState \"FAILED\uFFFD\""},
		{name: "exitState with a NUL", give: `{"exitState":"FAILED\u0000"}`, want: `unknown exitState "FAILED\x00"`},
		{name: "a list", give: `[{"exitState":"FAILED"}]`, want: "the result is a JSON array, want an object"},
		{name: "a string", give: `"FAILED"`, want: "the result is a JSON string, want an object"},
		{name: "errorCode nested past encoding/json's limit", give: `{"exitState":"FAILED","errorCode":` + hostileNest(10_001, "") + `}`, want: "exceeded max depth"},
		{name: "truncated", give: `{"exitState":"FAI`, want: "not a JSON object: unexpected end of JSON input"},
		{name: "two documents", give: `{"exitState":"SUCCESS"}{"exitState":"FAILED"}`, want: "not a JSON object: invalid character '{' after top-level value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := handlers.ParseResult([]byte(tt.give))
			if err == nil {
				t.Fatalf("ParseResult(%.60q) = %+v, want an error", tt.give, r)
			}
			if !errors.Is(err, handlers.ErrBadResult) || !strings.HasPrefix(err.Error(), "handlers: bad result: ") {
				t.Errorf("ParseResult(%.60q) error %q does not wrap ErrBadResult", tt.give, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseResult(%.60q) error = %q, want it to contain %q", tt.give, err, tt.want)
			}
			if len(err.Error()) > 300 {
				t.Errorf("ParseResult(%.60q) error is %d bytes: it must not echo the document", tt.give, len(err.Error()))
			}
		})
	}
}

// TestParseResultHostileAccepted: odd but readable documents. A code or
// message that is a number is its text as written; a modified input is kept
// as written, huge numbers included.
func TestParseResultHostileAccepted(t *testing.T) {
	tests := []struct {
		name string
		give string
		want handlers.Result
	}{
		{name: "code a huge integer", give: `{"exitState":"failed","errorCode":123456789012345678901234567890}`,
			want: handlers.Result{ExitState: handlers.Failed, ErrorCode: "123456789012345678901234567890"}},
		{name: "code overflows a float64", give: `{"exitState":"FAILED","errorCode":1e400}`,
			want: handlers.Result{ExitState: handlers.Failed, ErrorCode: "1e400"}},
		{name: "message invalid UTF-8", give: "{\"exitState\":\"FAILED\",\"errorMessage\":\"bad \xff byte\"}",
			want: handlers.Result{ExitState: handlers.Failed, ErrorMessage: "bad \uFFFD byte"}},
		{name: "input with huge numbers", give: `{"exitState":"SUCCESS","input":{"cpu":1e400,"ram":123456789012345678901234567890}}`,
			want: handlers.Result{ExitState: handlers.Success, Input: json.RawMessage(`{"cpu":1e400,"ram":123456789012345678901234567890}`)}},
		{name: "input nested 1000 deep", give: `{"input":` + hostileNest(1000, "1") + `}`,
			want: handlers.Result{ExitState: handlers.Continue, Input: json.RawMessage(hostileNest(1000, "1"))}},
		{name: "whitespace and null", give: " \n\t null \r\n", want: handlers.Result{ExitState: handlers.Continue}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := handlers.ParseResult([]byte(tt.give))
			if err != nil {
				t.Fatalf("ParseResult(%.60q) error = %v", tt.give, err)
			}
			if r.ExitState != tt.want.ExitState || r.ErrorCode != tt.want.ErrorCode || r.ErrorMessage != tt.want.ErrorMessage ||
				string(r.Input) != string(tt.want.Input) {
				t.Errorf("ParseResult(%.60q) = %+v, want %+v", tt.give, r, tt.want)
			}
		})
	}
}

// FuzzParseResultHostile builds result documents from fuzzed parts (an
// exit state, a raw errorCode value, an input nested to a fuzzed depth)
// and checks that ParseResult never panics, that every error wraps
// ErrBadResult, and that an accepted input is the document's, valid JSON.
func FuzzParseResultHostile(f *testing.F) {
	for _, s := range []struct{ state, code, input string }{
		{"FAILED", `"CODE"`, `{}`}, {"failed", `1e400`, `1`}, {"\xff", `NaN`, `[`}, {"SUCCESS", `{"a":[]}`, `"\xff"`},
		{"", `null`, `null`}, {"CONTINUE", `-0`, `123456789012345678901234567890`}, {"FAILED\x00", `true`, `{"x":"y"}`},
	} {
		f.Add(s.state, []byte(s.code), []byte(s.input), uint16(3))
	}
	f.Fuzz(func(t *testing.T, state string, code, input []byte, depth uint16) {
		depth %= 300
		st, _ := json.Marshal(state)
		doc := `{"exitState":` + string(st) + `,"errorCode":` + string(code) + `,"input":` + hostileNest(int(depth), string(input)) + `}`
		r, err := handlers.ParseResult([]byte(doc))
		if err != nil {
			if !errors.Is(err, handlers.ErrBadResult) || !strings.HasPrefix(err.Error(), "handlers: bad result: ") {
				t.Fatalf("ParseResult(%q) error %q does not wrap ErrBadResult", doc, err)
			}
			return
		}
		switch r.ExitState {
		case handlers.Success, handlers.Continue, handlers.Failed:
		default:
			t.Fatalf("ParseResult(%q).ExitState = %q", doc, r.ExitState)
		}
		if r.Input != nil && !json.Valid(r.Input) {
			t.Fatalf("ParseResult(%q).Input = %q, not JSON", doc, r.Input)
		}
	})
}
