package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/triggerbus/triggerbus/config"
)

func TestBundleDefaults(t *testing.T) {
	b := config.Default().Bundle
	if b.Source != config.SourceFiles || b.History != config.DefaultBundleHistory || b.TrustedKeys != nil {
		t.Fatalf("Default().Bundle = %+v, want source files, history %d, no trusted keys", b, config.DefaultBundleHistory)
	}
}

func TestBundleValidateErrors(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*config.Bundle)
		want   string
	}{
		{"source", func(b *config.Bundle) { b.Source = "git" }, `bundle.source: "git" is not one of files, bundle`},
		{"history zero", func(b *config.Bundle) { b.History = 0 }, `bundle.history: is 0, must be 1 to 1000`},
		{"history too long", func(b *config.Bundle) { b.History = 1001 }, `bundle.history: is 1001, must be 1 to 1000`},
		{"seed as trusted key", func(b *config.Bundle) {
			b.TrustedKeys = []string{"SUAHPHBGX3GAIJVZGI6TNWMBUAILXIOWLLTYHRP54LOM7JTWLHMA5H3RF4"}
		}, `bundle.trusted_keys[0]: "SUAHPHBGX3GAIJVZGI6TNWMBUAILXIOWLLTYHRP54LOM7JTWLHMA5H3RF4" is not a public user nkey`},
		{"short key", func(b *config.Bundle) { b.TrustedKeys = []string{"UABC"} }, `bundle.trusted_keys[0]: "UABC" is not a public user nkey`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := config.Default()
			tt.modify(&c.Bundle)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, config.ErrInvalid) {
				t.Fatalf("Validate() = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestBundleFromEnv(t *testing.T) {
	t.Setenv("TRIGGER_BUNDLE_TRUSTED_KEYS", "UCQENNSEWJYVXWKU5PSCBB7HGJHZZ3VAEZ36STK2CVWSML6TFYETXB63")
	t.Setenv("TRIGGER_BUNDLE_SOURCE", "bundle")
	cfg, err := config.Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Bundle.Source != config.SourceBundle || len(cfg.Bundle.TrustedKeys) != 1 {
		t.Fatalf("bundle = %+v", cfg.Bundle)
	}
}

func TestLoadDefinitions(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("TRIGGER_SCRIPTS_DIR", "/elsewhere") // not read
	writeFile(t, filepath.Join(dir, config.DefinitionsFile), `
functions:
  - ref: quota
    trigger_type: PRE_CREATE
    trigger_options: [SERVER]
    timeout: 2s
    lua: {file: lua/quota.lua}
  - ref: hook
    trigger_type: POST_CREATE
    trigger_options: [SERVER]
    webhook: {url: "https://example.com/h", ca: ca/ca.pem, secret: s3cret}
  - ref: cmd
    trigger_type: POST_CREATE
    trigger_options: [SERVER]
    exec: {command: [./check.sh], dir: work}
scripts:
  dir: scripts
`)
	d, err := config.LoadDefinitions(filepath.Join(dir, config.DefinitionsFile))
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "scripts"); d.ScriptsDir != want {
		t.Errorf("ScriptsDir = %q, want %q", d.ScriptsDir, want)
	}
	if len(d.Functions) != 3 {
		t.Fatalf("Functions = %+v", d.Functions)
	}
	if want := filepath.Join(dir, "lua/quota.lua"); d.Functions[0].Lua.File != want {
		t.Errorf("lua.file = %q, want %q", d.Functions[0].Lua.File, want)
	}
	if want := filepath.Join(dir, "ca/ca.pem"); d.Functions[1].Webhook.CA != want {
		t.Errorf("webhook.ca = %q, want %q", d.Functions[1].Webhook.CA, want)
	}
	if string(d.Functions[1].Webhook.Secret) != "s3cret" {
		t.Errorf("webhook.secret not kept")
	}
	if e := d.Functions[2].Exec; e.Command[0] != "./check.sh" || e.Dir != "work" {
		t.Errorf("exec paths are host paths, kept as written: %+v", e)
	}
}

func TestLoadDefinitionsErrors(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"other section", "nats: {url: \"nats://x:4222\"}\nfunctions: []\n", `nats: is not a key of a definitions file`},
		{"other scripts key", "scripts: {dir: s, api_prefix: x}\n", `scripts.api_prefix: is not a key of a definitions file`},
		{"bad function", "functions:\n  - ref: a\n    trigger_type: POST_CREATE\n", `functions[0] (ref "a"): set exactly one of lua, webhook, exec`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), config.DefinitionsFile)
			writeFile(t, path, tt.yaml)
			_, err := config.LoadDefinitions(path)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("LoadDefinitions() = %v, want %q", err, tt.want)
			}
		})
	}
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}
