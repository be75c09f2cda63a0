package contract_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/triggerbus/triggerbus/internal/contract"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/subjects"
)

// TestReadmeRegistryKeys ties the README's description of the PRE registry
// and of what a client must do to the code: both keys a client reads
// (subjects.RegistryKey with the option and with ANY), the bucket, the
// deadline header and the codes. The contract's own protocol text says the
// same.
func TestReadmeRegistryKeys(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	section := func(heading string) string {
		t.Helper()
		_, rest, ok := strings.Cut(readme, heading)
		if !ok {
			t.Fatalf("README has no %q", heading)
		}
		if i := strings.Index(rest, "\n#"); i >= 0 {
			rest = rest[:i]
		}
		return rest
	}
	option, anyKey := "`"+subjects.RegistryKey("<TYPE>", "<OPTION>")+"`", "`"+subjects.RegistryKey("<TYPE>", subjects.Any)+"`"
	bucket := "`<PREFIX>_REGISTRY`"
	both := regexp.MustCompile(`both (registry )?keys ` + regexp.QuoteMeta(option) + ` and ` + regexp.QuoteMeta(anyKey))
	for heading, want := range map[string][]string{
		"**When no worker answers.**":      {bucket, event.CodeNoTrigger, event.CodeNoWorker},
		"### Clients in other languages\n": {bucket, subjects.HeaderDeadline, subjects.HeaderMsgID, subjects.HeaderOrigin, event.CodeShuttingDown, event.CodeNoTrigger, event.CodeNoWorker, "docs/asyncapi.yaml", "docs/schema/event.json", "docs/schema/decision.json"},
	} {
		text := section(heading)
		if !both.MatchString(strings.Join(strings.Fields(text), " ")) {
			t.Errorf("README %s does not say that a client reads both keys %s and %s", strings.TrimSpace(heading), option, anyKey)
		}
		for _, w := range want {
			if !strings.Contains(text, w) {
				t.Errorf("README %s does not name %s", strings.TrimSpace(heading), w)
			}
		}
	}
	p := strings.Join(strings.Fields(contract.Protocol), " ")
	if !strings.Contains(p, "BOTH keys "+strings.Trim(option, "`")+" and "+strings.Trim(anyKey, "`")) {
		t.Errorf("contract.Protocol does not say to read both registry keys: %s", p)
	}
}
