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

var fuzzSubjects = []string{
	"trigger.PRE_CREATE.SERVER", "trigger.POST_CREATE.DISK", "trigger.PRE_AUTH.ANY", "trigger.POST_USER_API_CALL.createServer",
}

// FuzzDecode checks that Decode never panics, that what it accepts fits the
// subject and survives Encode: Decode(Encode(e)) equals e, its raw fields as
// JSON values (Encode compacts them), and encodes to the same bytes.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		``, `{}`, `null`, `[1]`, `"x"`, `42`, `true`, `{"id":`, `{} {}`,
		benchEvent,
		`{"id":"01JDQ7Z6W3S6K4V0Q5H3YB3M8C","triggerType":"PRE_CREATE","triggerOption":"SERVER","timeStamp":1764420000000}`,
		`{"triggerType":"POST_CREATE"}`, `{"triggerOption":"DISK"}`, `{"timeStamp":"x"}`, `{"timeStamp":1.5}`, `{"id":7}`,
		`{"input": { "huge": 1e400, "big": 12345678901234567890, "nested": [ {"a": [[1], {"b": null}]} ] }}`,
		`{"input":"[[[[[[[[[[","x-extra":{"k":"<&>"},"ID":"other","customer":null,"user":[ ]}`,
		`{"a":1,"a":2,"\u0069d":"escaped-key","\ud800":"lone surrogate","inv` + "\xff" + `":"` + "\xfe" + `"}`,
		`[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`,
	} {
		for i := range fuzzSubjects {
			f.Add([]byte(s), uint8(i))
		}
	}
	scheme, err := subjects.NewScheme(subjects.DefaultPrefix)
	if err != nil {
		f.Fatal(err)
	}
	subjs := make([]subjects.Subject, len(fuzzSubjects))
	for i, s := range fuzzSubjects {
		if subjs[i], err = scheme.Parse(s); err != nil {
			f.Fatal(err)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, which uint8) {
		subj := subjs[int(which)%len(subjs)]
		orig := bytes.Clone(data)
		e, err := Decode(data, subj, Limits{MaxDepth: 16})
		if !bytes.Equal(data, orig) {
			t.Fatalf("Decode changed its input")
		}
		if err != nil {
			if !errors.Is(err, ErrInvalid) || e != nil {
				t.Fatalf("Decode(%q) = %v, %v, want nil and an ErrInvalid", data, e, err)
			}
			return
		}
		if len(e.ID) == 0 || e.TimeStamp == 0 || e.TriggerType != subj.Type.Name || e.TriggerOption != subj.Option {
			t.Fatalf("Decode(%q) = %+v, missing a filled field", data, e)
		}
		// Raw fields are the payload's own bytes.
		for name, raw := range rawFields(e) {
			if !json.Valid(raw) || !bytes.Contains(data, raw) {
				t.Fatalf("Decode(%q): raw field %q = %q, not a JSON value from the payload", data, name, raw)
			}
		}
		enc, err := e.Encode()
		if err != nil {
			t.Fatalf("Encode(Decode(%q)) error = %v", data, err)
		}
		e2, err := Decode(enc, subj, Limits{MaxDepth: 16})
		if err != nil {
			t.Fatalf("Decode(Encode(Decode(%q))) = %v; encoded %s", data, err, enc)
		}
		if !eventsEqual(e, e2) {
			t.Fatalf("Decode(Encode(e)) = %+v, want %+v", e2, e)
		}
		enc2, err := e2.Encode()
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("Encode is not stable: %s then %s (%v)", enc, enc2, err)
		}
	})
}

func rawFields(e *Event) map[string]json.RawMessage {
	m := map[string]json.RawMessage{}
	for k, v := range e.Extra {
		m[k] = v
	}
	for k, v := range map[string]json.RawMessage{"customer": e.Customer, "user": e.User, "input": e.Input} {
		if v != nil {
			m[k] = v
		}
	}
	return m
}

