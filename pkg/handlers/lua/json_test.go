package lua

import (
	"bytes"
	"encoding/json"
	"math/big"
	"reflect"
	"strconv"
	"testing"

	lua "github.com/yuin/gopher-lua"

	"github.com/triggerbus/triggerbus/pkg/event"
)

// FuzzLuaJSON checks the Lua JSON codec against encoding/json: both accept
// the same documents, and what the codec decodes encodes back to the same
// value.
func FuzzLuaJSON(f *testing.F) {
	for _, s := range []string{
		`{"cpu":4,"ram":8192,"name":"web-1","tags":["a","b"],"meta":{"x":null,"y":1.5},"big":12345678901234567890}`,
		`[1,-0,0.5,1e3,1E-7,-12.5e+10,123456789012345678901234567890,1e400]`,
		`"caf\u00e9 \ud83d\ude00 \ud800 \udc00x \u2028 \/ \b\f\n\r\t \"\\"`,
		"\"\xff\xfe raw \xe2\x82\"",
		`{"a":{"b":{"c":[[],{},[{}]]}},"a":1}`,
		` true `, `false`, `null`, `{}`, `[]`, `[null,null]`, `{"1":1,"2":2}`,
		`{"a" 1}`, `[1,]`, `01`, `1.`, `-`, `"\x"`, `[1] 2`, "\"a\x01\"", `{"a":1,}`, `nul`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		L := lua.NewState(lua.Options{SkipOpenLibs: true})
		defer L.Close()
		null := L.NewUserData()
		null.Value = nullValue{}
		c := &jsonCodec{L: L, null: null}

		v, text, err := c.decode(data)
		valid := json.Valid(data)
		if (err == nil) != valid {
			t.Fatalf("decode(%q) error = %v, json.Valid = %v", data, err, valid)
		}
		if err != nil {
			return
		}
		want := jsonAny(t, data)
		holder := L.NewTable()
		holder.RawSetString("v", v)
		c.keepText(holder, lua.LString("v"), v, text)
		out, err := c.encodeAt(holder, lua.LString("v"))
		if err != nil {
			t.Fatalf("encode(decode(%q)) error = %v", data, err)
		}
		if !json.Valid(out) {
			t.Fatalf("encode(decode(%q)) = %q, not JSON", data, out)
		}
		if got := jsonAny(t, out); !jsonEqual(got, want) {
			t.Fatalf("encode(decode(%q)) = %s, want the same value as encoding/json reads", data, out)
		}
		// Again on the same codec, whose keys now hold the document's.
		v2, text2, err := c.decode(data)
		if err != nil {
			t.Fatalf("decode(%q) again: %v", data, err)
		}
		holder.RawSetString("v", v2)
		c.keepText(holder, lua.LString("v"), v2, text2)
		out2, err := c.encodeAt(holder, lua.LString("v"))
		if err != nil || !bytes.Equal(out2, out) {
			t.Fatalf("encode(decode(%q)) again = %s, %v; want %s", data, out2, err, out)
		}
	})
}

// TestLuaJSONKeysKept checks the codec's kept keys: bounded in number and
// length, and what they give is the key as decoded.
func TestLuaJSONKeysKept(t *testing.T) {
	L := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer L.Close()
	c := &jsonCodec{L: L, null: L.NewUserData()}
	var doc bytes.Buffer
	doc.WriteString(`{"x\u0041":1,"café":2,"`)
	doc.WriteString(string(bytes.Repeat([]byte("k"), keyMaxKept+1)))
	doc.WriteString(`":3`)
	for i := range 2 * keysKeep {
		doc.WriteString(`,"key` + string(rune('a'+i%26)) + strconv.Itoa(i) + `":0`)
	}
	doc.WriteString(`}`)
	for round := range 2 {
		v, _, err := c.decode(doc.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		tb := v.(*lua.LTable)
		for k, want := range map[string]lua.LNumber{"xA": 1, "café": 2, string(bytes.Repeat([]byte("k"), keyMaxKept+1)): 3, "keyb1": 0} {
			if got := tb.RawGetString(k); got != want {
				t.Errorf("round %d: [%q] = %v, want %v", round, k, got, want)
			}
		}
		if n := len(c.keys); n != keysKeep {
			t.Errorf("round %d: %d keys kept, want %d", round, n, keysKeep)
		}
		for k := range c.keys {
			if len(k) > keyMaxKept || k == "xA" {
				t.Errorf("round %d: kept %q", round, k)
			}
		}
	}
}

func jsonAny(t *testing.T, data []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("encoding/json: %v", err)
	}
	return v
}

