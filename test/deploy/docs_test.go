package deploy

import (
	"strings"
	"testing"
)

// TestDocsListMetrics checks that the metric tables of the README and of
// docs/observability.md name every trigger_ metric a worker exports.
func TestDocsListMetrics(t *testing.T) {
	exp := workerMetrics(t)
	for _, doc := range []string{"README.md", "docs/observability.md"} {
		text := string(readRepoFile(t, doc))
		for _, name := range exp.triggerFamilies() {
			if !strings.Contains(text, "| `"+name+"` |") {
				t.Errorf("%s: no table row for %s", doc, name)
			}
		}
	}
}