// FuzzDecodeDecision checks that DecodeDecision never panics and that what it
// accepts survives Encode.
func FuzzDecodeDecision(f *testing.F) {
	for _, s := range []string{
		``, `{}`, `null`, `[]`, `nope`, `{"id":"x"}`, `{"allowed":true}`, `{"code":"NO_WORKER"}`,
		`{"id":"x","allowed":false,"code":"QUOTA_EXCEEDED","message":"servers are limited to 16 CPUs","function":"deny",` +
			`"input":{"cpu":4},"modified":true,"functions":[{"ref":"deny","result":"FAILED","ms":0.21,"shadow":true,"error":"e"}]}`,
		`{"id":"x","functions":null,"input":null}`, `{"ID":"x","Allowed":true,"input":"<&>"}`, `{"id":"x","functions":[{"ms":-0}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := DecodeDecision(data)
		if err != nil {
			if d != nil || !strings.HasPrefix(err.Error(), "event: decision: ") {
				t.Fatalf("DecodeDecision(%q) = %+v, %v", data, d, err)
			}
			return
		}
		enc, err := d.Encode()
		if err != nil {
			t.Fatalf("Encode(DecodeDecision(%q)) error = %v", data, err)
		}
		if !bytes.Contains(enc, []byte(`"functions":[`)) {
			t.Fatalf("Encode() = %s, want a functions list", enc)
		}
		d2, err := DecodeDecision(enc)
		if err != nil {
			t.Fatalf("DecodeDecision(Encode(DecodeDecision(%q))) error = %v; encoded %s", data, err, enc)
		}
		if !decisionsEqual(d, d2) {
			t.Fatalf("DecodeDecision(Encode(d)) = %+v, want %+v", d2, d)
		}
	})
}

// FuzzUnmarshalReference holds Event.UnmarshalJSON to the reference
// implementation: the same events, raw fields byte for byte, and the same
// errors (when several contract fields are wrong the reference reports any
// one of them, so only the kind of error is compared then).
func FuzzUnmarshalReference(f *testing.F) {
	for _, s := range []string{
		``, ` `, `{}`, `null`, ` null `, `[1]`, `"x"`, `-1.5e3`, `false`, `{"id":`, `{} {}`, `{,}`, "{\"a\":\"\x01\"}",
		benchEvent,
		`{"id":5,"id":"last wins"}`, `{"id":"x","id":5}`, `{"\u0069d":"escaped","id":"plain"}`, `{"a":1,"a":{"b":2}}`,
		`{ "timeStamp" : 123 , "timeStamp":-0, "x" : [ 1 , "]" , {"}":"\\"} ] }`,
		`{"timeStamp":999999999999999999}`, `{"timeStamp":9999999999999999999}`, `{"timeStamp":-9223372036854775808}`,
		`{"timeStamp":"1"}`, `{"timeStamp":1.0}`, `{"timeStamp":1e3}`, `{"timeStamp":null,"id":null,"input":null}`,
		`{"id":"caf\u00e9","beUUID":"tab\there","triggerType":"` + "\xff" + `","triggerOption":"é"}`,
		`{"` + "k\xffey" + `":1,"k\u00e9y":2,"":3,"\"":4}`,
		`{"input":{"huge":1e400,"big":12345678901234567890},"customer":[ ],"user":"u"}`,
		`{"id":1,"triggerType":2,"triggerOption":3,"timeStamp":"4","beUUID":5}`,
		`{"timeStamp":1,"deadline":2,"customer":3}`, `{"customer":{},"deadline":-7,"deadline":8}`, `{"deadline":"9"}`,
		`{"deadline":1.5}`, `{"deadline":null}`, `{"deadlinf":1,"customes":2}`,
		`{"id":"a","triggerType":"t","idx":1,"id":"b","triggerTypes":2,"triggerTyp":3,"beUUID":"` + "1234567\xe9" + `"}`,
		`{"id"`, `{"id":`, `{"id":"12345678\u2028","beUUID":"1234567\"","input":"abcdefgh\\"}`, `{"input":1,"id":"x"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var got, want Event
		gotErr := got.UnmarshalJSON(data)
		wantErr := refUnmarshal(&want, data)
		switch {
		case gotErr == nil && wantErr == nil:
			if !sameEvent(&got, &want) {
				t.Fatalf("UnmarshalJSON(%q) = %+v, reference %+v", data, got, want)
			}
		case gotErr == nil || wantErr == nil:
			t.Fatalf("UnmarshalJSON(%q) error = %v, reference %v", data, gotErr, wantErr)
		case gotErr.Error() != wantErr.Error():
			if !strings.HasPrefix(gotErr.Error(), `field "`) || !strings.HasPrefix(wantErr.Error(), `field "`) {
				t.Fatalf("UnmarshalJSON(%q) error = %q, reference %q", data, gotErr, wantErr)
			}
		}
	})
}

// sameEvent compares events exactly, raw fields byte for byte.
func sameEvent(a, b *Event) bool {
	if a.ID != b.ID || a.TriggerType != b.TriggerType || a.TriggerOption != b.TriggerOption ||
		a.TimeStamp != b.TimeStamp || a.Deadline != b.Deadline || a.BEUUID != b.BEUUID || !bytes.Equal(a.Customer, b.Customer) ||
		!bytes.Equal(a.User, b.User) || !bytes.Equal(a.Input, b.Input) || len(a.Extra) != len(b.Extra) ||
		(a.Customer == nil) != (b.Customer == nil) || (a.User == nil) != (b.User == nil) || (a.Input == nil) != (b.Input == nil) {
		return false
	}
	for k, v := range a.Extra {
		if w, ok := b.Extra[k]; !ok || !bytes.Equal(v, w) {
			return false
		}
	}
	return true
}

// FuzzDecodeShared holds DecodeShared to Decode: the same event, byte for
// byte, or the same error; and an event's strings stay what they were when
// its raw fields are overwritten, by either.
func FuzzDecodeShared(f *testing.F) {
	for _, s := range []string{
		``, `{}`, `null`, `{"id":`, benchEvent, `{"id":""}`, `{"id":"a\"b","beUUID":"é"}`, `{"beUUID":"x","beUUID":"y","id":1}`,
		`{"a":1,"a":2,"\u0069d":"escaped-key","\ud800":"lone surrogate","inv` + "\xff" + `":"` + "\xfe" + `"}`,
		`{"input":{"id":"inner"},"id":"outer","customer":"c","user":[1]}`,
		`{"id":"1234567` + "\x80" + `","beUUID":"12345678é","triggerType":"PRE_CREATE","triggerOption":"SERVER","id\"":1}`,
	} {
		for i := range fuzzSubjects {
			f.Add([]byte(s), uint8(i))
		}
	}
	scheme, err := subjects.NewScheme(subjects.DefaultPrefix)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte, which uint8) {
		subj, err := scheme.Parse(fuzzSubjects[int(which)%len(fuzzSubjects)])
		if err != nil {
			t.Fatal(err)
		}
		lim := Limits{MaxDepth: 16}
		before := time.Now().UnixMilli()
		copied, cerr := Decode(data, subj, lim)
		shared, serr := DecodeShared(bytes.Clone(data), subj, lim)
		into := &Event{}
		ierr := DecodeSharedInto(into, bytes.Clone(data), subj, lim)
		after := time.Now().UnixMilli()
		if (cerr == nil) != (serr == nil) || cerr != nil && cerr.Error() != serr.Error() {
			t.Fatalf("Decode(%q) error %v, DecodeShared %v", data, cerr, serr)
		}
		if (cerr == nil) != (ierr == nil) || cerr != nil && cerr.Error() != ierr.Error() {
			t.Fatalf("Decode(%q) error %v, DecodeSharedInto %v", data, cerr, ierr)
		}
		if cerr != nil {
			return
		}
		// An id or time stamp the payload lacks is made anew by each.
		made := func(ts int64) bool { return ts >= before && ts <= after }
		for _, e := range []*Event{shared, into} {
			if !bytes.Contains(data, []byte(copied.ID)) {
				e.ID = copied.ID
			}
			if copied.TimeStamp != e.TimeStamp && made(copied.TimeStamp) && made(e.TimeStamp) {
				e.TimeStamp = copied.TimeStamp
			}
		}
		if !sameBytes(copied, shared) {
			t.Fatalf("DecodeShared(%q) = %+v, Decode %+v", data, shared, copied)
		}
		if !sameBytes(copied, into) {
			t.Fatalf("DecodeSharedInto(%q) = %+v, Decode %+v", data, into, copied)
		}
		for _, e := range []*Event{copied, shared} {
			id, be := strings.Clone(e.ID), strings.Clone(e.BEUUID)
			for _, raw := range rawFields(e) {
				for i := range raw {
					raw[i] = 'x'
				}
			}
			if e.ID != id || e.BEUUID != be {
				t.Fatalf("overwriting the raw fields of the event of %q changed id %q -> %q, beUUID %q -> %q", data, id, e.ID, be, e.BEUUID)
			}
		}
	})
}

// sameBytes reports whether a and b are the same event, raw fields byte for
// byte.
func sameBytes(a, b *Event) bool {
	if a.ID != b.ID || a.TriggerType != b.TriggerType || a.TriggerOption != b.TriggerOption ||
		a.TimeStamp != b.TimeStamp || a.BEUUID != b.BEUUID ||
		!bytes.Equal(a.Customer, b.Customer) || !bytes.Equal(a.User, b.User) || !bytes.Equal(a.Input, b.Input) ||
		(a.Customer == nil) != (b.Customer == nil) || (a.User == nil) != (b.User == nil) || (a.Input == nil) != (b.Input == nil) ||
		len(a.Extra) != len(b.Extra) {
		return false
	}
	for k, v := range a.Extra {
		w, ok := b.Extra[k]
		if !ok || !bytes.Equal(v, w) {
			return false
		}
	}
	return true
}
