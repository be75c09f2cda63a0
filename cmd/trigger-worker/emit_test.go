package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadEventArg: the event argument of emit and eval is the JSON, @FILE
// or - for standard input; a missing file is a usage error naming it.
func TestReadEventArg(t *testing.T) {
	file := filepath.Join(t.TempDir(), "event.json")
	if err := os.WriteFile(file, []byte(`{"from":"file"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for arg, want := range map[string]string{`{"from":"arg"}`: `{"from":"arg"}`, "@" + file: `{"from":"file"}`, "-": `{"from":"stdin"}`} {
		got, err := readEventArg(arg, strings.NewReader(`{"from":"stdin"}`))
		if err != nil || string(got) != want {
			t.Errorf("readEventArg(%q) = %q, %v; want %q", arg, got, err, want)
		}
	}
	_, err := readEventArg("@"+file+".absent", strings.NewReader(""))
	var ue *usageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "event.json.absent") {
		t.Errorf("a missing event file: %v, want a usage error naming it", err)
	}
}

// TestEmitClientWatchesNoRegistry: emit's client sends its one request
// rather than starting a watch of the PRE registry for it.
func TestEmitClientWatchesNoRegistry(t *testing.T) {
	if o := emitClientOptions("trigger", true); !o.NoRegistryWatch || !o.Durable || o.Prefix != "trigger" {
		t.Fatalf("emit's client options %+v, want NoRegistryWatch", o)
	}
}
