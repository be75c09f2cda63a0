package event

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unsafe"
)

// decisionParitySeeds are replies at the edges of what encoding/json
// accepts into a Decision.
var decisionParitySeeds = []string{
	``, ` `, `{}`, `null`, ` null `, `[]`, `"x"`, `1`, `true`, `nope`, `{} {}`, `{,}`, `{"id":}`, `{"id":"x",}`,
	`{"id":"x"}`, `{"allowed":true}`, `{"code":"NO_WORKER"}`, `{"ID":"x","ALLOWED":true,"Code":"c"}`,
	`{"id":"x","allowed":false,"code":"QUOTA_EXCEEDED","message":"servers are limited to 16 CPUs","function":"deny",` +
		`"input":{"cpu":4},"modified":true,"functions":[{"ref":"deny","result":"FAILED","ms":0.21,"shadow":true,"error":"e"}],"revision":7}`,
	`{"id":"x","functions":null,"input":null}`, `{"id":"x","input":"<&>"}`, `{"id":"x","input": [1, {"a":null}] }`,
	`{"id":"x","functions":[{"ms":-0}]}`, `{"id":"x","functions":[]}`, `{"id":"x","functions":[null,{}]}`,
	`{"id":"x","functions":[{"ref":"a","ms":1},{"ref":"b"}],"functions":[{"result":"R"}]}`,
	`{"id":"x","functions":[{"ref":"a"}],"functions":[],"functions":[{"ms":2}]}`,
	`{"id":"x","functions":[{"ref":"a"},{"ref":"b"},{"ref":"c"}],"functions":[{"ms":1}],"functions":[{},{}]}`,
	`{"id":"x","id":null,"id":"y","allowed":true,"allowed":null}`,
	`{"i\u0064":"esc","me\u017f\u017fage":"long s","\u212a":"kelvin","message":"m"}`,
	`{"id":"\ud800","code":"\ud83d\ude00","message":"\ud800\u0041","function":"\ud83d\ud83d\ude00"}`,
	`{"id":"\u00e9\n\t\/\\\"","code":"` + "\xff\xfe" + `","message":"` + "\xed\xa0\x80" + `"}`,
	`{"id":"x","message":"` + "\x01" + `"}`, `{"id":"x\q"}`, `{"id":"\u12"}`, `{"id":"\u12zz"}`,
	`{"id":"x","revision":18446744073709551615}`, `{"id":"x","revision":18446744073709551616}`,
	`{"id":"x","revision":-1}`, `{"id":"x","revision":1.0}`, `{"id":"x","revision":1e2}`, `{"id":"x","revision":-0}`,
	`{"id":"x","functions":[{"ms":1e400}]}`, `{"id":"x","functions":[{"ms":-1.5e-3}]}`, `{"id":"x","functions":[{"ms":01}]}`,
	`{"id":"x","functions":[{"ms":1.}]}`, `{"id":"x","functions":[{"ms":.5}]}`, `{"id":"x","functions":[{"ms":"1"}]}`,
	`{"id":"x","allowed":"true"}`, `{"id":"x","allowed":1}`, `{"id":1}`, `{"id":"x","functions":{}}`,
	`{"id":"x","functions":[1]}`, `{"id":"x","functions":[{"shadow":"no"}]}`, `{"id":"x","unknown":{"a":[1,2,{"b":"c"}]}}`,
	`{"id":"x","allowed":tru}`, `{"id":"x","allowed":NaN}`, `{"id" "x"}`, `{"id":"x"`, `{"id":"x"]`, `[{"allowed":true}]`,
	`{"id":"x","input":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}`,
	`{"id":"x","input":` + strings.Repeat("[", 9999) + strings.Repeat("]", 9999) + `}`,
	`{"id":"x","functions":[{"x":` + strings.Repeat("[", 9997) + strings.Repeat("]", 9997) + `}]}`,
	`{"id":"x","functions":[{"x":` + strings.Repeat("[", 9998) + strings.Repeat("]", 9998) + `}]}`,
	"\t{\"id\" : \"x\" ,\r\n \"allowed\" : true }\n",
}

