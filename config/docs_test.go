package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDocsSpellKeysAsTheConfig: the docs and the deploy files write the
// config keys as the config does (failure_policy), never in the camelCase
// of the event JSON and FDL (failurePolicy), which Load refuses.
func TestDocsSpellKeysAsTheConfig(t *testing.T) {
	var files []string
	for _, pattern := range []string{"../README.md", "../docs/*.md", "../deploy/prometheus/*.yml", "../deploy/grafana/*.json", "examples/*.yaml", "trigger-worker.yaml"} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) < 5 {
		t.Fatalf("found only %v", files)
	}
	camel := map[string]string{} // camelCase -> key
	for key := range knownKeys() {
		name := key[strings.LastIndexAny(key, ".]")+1:]
		if !strings.Contains(name, "_") {
			continue
		}
		words := strings.Split(name, "_")
		for i := 1; i < len(words); i++ {
			words[i] = strings.ToUpper(words[i][:1]) + words[i][1:]
		}
		camel[strings.Join(words, "")] = key
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for c, key := range camel {
			if c == "triggerType" || c == "triggerOptions" {
				// The event JSON's fields, which the docs describe too.
				continue
			}
			for i, line := range strings.Split(string(data), "\n") {
				if strings.Contains(line, c) {
					t.Errorf("%s:%d: %q: the config key is %s", f, i+1, c, key)
				}
			}
		}
	}
}
