package config_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/triggerbus/triggerbus/config"
)

func TestKeyLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	data := `# a comment
scripts:
  dir: /srv/scripts
Functions:
  - ref: a
    trigger_type: PRE_CREATE

  - ref: b
    exec:
      command: [/bin/true]
`
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	lines := config.KeyLines(path)
	for key, want := range map[string]int{
		"scripts":                      2,
		"scripts.dir":                  3,
		"functions":                    4,
		"functions[0]":                 5,
		"functions[0].trigger_type":    6,
		"functions[1]":                 8,
		"functions[1].exec.command":    10,
		"functions[1].exec.command[0]": 10,
	} {
		if got := lines[key]; got != want {
			t.Errorf("line of %s = %d, want %d", key, got, want)
		}
	}
	if got := config.KeyLines(""); got != nil {
		t.Errorf("KeyLines(\"\") = %v, want nil", got)
	}
	if got := config.KeyLines(filepath.Join(t.TempDir(), "missing.yaml")); got != nil {
		t.Errorf("KeyLines(missing) = %v, want nil", got)
	}
}

func TestLoadingAllowPartial(t *testing.T) {
	if config.Default().Loading.AllowPartial {
		t.Fatal("loading.allow_partial is on by default, want off")
	}
	t.Setenv("TRIGGER_LOADING_ALLOW_PARTIAL", "true")
	cfg, err := config.Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Loading.AllowPartial {
		t.Error("TRIGGER_LOADING_ALLOW_PARTIAL=true did not set loading.allow_partial")
	}
}