// FuzzDecodeDecisionParity holds the hand-written decoder to encoding/json:
// both fail, or both give the same decision.
func FuzzDecodeDecisionParity(f *testing.F) {
	for _, s := range decisionParitySeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var got, want Decision
		err := decodeDecision(data, &got)
		werr := json.Unmarshal(data, &want)
		if (err == nil) != (werr == nil) {
			t.Fatalf("decodeDecision(%q) error = %v, encoding/json's = %v", data, err, werr)
		}
		if err == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("decodeDecision(%q) = %#v, encoding/json gives %#v", data, got, want)
		}
		// The id and the spare function result change nothing either,
		// whether the id is the reply's or not.
		for _, id := range []string{"x", want.ID} {
			var got2 Decision
			var spare [1]FunctionResult
			err2 := decodeDecisionFor(data, &got2, id, &spare)
			if (err2 == nil) != (werr == nil) {
				t.Fatalf("decodeDecisionFor(%q, %q) error = %v, encoding/json's = %v", data, id, err2, werr)
			}
			if err2 == nil && !reflect.DeepEqual(got2, want) {
				t.Fatalf("decodeDecisionFor(%q, %q) = %#v, encoding/json gives %#v", data, id, got2, want)
			}
		}
	})
}

// TestDecodeDecisionErrorsUnchanged: a reply that is not a decision gets
// encoding/json's error, as before the hand-written decoder.
func TestDecodeDecisionErrorsUnchanged(t *testing.T) {
	for _, s := range decisionParitySeeds {
		var want Decision
		werr := json.Unmarshal([]byte(s), &want)
		if werr == nil {
			continue
		}
		_, err := DecodeDecision([]byte(s))
		if err == nil || err.Error() != "event: decision: "+werr.Error() {
			t.Errorf("DecodeDecision(%.60q) error = %v, want event: decision: %v", s, err, werr)
		}
	}
}

// BenchmarkDecodeDecision reads a typical PRE reply (two functions, the
// input modified), with DecodeDecision and, for comparison, with
// encoding/json's Unmarshal.
func BenchmarkDecodeDecision(b *testing.B) {
	d := &Decision{
		ID: "01JDQ7Z6W3S6K4V0Q5H3YB3M8C", Allowed: true, Modified: true,
		Input: json.RawMessage(`{"resourceName":"web-1","cpu":4,"ram":8192}`),
		Functions: []FunctionResult{
			{Ref: "deny_big_servers", Result: OutcomeContinue, Ms: 0.21},
			{Ref: "name_servers", Result: OutcomeSuccess, Ms: 0.05},
		},
		Revision: 12,
	}
	data, err := d.Encode()
	if err != nil {
		b.Fatal(err)
	}
	b.Run("DecodeDecision", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := DecodeDecision(data); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("DecodeDecisionFor", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := DecodeDecisionFor(data, d.ID); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var d Decision
			if err := json.Unmarshal(data, &d); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestDecodeDecisionForShares: the SDK's reading of a reply to its own
// event gives the decision's id the event id's string and makes the
// decision and its one function result together: two allocations in all
// (the block, the function's ref), where DecodeDecision makes three (the
// id too).
func TestDecodeDecisionForShares(t *testing.T) {
	id := "01JDQ7Z6W3S6K4V0Q5H3YB3M8C"
	data := []byte(`{"id":"` + id + `","allowed":true,"modified":false,"functions":[{"ref":"noop","result":"CONTINUE","ms":0.004}]}`)
	d, err := DecodeDecisionFor(data, id)
	if err != nil {
		t.Fatal(err)
	}
	if d.ID != id || unsafe.StringData(d.ID) != unsafe.StringData(id) {
		t.Errorf("id %q does not share the event id's string", d.ID)
	}
	if len(d.Functions) != 1 || d.Functions[0].Ref != "noop" || d.Functions[0].Result != OutcomeContinue {
		t.Errorf("functions %+v", d.Functions)
	}
	other, err := DecodeDecisionFor(data, "01JDQ7Z6W3S6K4V0Q5H3YB3M8D")
	if err != nil || other.ID != id {
		t.Errorf("another event's id: %+v, %v", other, err)
	}
	shared := testing.AllocsPerRun(100, func() { _, _ = DecodeDecisionFor(data, id) })
	plain := testing.AllocsPerRun(100, func() { _, _ = DecodeDecision(data) })
	if shared != 2 || plain != 3 {
		t.Errorf("allocations: DecodeDecisionFor %v, DecodeDecision %v; want 2 and 3", shared, plain)
	}
}
