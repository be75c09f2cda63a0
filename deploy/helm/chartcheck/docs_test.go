package chartcheck

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/chart/v2/loader"
)

// opaque are values documented as one row though they hold a map: the
// worker's config and Kubernetes structures passed through as they are.
var opaque = map[string]bool{
	"config": true, "resources": true, "livenessProbe": true, "readinessProbe": true,
	"podSecurityContext": true, "securityContext": true,
}

// leaves returns the dotted paths of the values documented one per row,
// with their defaults.
func leaves(prefix string, m map[string]any, out map[string]any) {
	for k, v := range m {
		p := k
		if prefix != "" {
			p = prefix + "." + k
		}
		if sub, ok := v.(map[string]any); ok && len(sub) > 0 && !opaque[p] {
			leaves(p, sub, out)
			continue
		}
		out[p] = v
	}
}

// rowRe is a row of the chart README's values table: value, default.
var rowRe = regexp.MustCompile("^\\| `([^`]+)` \\|([^|]*)\\|")

// TestValuesDocumented ties the chart's README to values.yaml: the table
// lists every value once and no other, and a default written as one code
// span is the default of values.yaml.
func TestValuesDocumented(t *testing.T) {
	f, err := os.Open(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	vals, err := loader.LoadValues(f)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{}
	leaves("", vals, want)

	readme, err := os.ReadFile(filepath.Join(chartDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for line := range strings.SplitSeq(string(readme), "\n") {
		m := rowRe.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		if _, dup := got[m[1]]; dup {
			t.Errorf("README.md documents %s twice", m[1])
		}
		got[m[1]] = strings.TrimSpace(m[2])
	}
	for _, p := range sortedKeys(want) {
		def, ok := got[p]
		if !ok {
			t.Errorf("value %s of values.yaml is not in README.md's table", p)
			continue
		}
		if span, ok := strings.CutPrefix(def, "`"); ok && strings.Count(def, "`") == 2 && strings.HasSuffix(span, "`") {
			if w := format(want[p]); strings.TrimSuffix(span, "`") != w {
				t.Errorf("README.md: default of %s is %s, values.yaml has %s", p, def, w)
			}
		}
	}
	for _, p := range sortedKeys(got) {
		if _, ok := want[p]; !ok {
			t.Errorf("README.md documents %s, which values.yaml does not have", p)
		}
	}
	if len(got) < 20 {
		t.Fatalf("README.md's values table has %d rows; the test reads it wrongly", len(got))
	}
}

// format writes a default as the README does.
func format(v any) string {
	switch v := v.(type) {
	case string:
		if v == "" {
			return `""`
		}
		return v
	case []any:
		if len(v) == 0 {
			return "[]"
		}
	case map[string]any:
		if len(v) == 0 {
			return "{}"
		}
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		return fmt.Sprint(keys)
	}
	return fmt.Sprint(v)
}
