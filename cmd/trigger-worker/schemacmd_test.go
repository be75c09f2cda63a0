package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/triggerbus/triggerbus/internal/contract"
)

// TestSchemaCommand: `schema all --out DIR` writes the documents the
// generator makes, under the paths of docs/; `schema asyncapi` and
// `schema json NAME` print one; bad usage exits 2.
func TestSchemaCommand(t *testing.T) {
	files, err := contract.Files("")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"schema", "all", "--out", dir}, &out, &errOut); err != nil {
		t.Fatalf("%v: %s", err, errOut.String())
	}
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from the generator's", name)
		}
	}
	for args, want := range map[string]string{
		"asyncapi":      "asyncapi.yaml",
		"json event":    "schema/event.json",
		"json decision": "schema/decision.json",
	} {
		out.Reset()
		if err := run(context.Background(), append([]string{"schema"}, strings.Fields(args)...), &out, &errOut); err != nil {
			t.Fatalf("schema %s: %v", args, err)
		}
		if !bytes.Equal(out.Bytes(), files[want]) {
			t.Errorf("schema %s does not print %s", args, want)
		}
	}
	for _, args := range [][]string{{"schema"}, {"schema", "yaml"}, {"schema", "json", "event", "decision"}, {"schema", "json", "ev"}, {"schema", "all"}, {"schema", "asyncapi", "extra"}, {"schema", "asyncapi", "--prefix", "a..b"}} {
		err := run(context.Background(), args, &out, &errOut)
		if args[len(args)-1] == "a..b" {
			if err == nil {
				t.Errorf("%q: no error", args)
			}
			continue
		}
		if err == nil || exitCode(err) != 2 {
			t.Errorf("%q: %v, want a usage error", args, err)
		}
	}
}
