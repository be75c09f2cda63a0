package natsconn_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/triggerbus/triggerbus/internal/natsconn"
)

// writeContext saves a nats CLI context under a temporary
// XDG_CONFIG_HOME, which the test uses.
func writeContext(t *testing.T, name, data string) {
	t.Helper()
	dir, err := natsconn.ContextDir()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".json"), []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestLoadContext(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, "xdg"))
	if dir, _ := natsconn.ContextDir(); dir != filepath.Join(home, "xdg", "nats", "context") {
		t.Fatalf("ContextDir = %s", dir)
	}
	writeContext(t, "prod", `{"description":"prod","url":"nats://a:4222,nats://b:4222","creds":"~/prod.creds",
		"nkey":"","cert":"/etc/c.pem","key":"~/k.pem","ca":"ca.pem","user":"u","password":"p","token":"",
		"jetstream_domain":"hub","color_scheme":"","tls_first":false}`)
	c, err := natsconn.LoadContext("prod")
	if err != nil {
		t.Fatal(err)
	}
	want := natsconn.Context{Name: "prod", Description: "prod", URL: "nats://a:4222,nats://b:4222", Creds: home + "/prod.creds",
		Cert: "/etc/c.pem", Key: home + "/k.pem", CA: "ca.pem", User: "u", Password: "p"}
	if c != want {
		t.Errorf("LoadContext = %+v, want %+v", c, want)
	}

	writeContext(t, "nsc", `{"url":"nats://a:4222","nsc":"nsc://op/acc/user"}`)
	writeContext(t, "jwt", `{"url":"nats://a:4222","user_jwt":"eyJ...","user_seed":"SU..."}`)
	writeContext(t, "broken", `{"url":`)
	for name, want := range map[string]string{
		"nsc":     "nsc lookups are not supported",
		"jwt":     "inline user_jwt and user_seed are not supported",
		"broken":  "broken.json",
		"missing": "missing.json",
		"../prod": "not a context name",
		"..":      "not a context name",
	} {
		if _, err := natsconn.LoadContext(name); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("natsconn.LoadContext(%q) = %v, want an error saying %q", name, err, want)
		}
	}

	// Without XDG_CONFIG_HOME: ~/.config.
	t.Setenv("XDG_CONFIG_HOME", "")
	if dir, _ := natsconn.ContextDir(); dir != filepath.Join(home, ".config", "nats", "context") {
		t.Fatalf("ContextDir without XDG_CONFIG_HOME = %s", dir)
	}
}
