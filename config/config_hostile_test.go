package config_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/triggerbus/triggerbus/config"
)

// Hostile configuration files: malformed YAML, YAML bombs, wrong types,
// numbers out of range. Load never panics; every error names the file and
// what is wrong.

// hostileLoad writes data to a file and loads it, with no TRIGGER_
// variable set.
func hostileLoad(t *testing.T, data string) (string, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "hostile.yaml")
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := config.Load(path, nil)
	return path, err
}

// hostileBomb is a "billion laughs" document: nine levels of aliases, each
// nine times the one before.
func hostileBomb() string {
	var b strings.Builder
	b.WriteString("l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n")
	for i := 1; i <= 9; i++ {
		fmt.Fprintf(&b, "l%d: &l%d [", i, i)
		for j := range 9 {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*l%d", i-1)
		}
		b.WriteString("]\n")
	}
	return b.String()
}

func TestLoadHostile(t *testing.T) {
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "TRIGGER_") {
			t.Skipf("TRIGGER_ variables are set (%s): they would change what Load reads", strings.SplitN(kv, "=", 2)[0])
		}
	}
	tests := []struct {
		name string
		data string
		want []string // each in the error, after the file name
	}{
		{name: "YAML bomb", data: hostileBomb(), want: []string{"yaml: document contains excessive aliasing"}},
		{name: "deep nesting", data: "nats: " + strings.Repeat("[", 20_000), want: []string{"yaml: exceeded max depth of 10000"}},
		{name: "invalid UTF-8", data: "nats:\n  url: \"nats://\xff\"\n", want: []string{"yaml: invalid leading UTF-8 octet"}},
		{name: "invalid UTF-8 key", data: "nats:\n  \xfe\xff: 1\n", want: []string{"yaml:"}},
		{name: "NUL byte", data: "nats:\n  url: \"a\x00b\"\n", want: []string{"yaml: control characters are not allowed"}},
		{name: "tab indentation", data: "nats:\n\turl: nats://127.0.0.1:4222\n", want: []string{"yaml: line 2: found character that cannot start any token"}},
		{name: "duplicate section", data: "nats:\n  url: nats://a:4222\nnats:\n  url: nats://b:4222\n", want: []string{`yaml: unmarshal errors:`, `mapping key "nats" already defined at line 1`}},
		{name: "section a number", data: "nats: 5\n", want: []string{`nats: expected a map or struct, got "int"`}},
		{name: "section a list", data: "delivery: [1, 2]\n", want: []string{`delivery: expected a map or struct, got "slice"`}},
		{name: "functions a map (read as a list of one)", data: "functions:\n  ref: x\n", want: []string{`functions[0].trigger_type (ref "x"): is empty`}},
		{name: "function a number", data: "functions: [5]\n", want: []string{`functions[0]: expected a map or struct, got "int"`}},
		{name: "count not a number", data: "delivery:\n  max_deliver: lots\n", want: []string{"delivery.max_deliver", `cannot use "lots" as int`}},
		{name: "count overflowing", data: "delivery:\n  max_event_bytes: 99999999999999999999999\n", want: []string{"delivery.max_event_bytes"}},
		{name: "count infinite", data: "delivery:\n  max_in_flight: .inf\n", want: []string{"delivery.max_in_flight"}},
		{name: "count NaN", data: "delivery:\n  max_in_flight: .nan\n", want: []string{"delivery.max_in_flight"}},
		{name: "count huge float", data: "delivery:\n  max_deliver: 1e400\n", want: []string{"delivery.max_deliver"}},
		{name: "duration without unit", data: "delivery:\n  ack_wait: 30\n", want: []string{"delivery.ack_wait", "invalid duration 30: give a unit, such as 30s"}},
		{name: "duration infinite", data: "delivery:\n  ack_wait: .inf\n", want: []string{"delivery.ack_wait", "invalid duration +Inf"}},
		{name: "duration overflowing", data: "delivery:\n  ack_wait: 9999999999h\n", want: []string{"delivery.ack_wait", `invalid duration "9999999999h"`}},
		{name: "duration negative", data: "delivery:\n  ack_wait: -5s\n", want: []string{"delivery.ack_wait: is -5s, must be positive"}},
		{name: "secret a list", data: "loop:\n  key: [a, b]\n", want: []string{"loop.key", "cannot use a list as config.Secret"}},
		{name: "password a map", data: "nats:\n  password: {x: 1}\n", want: []string{"nats.password", "cannot use a map as config.Secret"}},
		{name: "unknown key", data: "nats:\n  urll: nats://127.0.0.1:4222\n", want: []string{`unknown key "nats.urll"`}},
		{name: "unknown section", data: "natz: [x]\n", want: []string{`unknown key "natz"`}},
		{name: "bad URL", data: "nats:\n  url: \"http://[::1\"\n", want: []string{"nats.url", "entry 1 is not a URL: missing ']' in host"}},
		{name: "URL with a password and a bad scheme", data: "nats:\n  url: \"http://user:hunter2@example.com\"\n", want: []string{"nats.url", `"http://user:xxxxx@example.com": scheme must be nats, tls, ws or wss`}},
		{name: "prefix with a wildcard", data: "subjects:\n  prefix: \"trigger.>\"\n", want: []string{"subjects.prefix", "is not a valid subject prefix"}},
		{name: "prefix with a NUL", data: "subjects:\n  prefix: \"trig\\0ger\"\n", want: []string{"subjects.prefix", "is not a valid subject prefix"}},
		{name: "schedule both", data: "functions:\n  - ref: s\n    trigger_type: SCHEDULED\n    schedule: {every: 5m, cron: \"* * * * *\"}\n    exec: {command: [/bin/true]}\n", want: []string{`functions[0].schedule (ref "s"): set one of every, cron, not both`}},
		{name: "schedule zone a path", data: "functions:\n  - ref: s\n    trigger_type: SCHEDULED\n    schedule: {every: 5m, timezone: ../../etc/passwd}\n    exec: {command: [/bin/true]}\n", want: []string{`functions[0].schedule.timezone (ref "s"): "../../etc/passwd" is not a known time zone`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, err := hostileLoad(t, tt.data)
			if err == nil {
				t.Fatalf("Load(%.60q) = nil error, want one", tt.data)
			}
			msg := err.Error()
			if !strings.Contains(msg, path) {
				t.Errorf("Load error %q does not name the file", msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("Load(%.60q) error = %q, want it to contain %q", tt.data, msg, w)
				}
			}
			if strings.Contains(msg, "hunter2") {
				t.Errorf("Load error %q shows a password", msg)
			}
			if len(msg) > 2000 {
				t.Errorf("Load error is %d bytes long", len(msg))
			}
		})
	}
}

