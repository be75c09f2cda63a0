package main

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestEncodeYAMLKeepsTypes: -o yaml is the JSON document in block style,
// its strings still strings (quoted where plain YAML would read another
// type) and its fields in the JSON's order.
func TestEncodeYAMLKeepsTypes(t *testing.T) {
	v := map[string]any{"a": "123", "b": "true", "c": "x: y", "d": 1.5, "e": []any{"null", nil}, "f": map[string]any{}, "g": "two\nlines"}
	var out bytes.Buffer
	if err := encode(&out, "yaml", v); err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := yaml.Unmarshal(out.Bytes(), &back); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !reflect.DeepEqual(back, v) {
		t.Errorf("yaml %s\nreads back as %#v, want %#v", out.String(), back, v)
	}
	if strings.Contains(out.String(), "{\"") || !strings.HasPrefix(out.String(), "a: \"123\"\n") {
		t.Errorf("not block style, or not in the JSON's order:\n%s", out.String())
	}

	out.Reset()
	if err := encode(&out, "json", v); err != nil {
		t.Fatal(err)
	}
	var fromJSON map[string]any
	if err := json.Unmarshal(out.Bytes(), &fromJSON); err != nil || !reflect.DeepEqual(fromJSON, v) {
		t.Errorf("json %s: %v", out.String(), err)
	}
}
