package event

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// scanValid reports whether the scanner takes data as one JSON value.
func scanValid(data []byte) bool {
	end := scanValue(data, 0, 0, maxNesting, false)
	return end >= 0 && skipSpace(data, end) == len(data)
}

// checkCompact holds the compact scan to encoding/json: it takes data
// exactly when data is valid JSON that json.Compact and json.HTMLEscape
// leave as it is, but for a 0xE2 byte in a string, which it always leaves
// to them (only some are U+2028 and U+2029).
func checkCompact(t *testing.T, data []byte) {
	t.Helper()
	got := scanValue(data, 0, 0, maxNesting, true) == len(data)
	want := false
	var compacted, escaped bytes.Buffer
	if json.Compact(&compacted, data) == nil {
		json.HTMLEscape(&escaped, compacted.Bytes())
		want = bytes.Equal(escaped.Bytes(), data) && bytes.IndexByte(data, 0xE2) < 0
	}
	if got != want {
		t.Errorf("compact scan of %q = %v, want %v", data, got, want)
	}
}

// scanCases are values at the edges of the grammar, valid or not.
var scanCases = []string{
	``, ` `, `0`, `-0`, `-`, `01`, `1.`, `1.5`, `.5`, `1e`, `1e+`, `1e+5`, `1E-05`, `-1.5e3`, `1x`, `+1`, `1 2`,
	`true`, `tru`, `truex`, `false`, `null`, `nul`, `NaN`, `"`, `""`, `"\"`, `"\\"`, `"\u12"`, `"\u12g4"`, `"\u12Ab"`,
	`"\x"`, "\"\x01\"", "\"\x7f\"", "\"\xff\xfe\"", `"\/\b\f\n\r\t"`, `[`, `]`, `[]`, `[,]`, `[1,]`, `[1 2]`, `[[]]`,
	`{}`, `{,}`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{"a":1 "b":2}`, `{1:2}`, `{"a":1}}`, `{"a" : [ 1 , {"b":null} ] }`,
	"\t{\n}\r ", `{} {}`, `[1][2]`, "\ufeff{}",
	strings.Repeat("[", maxNesting) + strings.Repeat("]", maxNesting),
	strings.Repeat("[", maxNesting+1) + strings.Repeat("]", maxNesting+1),
	strings.Repeat(`{"a":`, maxNesting) + "1" + strings.Repeat("}", maxNesting),
	strings.Repeat(`{"a":`, maxNesting+1) + "1" + strings.Repeat("}", maxNesting+1),
}

// wordCases are strings whose byte that needs a look (the end, an escape,
// a byte that is not ASCII or one compact refuses) falls at each place of
// the eight-byte words the string scanner reads, and at the end of data.
func wordCases() []string {
	var cases []string
	for n := range 18 {
		pad := strings.Repeat("a", n)
		for _, x := range []string{``, `\"`, `\\`, `\/`, `\u00e9`, `\u12`, `\uD800`, `\`, `\x`, "\x01", "\x1f", "\x7f",
			"\x80", "\xff", "é", "\u2028", "\u2029", "\xe2", "<", ">", "&", " ", "\t"} {
			cases = append(cases, `"`+pad+x+`"`, `"`+pad+x, `["`+pad+x+`",1]`, `{"`+pad+x+`":"`+x+pad+`"}`)
		}
	}
	return append(cases, `"`+strings.Repeat("long string é ", 100)+`"`, `"`+strings.Repeat("x", 1000)+"\u2028\"")
}

// TestScanMatchesValid: the one-pass scanner accepts what json.Valid
// accepts, at its nesting limit too.
func TestScanMatchesValid(t *testing.T) {
	for _, c := range append(wordCases(), scanCases...) {
		if got, want := scanValid([]byte(c)), json.Valid([]byte(c)); got != want {
			t.Errorf("scan(%.40q) valid = %v, json.Valid %v", c, got, want)
		}
		checkCompact(t, []byte(c))
	}
}

// FuzzScanMatchesValid holds the scanner to json.Valid.
func FuzzScanMatchesValid(f *testing.F) {
	for _, c := range scanCases[:len(scanCases)-4] {
		f.Add([]byte(c))
	}
	for _, c := range wordCases() {
		f.Add([]byte(c))
	}
	f.Add([]byte(benchEvent))
	f.Fuzz(func(t *testing.T, data []byte) {
		if got, want := scanValid(data), json.Valid(data); got != want {
			t.Fatalf("scan(%q) valid = %v, json.Valid %v", data, got, want)
		}
		checkCompact(t, data)
	})
}

// TestDecodeOnePassDepth: a nesting over the limit is refused with the
// depth error even when the JSON is also broken further on, as before the
// one pass (the depth is checked first).
func TestDecodeOnePassDepth(t *testing.T) {
	subj := mustSubject(t, "trigger.PRE_CREATE.SERVER")
	for _, data := range []string{
		`{"input":` + strings.Repeat("[", 10) + strings.Repeat("]", 10) + `}`,
		`{"input":` + strings.Repeat("[", 10) + `x`,
		`{"input": x, "other":` + strings.Repeat("[", 10) + strings.Repeat("]", 10) + `}`,
	} {
		_, err := Decode([]byte(data), subj, Limits{MaxDepth: 5})
		if err == nil || !strings.Contains(err.Error(), "JSON nested deeper than 5 levels") {
			t.Errorf("Decode(%q) error = %v, want the depth error", data, err)
		}
	}
	if _, err := Decode([]byte(`{"input": x}`), subj, Limits{MaxDepth: 5}); err == nil || !strings.Contains(err.Error(), "not JSON: invalid character 'x'") {
		t.Errorf("Decode of broken JSON error = %v, want encoding/json's syntax error", err)
	}
}

// TestDecodeReusesSubjectStrings: a triggerType and triggerOption equal to
// the subject's are taken without a copy, and Decode allocates a fixed few
// objects for a whole event.
func TestDecodeReusesSubjectStrings(t *testing.T) {
	subj := mustSubject(t, "trigger.PRE_CREATE.SERVER")
	data := []byte(benchEvent)
	allocs := testing.AllocsPerRun(100, func() {
		e, err := Decode(data, subj, Limits{})
		if err != nil || e.TriggerType != "PRE_CREATE" || e.TriggerOption != "SERVER" {
			t.Fatalf("Decode = %+v, %v", e, err)
		}
	})
	// The event, the copy the raw fields share, the id and the beUUID.
	if allocs > 4 {
		t.Errorf("Decode allocates %v objects, want at most 4", allocs)
	}
}