// FuzzLoadHostile loads fuzzed YAML files. Load never panics, and every
// error either matches ErrInvalid (a key or value) or names the file (it
// cannot be parsed).
func FuzzLoadHostile(f *testing.F) {
	for _, s := range []string{
		"", "nats: 5\n", "nats:\n  url: nats://127.0.0.1:4222\n", hostileBomb(), "a: " + strings.Repeat("[", 100),
		"delivery:\n  ack_wait: .inf\n  max_deliver: 1e400\n", "functions:\n  - ref: x\n    trigger_type: POST_CREATE\n    exec: {command: [a]}\n",
		"? [a, b]\n: c\n", "nats: &a {url: *a}\n", "!!binary aGk=: 1\n", "loop: {key: !!binary aGk=}\n", "\xff\xfe", "- 1\n- 2\n",
		"functions: [{ref: a, lua: {file: a.lua}, webhook: {url: 'http://x'}}]\n", "nats:\n  NAME: x\n  name: y\n", "{}", "~",
	} {
		f.Add([]byte(s))
	}
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "TRIGGER_") {
			f.Skipf("TRIGGER_ variables are set (%s)", strings.SplitN(kv, "=", 2)[0])
		}
	}
	path := filepath.Join(f.TempDir(), "fuzz.yaml")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := config.Load(path, nil)
		if err == nil {
			return
		}
		if msg := err.Error(); !errors.Is(err, config.ErrInvalid) && !strings.HasPrefix(msg, path+": ") {
			t.Fatalf("Load(%q) error %q neither matches ErrInvalid nor names the file", data, msg)
		}
	})
}
