package event

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestDecisionRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		give Decision
	}{
		{"denied", Decision{
			ID: "01JDQ7Z6W3S6K4V0Q5H3YB3M8C", Allowed: false, Code: "QUOTA_EXCEEDED",
			Message: "servers are limited to 16 CPUs", Function: "deny_big_servers",
			Functions: []FunctionResult{{Ref: "deny_big_servers", Result: OutcomeFailed, Ms: 0.21}},
		}},
		{"modified", Decision{
			ID: "x", Allowed: true, Input: json.RawMessage(`{"resourceName":"web-1","cpu":4}`), Modified: true,
			Functions: []FunctionResult{
				{Ref: "a", Result: OutcomeSuccess, Ms: 1},
				{Ref: "b", Result: OutcomeTimeout, Ms: 5000, Error: "context deadline exceeded"},
				{Ref: "c", Result: OutcomeFailed, Shadow: true},
			},
		}},
		{"no functions", Decision{ID: "x", Allowed: true, Code: CodeTriggerOriginated, Functions: []FunctionResult{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := tt.give.Encode()
			if err != nil {
				t.Fatalf("Encode() error = %v", err)
			}
			got, err := DecodeDecision(data)
			if err != nil {
				t.Fatalf("DecodeDecision(%s) error = %v", data, err)
			}
			if !decisionsEqual(got, &tt.give) {
				t.Errorf("DecodeDecision(Encode()) = %+v, want %+v", got, tt.give)
			}
		})
	}
}

func TestDecisionEncode(t *testing.T) {
	d := &Decision{ID: "x", Allowed: true}
	data, err := d.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"id":"x","allowed":true,"modified":false,"functions":[]}`; string(data) != want {
		t.Errorf("Encode() = %s, want %s", data, want)
	}
	if d.Functions != nil {
		t.Errorf("Encode() changed the decision: Functions = %#v", d.Functions)
	}
	d = &Decision{ID: "y", Code: CodeBadRequest, Message: "not JSON"}
	data, _ = d.Encode()
	if want := `{"id":"y","allowed":false,"code":"BAD_REQUEST","message":"not JSON","modified":false,"functions":[]}`; string(data) != want {
		t.Errorf("Encode() = %s, want %s", data, want)
	}
}

func TestDecisionAppendEncode(t *testing.T) {
	d := &Decision{ID: "x", Allowed: true, Functions: []FunctionResult{{Ref: "f", Result: "CONTINUE", Ms: 0.5}}}
	want, err := d.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := d.AppendEncode([]byte("prefix"))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "prefix"+string(want) {
		t.Errorf("AppendEncode(prefix) = %s, want prefix%s", got, want)
	}
	bad := &Decision{ID: "y", Modified: true, Input: []byte("{")}
	if got, err := bad.AppendEncode(nil); err == nil || got != nil {
		t.Errorf("AppendEncode(bad input) = %q, %v; want nil and an error", got, err)
	}
}

func TestDecodeDecisionInvalid(t *testing.T) {
	tests := []struct{ name, give, wantMsg string }{
		{"not JSON", `nope`, "event: decision: invalid character"},
		{"empty", ``, "event: decision: unexpected end of JSON input"},
		{"array", `[]`, "event: decision: json: cannot unmarshal array"},
		{"empty object", `{}`, "reply has none of id, allowed, code"},
		{"null", `null`, "reply has none of id, allowed, code"},
		{"allowed a string", `{"id":"x","allowed":"yes"}`, "event: decision:"},
		{"functions an object", `{"id":"x","functions":{}}`, "event: decision:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := DecodeDecision([]byte(tt.give))
			if err == nil || d != nil {
				t.Fatalf("DecodeDecision(%q) = %+v, %v, want an error", tt.give, d, err)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("DecodeDecision(%q) error = %q, want it to contain %q", tt.give, err, tt.wantMsg)
			}
		})
	}
}

func TestDecodeDecisionTypeError(t *testing.T) {
	_, err := DecodeDecision([]byte(`{"id":"x","ms":"1"}`))
	if err != nil {
		t.Fatalf("DecodeDecision() with an unknown field: %v, want it ignored", err)
	}
	_, err = DecodeDecision([]byte(`{"id":1}`))
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) {
		t.Errorf("DecodeDecision() error = %v, want it to wrap the *json.UnmarshalTypeError", err)
	}
}

// decisionsEqual compares decisions, Input as a JSON value and a nil
// Functions as equal to an empty one.
func decisionsEqual(a, b *Decision) bool {
	return a.ID == b.ID && a.Allowed == b.Allowed && a.Code == b.Code && a.Message == b.Message &&
		a.Function == b.Function && a.Modified == b.Modified && rawEqual(a.Input, b.Input) &&
		slices.Equal(a.Functions, b.Functions)
}
