package supercluster_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/triggerbus/triggerbus/internal/proctest"
)

// TestDocsAcrossRegions checks that the "Across regions" section of
// docs/operations.md names every test of this package, and only tests that
// exist.
func TestDocsAcrossRegions(t *testing.T) {
	root := proctest.ModuleRoot(t)
	doc, err := os.ReadFile(filepath.Join(root, "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "\n## Across regions\n")
	if !ok {
		t.Fatal("docs/operations.md has no section \"Across regions\"")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	named := regexp.MustCompile("`(Test[A-Za-z]+)`").FindAllStringSubmatch(section, -1)

	fset := token.NewFileSet()
	files, err := filepath.Glob(filepath.Join(root, "test", "supercluster", "*_test.go"))
	if err != nil {
		t.Fatal(err)
	}
	var tests []string
	for _, f := range files {
		af, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range af.Decls {
			if fd, ok := d.(*ast.FuncDecl); ok && fd.Recv == nil && strings.HasPrefix(fd.Name.Name, "Test") && fd.Name.Name != "TestDocsAcrossRegions" {
				tests = append(tests, fd.Name.Name)
			}
		}
	}
	var inDoc []string
	for _, m := range named {
		inDoc = append(inDoc, m[1])
	}
	for _, name := range tests {
		if !slices.Contains(inDoc, name) {
			t.Errorf("docs/operations.md, Across regions: %s is not named", name)
		}
	}
	for _, name := range inDoc {
		if !slices.Contains(tests, name) {
			t.Errorf("docs/operations.md, Across regions: names %s, which test/supercluster does not have", name)
		}
	}
}
