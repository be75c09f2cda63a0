package contract_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCloudEventsDocHeaders: docs/cloudevents.md maps every CloudEvents
// header the code reads or writes on trigger subjects (the HeaderCE*
// constants of package subjects), and the webhook's format key.
func TestCloudEventsDocHeaders(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "cloudevents.md"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for name, val := range constants(t, filepath.Join("..", "..", "pkg", "subjects")) {
		if !strings.HasPrefix(name, "HeaderCE") {
			continue
		}
		n++
		if !strings.Contains(string(doc), "`"+val+"`") {
			t.Errorf("docs/cloudevents.md does not name the header %s (subjects.%s)", val, name)
		}
	}
	if n < 6 {
		t.Errorf("found %d HeaderCE* constants in package subjects, want at least 6", n)
	}
	for _, s := range []string{"`functions[].webhook.format`", "format: cloudevents", "application/cloudevents+json"} {
		if !strings.Contains(string(doc), s) {
			t.Errorf("docs/cloudevents.md does not say %s", s)
		}
	}
}