// jsonEqual compares decoded JSON values, numbers by value.
func jsonEqual(a, b any) bool {
	switch b := b.(type) {
	case json.Number:
		an, ok := a.(json.Number)
		if !ok {
			return false
		}
		ar, aok := new(big.Rat).SetString(string(an))
		br, bok := new(big.Rat).SetString(string(b))
		if aok && bok {
			return ar.Cmp(br) == 0
		}
		return an == b
	case map[string]any:
		am, ok := a.(map[string]any)
		if !ok || len(am) != len(b) {
			return false
		}
		for k, v := range b {
			if !jsonEqual(am[k], v) {
				return false
			}
		}
		return true
	case []any:
		aa, ok := a.([]any)
		if !ok || len(aa) != len(b) {
			return false
		}
		for i := range b {
			if !jsonEqual(aa[i], b[i]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a, b)
}

// FuzzCanonicalInput checks appendCanonical against what a call compares a
// script's input with otherwise: the codec's encoding of p.input, decoded
// from the document and readied by the FDL layer. Where appendCanonical
// takes a document, the two are the same bytes; it takes none the codec
// refuses.
func FuzzCanonicalInput(f *testing.F) {
	for _, s := range []string{
		`{"resourceName":"web-1","cpu":4,"ram":8192,"sentNs":1764420000123456789,"pad":"xxxx"}`,
		`{"cpu":4,"ram":8192,"name":"web-1","tags":["a","b"],"meta":{"x":null,"y":1.5},"big":12345678901234567890}`,
		`[1,-0,0.5,1e3,1E-7,-12.5e+10,123456789012345678901234567890,1e400,1e-400]`,
		` { "a" : [ 1 , { } , [ ] ] , "b" : "caf` + "\u00e9" + `" } `,
		`"caf\u00e9"`, "\"\xff\"", "\"a\u2028b\"", `{"a":1,"b":{"a":2},"a":3}`, `{"a":1,"a":1}`,
		` true `, `false`, `null`, `{}`, `[]`, `[null,null]`, `{"1":1,"2":2}`, `4`,
		`{"a" 1}`, `[1,]`, `01`, `1.`, `-`, `"\x"`, `[1] 2`, "\"a\x01\"", `{"a":1,}`, `nul`, ``,
	} {
		f.Add([]byte(s))
	}
	opts := Options{}
	opts.setDefaults()
	vm, err := newVMState("canonical.lua", &opts)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(vm.close)
	f.Fuzz(func(t *testing.T, data []byte) {
		got, ok := appendCanonical(nil, data, vm.codec.maxBytes)
		env := vm.begin(t.Context(), "canonical")
		defer vm.end()
		ev := &event.Event{ID: "01JDQ7Z6W3S6K4V0Q5H3YB3M8C", TriggerType: "PRE_CREATE", TriggerOption: "SERVER", Input: data}
		p, err := vm.eventTable(ev)
		if err != nil {
			t.Fatal(err)
		}
		if err := vm.prepare(t.Context(), env, p); err != nil {
			t.Fatal(err)
		}
		// p.input as a script reads it.
		if err := vm.lazy.settle(p); err != nil {
			if ok {
				t.Fatalf("appendCanonical(%q) = %q, but the codec refuses it: %v", data, got, err)
			}
			return
		}
		if !ok || len(data) == 0 {
			return
		}
		want, err := vm.codec.encodeAt(p, lua.LString("input"))
		if err != nil {
			t.Fatalf("encode(decode(%q)): %v", data, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("appendCanonical(%q) = %q, codec %q", data, got, want)
		}
	})
}

// TestLuaJSONSmallInt checks the integers read without strconv against
// what the general path makes of them.
func TestLuaJSONSmallInt(t *testing.T) {
	for _, s := range []string{"0", "7", "-7", "8192", "1764420000000", "999999999999999", "-999999999999999"} {
		n, ok := smallInt([]byte(s))
		f, err := strconv.ParseFloat(s, 64)
		if !ok || err != nil || float64(n) != f || string(event.AppendJSONFloat(nil, f)) != s {
			t.Errorf("smallInt(%q) = %d, %v; want %v, written back as %q", s, n, ok, f, event.AppendJSONFloat(nil, f))
		}
	}
	for _, s := range []string{"-0", "", "-", "1000000000000000", "1.5", "1e3", "12a"} {
		if n, ok := smallInt([]byte(s)); ok {
			t.Errorf("smallInt(%q) = %d, true; want false", s, n)
		}
	}
}
