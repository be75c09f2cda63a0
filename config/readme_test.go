package config

import (
	"os"
	"strings"
	"testing"
)

// TestREADMEConfigTable: the README's configuration table has a row for
// every section of the config, and each row names every key directly in
// its section, so that a new key cannot go undocumented there.
func TestREADMEConfigTable(t *testing.T) {
	data, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(data), "\n## Configuration\n")
	if !ok {
		t.Fatal("README.md has no Configuration section")
	}
	_, table, ok = strings.Cut(table, "\n| section | keys |\n|---|---|\n")
	if !ok {
		t.Fatal("README.md's Configuration section has no table of sections")
	}
	rows := map[string]string{}
	for line := range strings.Lines(table) {
		if !strings.HasPrefix(line, "| `") {
			break
		}
		name, _, _ := strings.Cut(line[len("| `"):], "`")
		rows[name] = line
	}
	for key := range knownKeys() {
		section, rest, nested := strings.Cut(key, ".")
		section = strings.TrimSuffix(section, "[]")
		row, ok := rows[section]
		if !ok {
			t.Errorf("README.md: the configuration table has no row for the section %s", section)
			continue
		}
		if !nested {
			continue
		}
		if leaf, _, _ := strings.Cut(rest, "."); !strings.Contains(row, strings.TrimSuffix(leaf, "[]")) {
			t.Errorf("README.md: the configuration table's row %s does not name %s", section, key)
		}
	}
}
