package contract_test

import (
	"bytes"
	"flag"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/triggerbus/triggerbus/internal/contract"
)

var update = flag.Bool("update", false, "rewrite the committed documents under docs/")

// TestCommittedDocumentsInSync: the documents under docs/ are what the
// generator writes now. Regenerate them with
//
//	go run ./cmd/trigger-worker schema all --out docs/
func TestCommittedDocumentsInSync(t *testing.T) {
	files, err := contract.Files("")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 3 {
		t.Fatalf("Files = %d documents, want asyncapi.yaml and the two schemas", len(files))
	}
	for name, want := range files {
		path := filepath.Join("..", "..", "docs", filepath.FromSlash(name))
		if *update {
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (generate it: go run ./cmd/trigger-worker schema all --out docs/)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("docs/%s is out of date with the code: run go run ./cmd/trigger-worker schema all --out docs/", name)
		}
	}
}

// compile compiles the generated JSON Schema called name.
func compile(t *testing.T, name string) *jsonschema.Schema {
	t.Helper()
	files, err := contract.Files("")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(files["schema/"+name+".json"]))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(contract.SchemaID(name), doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(contract.SchemaID(name))
	if err != nil {
		t.Fatalf("the %s schema does not compile: %v", name, err)
	}
	return s
}

// validate validates the JSON data against s.
func validate(s *jsonschema.Schema, data []byte) error {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return err
	}
	return s.Validate(inst)
}

// TestCodesAndOutcomesComplete: every Code* and Outcome* constant of
// package event is in the contract's tables.
func TestCodesAndOutcomesComplete(t *testing.T) {
	consts := constants(t, filepath.Join("..", "..", "pkg", "event"))
	var codes []string
	for _, c := range contract.Codes {
		codes = append(codes, c.Code)
	}
	n := 0
	for name, val := range consts {
		switch {
		case strings.HasPrefix(name, "Code"):
			n++
			if !slices.Contains(codes, val) {
				t.Errorf("event.%s = %q is not in contract.Codes", name, val)
			}
		case strings.HasPrefix(name, "Outcome"):
			if !slices.Contains(contract.Outcomes, val) {
				t.Errorf("event.%s = %q is not in contract.Outcomes", name, val)
			}
		}
	}
	if n != len(codes) {
		t.Errorf("package event has %d codes, contract.Codes %d", n, len(codes))
	}
}

// TestHeadersComplete: every Header* constant of package subjects (the
// headers of trigger subjects) is in the contract's table, and every
// header of the table is in the AsyncAPI document.
func TestHeadersComplete(t *testing.T) {
	var names []string
	for _, h := range contract.Headers {
		names = append(names, h.Name)
	}
	for name, val := range constants(t, filepath.Join("..", "..", "pkg", "subjects")) {
		if strings.HasPrefix(name, "Header") && !slices.Contains(names, val) {
			t.Errorf("subjects.%s = %q is not in contract.Headers", name, val)
		}
	}
	files, err := contract.Files("")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if !bytes.Contains(files["asyncapi.yaml"], []byte("\n        "+n+":\n")) {
			t.Errorf("header %s is not a property of the AsyncAPI document's headers", n)
		}
	}
}

// constants returns the string constants of the package in dir (its
// non-test files), by name.
func constants(t *testing.T, dir string) map[string]string {
	t.Helper()
	fset := token.NewFileSet()
	out := map[string]string{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, e.Name()), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, s := range g.Specs {
				vs := s.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if i >= len(vs.Values) {
						continue
					}
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
						v, err := strconv.Unquote(lit.Value)
						if err != nil {
							t.Fatal(err)
						}
						out[n.Name] = v
					}
				}
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("no string constants in %s", dir)
	}
	return out
}
