package event

import (
	"encoding/json"
	"testing"
)

// benchEvent is a realistic PRE_CREATE SERVER event of about 300 bytes.
const benchEvent = `{"id":"01JDQ7Z6W3S6K4V0Q5H3YB3M8C","triggerType":"PRE_CREATE","triggerOption":"SERVER",` +
	`"timeStamp":1764420000000,"beUUID":"b1c6e2d4",` +
	`"customer":{"resourceUUID":"c2d3e4f5","resourceName":"Acme","billingEntityUUID":"b1c6e2d4"},` +
	`"user":{"resourceUUID":"u9f8e7d6","email":"ann@acme.example"},` +
	`"input":{"resourceName":"web-1","cpu":4,"ram":8192}}`

func BenchmarkDecode(b *testing.B) {
	subj := mustSubject(b, "trigger.PRE_CREATE.SERVER")
	data := []byte(benchEvent)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(data, subj, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeShared is BenchmarkDecode without the payload copy, as the
// worker decodes a core message.
func BenchmarkDecodeShared(b *testing.B) {
	subj := mustSubject(b, "trigger.PRE_CREATE.SERVER")
	data := []byte(benchEvent)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeShared(data, subj, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncode(b *testing.B) {
	e, err := Decode([]byte(benchEvent), mustSubject(b, "trigger.PRE_CREATE.SERVER"), Limits{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Encode(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecisionEncode(b *testing.B) {
	d := &Decision{
		ID: "01JDQ7Z6W3S6K4V0Q5H3YB3M8C", Allowed: true, Modified: true,
		Input: json.RawMessage(`{"resourceName":"web-1","cpu":4,"ram":8192}`),
		Functions: []FunctionResult{
			{Ref: "deny_big_servers", Result: OutcomeContinue, Ms: 0.21},
			{Ref: "name_servers", Result: OutcomeSuccess, Ms: 0.05},
		},
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.Encode(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkScan is the validating scan alone, of the event of
// BenchmarkDecode.
func BenchmarkScan(b *testing.B) {
	data := []byte(benchEvent)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if scanValue(data, 0, 0, maxNesting, false) != len(data) {
			b.Fatal("not valid")
		}
	}
}

func BenchmarkNewID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = NewID()
	}
}
