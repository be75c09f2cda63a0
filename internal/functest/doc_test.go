package functest

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/triggerbus/triggerbus/internal/proctest"
)

// docBlock returns the fenced block of docs/testing.md whose first line is
// marker.
func docBlock(t *testing.T, marker string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(proctest.ModuleRoot(t), "docs", "testing.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile("(?s)```[a-z]*\n(.*?)```").FindAllStringSubmatch(string(data), -1) {
		if strings.HasPrefix(m[1], marker+"\n") {
			return m[1]
		}
	}
	t.Fatalf("docs/testing.md has no block starting with %q", marker)
	return ""
}

// writeExample writes the example script of docs/testing.md and its test
// file, with edit applied to the test file, and returns the test file.
func writeExample(t *testing.T, edit func(string) string) string {
	t.Helper()
	dir := t.TempDir()
	proctest.WriteFile(t, dir, "vip_check.lua", docBlock(t, "-- doc: vip_check.lua"))
	test := docBlock(t, "# doc: vip_check_test.yaml")
	if edit != nil {
		test = edit(test)
	}
	return proctest.WriteFile(t, dir, "vip_check_test.yaml", test)
}

// TestDocExample runs the example of docs/testing.md: every case passes.
func TestDocExample(t *testing.T) {
	rep, err := Run(context.Background(), testConfig(), []string{writeExample(t, nil)})
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	WriteText(&out, rep)
	if rep.Failed != 0 || rep.Passed != 5 {
		t.Fatalf("want 5 passed, 0 failed:\n%s", out.String())
	}
}

// TestDocNamesEveryKey checks that docs/testing.md names every key a test
// file may have, and every key of the JSON report.
func TestDocNamesEveryKey(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(proctest.ModuleRoot(t), "docs", "testing.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	check := func(v any, tag string) {
		rt := reflect.TypeOf(v)
		for i := range rt.NumField() {
			name, _, _ := strings.Cut(rt.Field(i).Tag.Get(tag), ",")
			if name == "" || name == "-" {
				continue
			}
			if !strings.Contains(doc, "`"+name+"`") && !strings.Contains(doc, `"`+name+`"`) {
				t.Errorf("docs/testing.md does not name the %s key %q of %s", tag, name, rt.Name())
			}
		}
	}
	for _, v := range []any{File{}, Case{}, Request{}, HTTPAnswer{}, Expect{}, Publish{}, Mail{}} {
		check(v, "yaml")
	}
	for _, v := range []any{Report{}, Result{}} {
		check(v, "json")
	}
}
