package config_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // schedule time zones must not depend on the host's tzdata

	"github.com/triggerbus/triggerbus/config"
)

func TestLoadDefaults(t *testing.T) {
	tests := []struct {
		name string
		path string
	}{
		{name: "no file", path: ""},
		{name: "empty file", path: "testdata/empty.yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := config.Load(tt.path, nil)
			if err != nil {
				t.Fatalf("Load(%q) error: %v", tt.path, err)
			}
			want := config.Default()
			want.File = tt.path
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("Load(%q) =\n%+v\nwant\n%+v", tt.path, got, want)
			}
		})
	}
}

func TestDefaultIsValid(t *testing.T) {
	if err := config.Default().Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
}

func TestLoadDefaultFile(t *testing.T) {
	got, err := config.Load("trigger-worker.yaml", nil)
	if err != nil {
		t.Fatalf("Load(trigger-worker.yaml) error: %v", err)
	}
	want := config.Default()
	want.File = "trigger-worker.yaml"
	want.Scripts.Dir = "config/scripts"
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Load(trigger-worker.yaml) =\n%+v\nwant\n%+v", got, want)
	}
	if got.NATS.URL != "" || !got.NATS.Embedded.JetStream || got.Metrics.Listen != "127.0.0.1:9464" {
		t.Fatalf("default file does not run embedded NATS with JetStream and metrics on 127.0.0.1:9464: %+v", got)
	}
}

func TestFindDefault(t *testing.T) {
	if got := config.FindDefault(); got != "" {
		t.Fatalf("FindDefault() in config/ = %q, want \"\"", got)
	}
	t.Chdir("..")
	if got := config.FindDefault(); got != config.DefaultPath {
		t.Fatalf("FindDefault() at the repository root = %q, want %q", got, config.DefaultPath)
	}
	if _, err := config.Load(config.FindDefault(), nil); err != nil {
		t.Fatalf("Load(FindDefault()) error: %v", err)
	}
}

func TestLoadFullExample(t *testing.T) {
	cfg, err := config.Load("examples/full.yaml", nil)
	if err != nil {
		t.Fatalf("Load(examples/full.yaml) error: %v", err)
	}
	for _, key := range unsetFields(cfg) {
		t.Errorf("examples/full.yaml does not set %s", key)
	}

	if got, want := cfg.Delivery.Backoff, []time.Duration{2 * time.Second, 10 * time.Second, time.Minute}; !slices.Equal(got, want) {
		t.Errorf("delivery.backoff = %v, want %v", got, want)
	}
	if got := string(cfg.NATS.Password); got != "change-me" {
		t.Errorf("nats.password = %q, want %q", got, "change-me")
	}
	if got, want := cfg.Scripts.Messages, []config.Message{{Key: "backup.done", Text: "Backup of {0} done"}}; !slices.Equal(got, want) {
		t.Errorf("scripts.messages = %v, want %v", got, want)
	}
	if got := string(cfg.Email.Password); got != "change-me" || cfg.Email.From != "Triggers <triggers@example.com>" {
		t.Errorf("email = %+v, password %q", cfg.Email, got)
	}
	if got := cfg.Tracing.Headers; !reflect.DeepEqual(got, map[string]config.Secret{"x-api-key": "change-me"}) {
		t.Errorf("tracing.headers = %v", got)
	}
	if got := cfg.Functions[1].Webhook.Headers; !reflect.DeepEqual(got, map[string]string{"x-environment": "eu1"}) {
		t.Errorf("functions[1].webhook.headers = %v", got)
	}
}

// unsetFields lists the keys of c that hold their zero value. A key inside
// the functions list counts as set when any function sets it.
func unsetFields(c config.Config) []string {
	all := map[string]bool{}
	set := map[string]bool{}
	var walk func(path string, v reflect.Value)
	walk = func(path string, v reflect.Value) {
		switch v.Kind() {
		case reflect.Struct:
			for i := range v.NumField() {
				f := v.Type().Field(i)
				tag := f.Tag.Get("mapstructure")
				if tag == "-" {
					continue
				}
				key := tag
				if path != "" {
					key = path + "." + tag
				}
				walk(key, v.Field(i))
			}
		case reflect.Pointer:
			if v.IsNil() && v.Type().Elem().Kind() == reflect.Struct {
				walk(path, reflect.New(v.Type().Elem()).Elem())
				return
			}
			walk(path, v.Elem())
		case reflect.Slice:
			if v.Type().Elem().Kind() == reflect.Struct {
				if v.Len() == 0 {
					walk(path+"[]", reflect.New(v.Type().Elem()).Elem())
				}
				for i := range v.Len() {
					walk(path+"[]", v.Index(i))
				}
				return
			}
			fallthrough
		default:
			all[path] = true
			if !v.IsZero() {
				set[path] = true
			}
		}
	}
	walk("", reflect.ValueOf(c))
	var unset []string
	for key := range all {
		if !set[key] {
			unset = append(unset, key)
		}
	}
	slices.Sort(unset)
	return unset
}

func TestLoadFunctions(t *testing.T) {
	cfg, err := config.Load("testdata/functions.yaml", nil)
	if err != nil {
		t.Fatalf("Load(testdata/functions.yaml) error: %v", err)
	}
	want := []config.Function{
		{
			Ref:            "Deny_Big",
			TriggerType:    "PRE_CREATE",
			TriggerOptions: []string{"SERVER", "DISK"},
			Priority:       -5,
			Timeout:        1500 * time.Millisecond,
			FailurePolicy:  "fail",
			Mode:           "enforce",
			Lua:            &config.LuaFunc{File: "scripts/deny.lua", Entry: "denyBig"},
		},
		{
			Ref:            "hook",
			TriggerType:    "POST_DELETE",
			TriggerOptions: []string{"SERVER"},
			Webhook: &config.WebhookFunc{
				URL:          "http://127.0.0.1:8080/hook",
				Secret:       "s3cret",
				Timeout:      2 * time.Second,
				Headers:      map[string]string{"x-api-key": "abc"},
				MaxBodyBytes: 4096,
			},
		},
		{
			Ref:         "every5",
			TriggerType: "SCHEDULED",
			Schedule:    &config.Schedule{Every: 5 * time.Minute, Start: "00:02:30"},
			Exec: &config.ExecFunc{
				Command:        []string{"./report.sh", "--all"},
				Env:            []string{"PATH"},
				MaxOutputBytes: 100,
			},
		},
	}
	if !reflect.DeepEqual(cfg.Functions, want) {
		t.Fatalf("functions =\n%s\nwant\n%s", dump(cfg.Functions), dump(want))
	}
}

func dump(fns []config.Function) string {
	var b strings.Builder
	for _, f := range fns {
		fmt.Fprintf(&b, "%+v lua=%+v webhook=%+v exec=%+v schedule=%+v\n", f, f.Lua, f.Webhook, f.Exec, f.Schedule)
	}
	return b.String()
}

func TestLoadPrecedence(t *testing.T) {
	const file = "testdata/precedence.yaml"
	type want struct {
		url        string
		maxDeliver int
		prefix     string
	}
	tests := []struct {
		name      string
		env       map[string]string
		overrides map[string]any
		want      want
	}{
		{
			name: "file",
			want: want{"nats://file.example:4222", 3, "file"},
		},
		{
			name: "env beats file",
			env: map[string]string{
				"TRIGGER_NATS_URL":             "nats://env.example:4222",
				"TRIGGER_DELIVERY_MAX_DELIVER": "7",
				"TRIGGER_SUBJECTS_PREFIX":      "env.trigger",
			},
			want: want{"nats://env.example:4222", 7, "env.trigger"},
		},
		{
			name: "overrides beat env",
			env: map[string]string{
				"TRIGGER_NATS_URL":             "nats://env.example:4222",
				"TRIGGER_DELIVERY_MAX_DELIVER": "7",
				"TRIGGER_SUBJECTS_PREFIX":      "env.trigger",
			},
			overrides: map[string]any{
				"nats.url":             "nats://flag.example:4222",
				"delivery.max_deliver": 9,
				"subjects.prefix":      "flag",
			},
			want: want{"nats://flag.example:4222", 9, "flag"},
		},
		{
			name:      "overrides beat file",
			overrides: map[string]any{"delivery.max_deliver": "-1"},
			want:      want{"nats://file.example:4222", -1, "file"},
		},
		{
			name: "empty env is unset",
			env:  map[string]string{"TRIGGER_NATS_URL": ""},
			want: want{"nats://file.example:4222", 3, "file"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			cfg, err := config.Load(file, tt.overrides)
			if err != nil {
				t.Fatalf("Load(%q) error: %v", file, err)
			}
			got := want{cfg.NATS.URL, cfg.Delivery.MaxDeliver, cfg.Subjects.Prefix}
			if got != tt.want {
				t.Fatalf("Load(%q) = %+v, want %+v", file, got, tt.want)
			}
		})
	}
}

func TestLoadEnvTypes(t *testing.T) {
	t.Setenv("TRIGGER_DELIVERY_BACKOFF", "2s, 4s,8s")
	t.Setenv("TRIGGER_DELIVERY_ACK_WAIT", "1m30s")
	t.Setenv("TRIGGER_DELIVERY_STREAM_MAX_BYTES", "-1")
	t.Setenv("TRIGGER_NATS_EMBEDDED_JETSTREAM", "false")
	t.Setenv("TRIGGER_NATS_EMBEDDED_STORE_DIR", "/tmp/js")
	t.Setenv("TRIGGER_NATS_TLS_CA", "ca.pem")
	t.Setenv("TRIGGER_NATS_PASSWORD", "pw")
	t.Setenv("TRIGGER_SCRIPTS_API_PREFIX", "fco.x.api")
	t.Setenv("TRIGGER_LOOP_KEY", "k")
	t.Setenv("TRIGGER_METRICS_LISTEN", "off")

	cfg, err := config.Load("", nil)
	if err != nil {
		t.Fatalf("Load error: %v", err)
	}
	want := config.Default()
	want.Delivery.Backoff = []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second}
	want.Delivery.AckWait = 90 * time.Second
	want.Delivery.StreamMaxBytes = -1
	want.NATS.Embedded.JetStream = false
	want.NATS.Embedded.StoreDir = "/tmp/js"
	want.NATS.TLS.CA = "ca.pem"
	want.NATS.Password = "pw"
	want.Scripts.APIPrefix = "fco.x.api"
	want.Loop.Key = "k"
	want.Metrics.Listen = "off"
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("Load =\n%+v\nwant\n%+v", cfg, want)
	}
	if cfg.Metrics.Enabled() {
		t.Fatalf("Metrics{Listen: off}.Enabled() = true")
	}
}

func TestLoadOverrideTypes(t *testing.T) {
	cfg, err := config.Load("", map[string]any{
		"delivery.ack_wait":    5 * time.Second,
		"delivery.backoff":     "1s,2s",
		"log.level":            "debug",
		"NATS.Embedded.Listen": "127.0.0.1:0",
	})
	if err != nil {
		t.Fatalf("Load error: %v", err)
	}
	if cfg.Delivery.AckWait != 5*time.Second || !slices.Equal(cfg.Delivery.Backoff, []time.Duration{time.Second, 2 * time.Second}) ||
		cfg.Log.Level != "debug" || cfg.NATS.Embedded.Listen != "127.0.0.1:0" {
		t.Fatalf("overrides not applied: %+v", cfg)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name      string
		path      string
		env       map[string]string
		overrides map[string]any
		want      []string
	}{
		{
			name: "unknown keys",
			path: "testdata/unknown_keys.yaml",
			want: []string{
				`testdata/unknown_keys.yaml:1: unknown key "bogus"`,
				`testdata/unknown_keys.yaml:9: unknown key "functions[0].trigger_typo" (did you mean "functions[0].trigger_type"?)`,
				`testdata/unknown_keys.yaml:12: unknown key "functions[0].webhook.retries"`,
				`testdata/unknown_keys.yaml:5: unknown key "nats.tls.certificate"`,
				`testdata/unknown_keys.yaml:3: unknown key "nats.urll" (did you mean "nats.url"?)`,
			},
		},
		{
			name: "bad values",
			path: "testdata/bad_values.yaml",
			want: []string{
				`testdata/bad_values.yaml:2: delivery.ack_wait: invalid duration "5x" (write a number with a unit, such as 500ms, 30s or 1h)`,
				`testdata/bad_values.yaml:3: delivery.backoff[1]: invalid duration 30: give a unit, such as 30s`,
				`testdata/bad_values.yaml:4: delivery.max_deliver: cannot use "lots" as int`,
				`testdata/bad_values.yaml:11: functions[0].timeout: invalid duration "soon" (write a number with a unit, such as 500ms, 30s or 1h)`,
				`testdata/bad_values.yaml:7: nats.embedded.jetstream: cannot use "perhaps" as bool`,
			},
		},
		{
			name: "one pass: unknown keys with suggestions, bad types and bad values together",
			path: "testdata/mixed_problems.yaml",
			want: []string{
				`testdata/mixed_problems.yaml:2: delivery.mode: "fast" is not one of auto, core, durable`,
				`testdata/mixed_problems.yaml:3: delivery.max_deliver: cannot use "lots" as int`,
				`testdata/mixed_problems.yaml:5: unknown key "log.levle" (did you mean "log.level"?)`,
				`testdata/mixed_problems.yaml:8: unknown key "functions[0].triggertype" (did you mean "functions[0].trigger_type"?)`,
				`testdata/mixed_problems.yaml:9: unknown key "functions[0].failurepolicy" (did you mean "functions[0].failure_policy"?)`,
				`testdata/mixed_problems.yaml:12: unknown key "functions[1].trigger-options" (did you mean "functions[1].trigger_options"?)`,
				`testdata/mixed_problems.yaml:14: functions[1].timeout: invalid duration "soon" (write a number with a unit, such as 500ms, 30s or 1h)`,
				`testdata/mixed_problems.yaml:16: unknown key "nonsense"`,
			},
		},
		{
			name: "bad tracing values",
			path: "testdata/bad_tracing.yaml",
			want: []string{
				`testdata/bad_tracing.yaml:3: tracing.exporter: "jaeger" is not one of otlp-http, otlp-grpc`,
				`testdata/bad_tracing.yaml:4: tracing.endpoint: "http://collector:4318" is not a host:port address (no scheme: tracing.insecure chooses TLS)`,
				`testdata/bad_tracing.yaml:6: tracing.headers.x api key: is not a valid HTTP header name`,
				`testdata/bad_tracing.yaml:7: tracing.sample_ratio: is 1.5, must be 0 to 1`,
				`testdata/bad_tracing.yaml:8: tracing.service_name: is empty`,
			},
		},
		{
			name: "bad duration from env names the variable",
			path: "testdata/precedence.yaml",
			env:  map[string]string{"TRIGGER_DELIVERY_ACK_WAIT": "5x"},
			want: []string{
				`env TRIGGER_DELIVERY_ACK_WAIT: delivery.ack_wait: invalid duration "5x" (write a number with a unit, such as 500ms, 30s or 1h)`,
			},
		},
		{
			name:      "unknown override",
			path:      "testdata/precedence.yaml",
			overrides: map[string]any{"nats.urll": "nats://x:4222", "nats": "x"},
			want: []string{
				`unknown key "nats"`,
				`unknown key "nats.urll" (did you mean "nats.url"?)`,
			},
		},
		{
			name: "invalid values name the file",
			path: "testdata/invalid.yaml",
			want: []string{
				`testdata/invalid.yaml:2: delivery.mode: "fast" is not one of auto, core, durable`,
				`testdata/invalid.yaml:10: functions[2] (ref "notify"): set exactly one of lua, webhook, exec`,
			},
		},
		{
			name: "webhook format names the file and line",
			path: "testdata/webhook_format.yaml",
			want: []string{
				`testdata/webhook_format.yaml:6: functions[0].webhook.format (ref "hook"): "cloudevent" is not one of json, cloudevents`,
			},
		},
		{
			name: "invalid value from env names the variable",
			path: "testdata/precedence.yaml",
			env:  map[string]string{"TRIGGER_LOG_LEVEL": "loud"},
			want: []string{
				`env TRIGGER_LOG_LEVEL: log.level: "loud" is not one of debug, info, warn, error`,
			},
		},
		{
			name:      "invalid override",
			path:      "testdata/precedence.yaml",
			env:       map[string]string{"TRIGGER_DELIVERY_MODE": "core"},
			overrides: map[string]any{"delivery.mode": "fast", "delivery.backoff": "1s,0s"},
			want: []string{
				`delivery.mode: "fast" is not one of auto, core, durable`,
				`delivery.backoff[1]: is 0s, must be positive`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			_, err := config.Load(tt.path, tt.overrides)
			if !errors.Is(err, config.ErrInvalid) {
				t.Fatalf("Load(%q) = %v, want an error matching ErrInvalid", tt.path, err)
			}
			if got := messages(err); !sameSet(got, tt.want) {
				t.Fatalf("Load(%q) errors:\n%s\nwant:\n%s", tt.path, strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestLoadUnknownKeyError(t *testing.T) {
	_, err := config.Load("testdata/unknown_keys.yaml", nil)
	if !errors.Is(err, config.ErrUnknownKey) {
		t.Fatalf("Load = %v, want an error matching ErrUnknownKey", err)
	}
	var e *config.Error
	if !errors.As(err, &e) || e.File != "testdata/unknown_keys.yaml" || e.Key == "" {
		t.Fatalf("errors.As(*Error) = %+v, want File and Key set", e)
	}
}

func TestLoadFileErrors(t *testing.T) {
	_, err := config.Load("testdata/missing.yaml", nil)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want fs.ErrNotExist", err)
	}
	_, err = config.Load("testdata/malformed.yaml", nil)
	if err == nil || !strings.HasPrefix(err.Error(), "testdata/malformed.yaml: yaml:") {
		t.Errorf("Load(malformed) = %v, want an error starting with the file name and the YAML error", err)
	}
}

func TestValidateOK(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*config.Config)
	}{
		{name: "default", modify: func(*config.Config) {}},
		{name: "nats url list", modify: func(c *config.Config) {
			c.NATS.URL = "nats://a:4222, tls://b:4222,ws://c:8080,wss://d"
		}},
		{name: "tls cert and key", modify: func(c *config.Config) { c.NATS.TLS = config.TLS{Cert: "c.pem", Key: "k.pem"} }},
		{name: "unlimited max_deliver", modify: func(c *config.Config) { c.Delivery.MaxDeliver = -1 }},
		{name: "no backoff", modify: func(c *config.Config) { c.Delivery.Backoff = nil }},
		{name: "email relay", modify: func(c *config.Config) {
			c.Email.Host, c.Email.From, c.Email.Username, c.Email.Password = "smtp.example.com", "Triggers <t@example.com>", "t", "pw"
		}},
		{name: "metrics off", modify: func(c *config.Config) { c.Metrics.Listen = "off" }},
		{name: "metrics empty", modify: func(c *config.Config) { c.Metrics.Listen = "" }},
		{name: "multi-token prefix", modify: func(c *config.Config) { c.Subjects.Prefix = "fco.eu1.trigger" }},
		{name: "every kind of function", modify: func(c *config.Config) {
			c.Functions = []config.Function{
				{Ref: "a", TriggerType: "PRE_CREATE", FailurePolicy: "ignore", Mode: "shadow", Lua: &config.LuaFunc{File: "a.lua"}},
				{Ref: "b", TriggerType: "POST_CREATE", Webhook: &config.WebhookFunc{URL: "https://example.com/x"}},
				{Ref: "c", TriggerType: "POST_CREATE", Exec: &config.ExecFunc{Command: []string{"/bin/true"}, Env: []string{"PATH"}}},
				{Ref: "d", TriggerType: "SCHEDULED", Schedule: &config.Schedule{Every: time.Hour, Start: "23:59:59", Timezone: "America/New_York", BEUUID: "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", CustomerUUID: "c_42"}, Lua: &config.LuaFunc{File: "d.lua"}},
				{Ref: "e", TriggerType: "SCHEDULED", Schedule: &config.Schedule{Cron: "*/5 * * * *"}, Lua: &config.LuaFunc{File: "e.lua"}},
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := config.Default()
			tt.modify(&c)
			if err := c.Validate(); err != nil {
				t.Fatalf("Validate() = %v, want nil", err)
			}
		})
	}
}

func TestValidateErrors(t *testing.T) {
	lua := &config.LuaFunc{File: "f.lua"}
	fn := func(f config.Function) func(*config.Config) {
		return func(c *config.Config) {
			if f.Ref == "" {
				f.Ref = "f"
			}
			if f.TriggerType == "" {
				f.TriggerType = "POST_CREATE"
			}
			c.Functions = []config.Function{{Ref: "ok", TriggerType: "POST_CREATE", Lua: lua}, f}
		}
	}
	tests := []struct {
		name   string
		modify func(*config.Config)
		want   []string
	}{
		{
			name:   "nats url scheme",
			modify: func(c *config.Config) { c.NATS.URL = "nats://a:4222,http://u:pw@b:80" },
			want:   []string{`nats.url: "http://u:xxxxx@b:80": scheme must be nats, tls, ws or wss`},
		},
		{
			name:   "nats url without scheme",
			modify: func(c *config.Config) { c.NATS.URL = "127.0.0.1:4222" },
			want:   []string{`nats.url: entry 1 has no scheme (nats://, tls://, ws:// or wss://)`},
		},
		{
			name:   "nats url not a url",
			modify: func(c *config.Config) { c.NATS.URL = "nats://a b:4222" },
			want:   []string{`nats.url: entry 1 is not a URL: invalid character " " in host name`},
		},
		{
			name:   "nats url empty entry and no host",
			modify: func(c *config.Config) { c.NATS.URL = "nats://a:4222,,nats://" },
			want:   []string{`nats.url: entry 2 is empty`, `nats.url: entry 3 has no host`},
		},
		{
			name:   "tls cert without key",
			modify: func(c *config.Config) { c.NATS.TLS.Cert = "c.pem" },
			want:   []string{`nats.tls.key: is empty but nats.tls.cert is set: set both or neither`},
		},
		{
			name:   "tls key without cert",
			modify: func(c *config.Config) { c.NATS.TLS.Key = "k.pem" },
			want:   []string{`nats.tls.cert: is empty but nats.tls.key is set: set both or neither`},
		},
		{
			name:   "embedded listen",
			modify: func(c *config.Config) { c.NATS.Embedded.Listen = "4222" },
			want:   []string{`nats.embedded.listen: "4222" is not a host:port address`},
		},
		{
			name:   "subjects",
			modify: func(c *config.Config) { c.Subjects = config.Subjects{Prefix: "trigger.>", Queue: ""} },
			want: []string{
				`subjects.prefix: "trigger.>" is not a valid subject prefix (tokens separated by dots, no wildcards or spaces)`,
				`subjects.queue: "" is not a valid queue group name (non-empty, no spaces)`,
			},
		},
		{
			name:   "delivery mode",
			modify: func(c *config.Config) { c.Delivery.Mode = "Durable" },
			want:   []string{`delivery.mode: "Durable" is not one of auto, core, durable`},
		},
		{
			name:   "max_deliver zero",
			modify: func(c *config.Config) { c.Delivery.MaxDeliver = 0 },
			want:   []string{`delivery.max_deliver: is 0, must be at least 1 (or -1 for unlimited)`},
		},
		{
			name:   "max_deliver below -1",
			modify: func(c *config.Config) { c.Delivery.MaxDeliver = -2 },
			want:   []string{`delivery.max_deliver: is -2, must be at least 1 (or -1 for unlimited)`},
		},
		{
			name:   "max_in_flight",
			modify: func(c *config.Config) { c.Delivery.MaxInFlight = 0 },
			want:   []string{`delivery.max_in_flight: is 0, must be at least 1`},
		},
		{
			name:   "backoff entries",
			modify: func(c *config.Config) { c.Delivery.Backoff = []time.Duration{time.Second, 0, -time.Second} },
			want: []string{
				`delivery.backoff[1]: is 0s, must be positive`,
				`delivery.backoff[2]: is -1s, must be positive`,
			},
		},
		{
			name: "other delivery limits",
			modify: func(c *config.Config) {
				c.Delivery.AckWait = 0
				c.Delivery.MaxEventBytes = 0
				c.Delivery.ShutdownTimeout = 0
				c.Delivery.StreamMaxAge = -time.Hour
				c.Delivery.StreamMaxBytes = 0
				c.Delivery.StreamDiscard = "drop"
				c.Delivery.Replicas = 6
				c.Delivery.DuplicateWindow = -time.Second
			},
			want: []string{
				`delivery.ack_wait: is 0s, must be positive`,
				`delivery.max_event_bytes: is 0, must be at least 1`,
				`delivery.shutdown_timeout: is 0s, must be positive`,
				`delivery.stream_max_age: is -1h0m0s, must be positive (or 0 for unlimited)`,
				`delivery.stream_discard: "drop" is not one of new, old`,
				`delivery.stream_max_bytes: is 0, must be positive (or -1 for unlimited)`,
				`delivery.replicas: is 6, must be 1 to 5`,
				`delivery.duplicate_window: is -1s, must not be negative`,
			},
		},
		{
			name:   "scripts api prefix",
			modify: func(c *config.Config) { c.Scripts.APIPrefix = "fco..api" },
			want:   []string{`scripts.api_prefix: "fco..api" is not a valid subject prefix (tokens separated by dots, no wildcards or spaces)`},
		},
		{
			name:   "scripts max memory",
			modify: func(c *config.Config) { c.Scripts.MaxMemoryBytes = -1 },
			want:   []string{`scripts.max_memory_bytes: is -1, must not be negative`},
		},
		{
			name: "decision log",
			modify: func(c *config.Config) {
				c.DecisionLog = config.DecisionLog{Input: "some", SampleAllowed: 1.5, MaxAge: 0, MaxBytes: 0}
			},
			want: []string{
				`decision_log.input: "some" is not one of none, hash, full`,
				`decision_log.sample_allowed: is 1.5, must be 0 to 1`,
				`decision_log.max_age: is 0s, must be positive`,
				`decision_log.max_bytes: is 0, must be positive or -1 (unlimited)`,
			},
		},
		{
			name: "archive",
			modify: func(c *config.Config) {
				c.Archive = config.Archive{Enabled: true, MaxAge: -time.Hour, MaxBytes: -2, Replicas: 6}
			},
			want: []string{
				`archive.max_age: is -1h0m0s, must be positive (or 0 for unlimited)`,
				`archive.max_bytes: is -2, must be positive or -1 (unlimited)`,
				`archive.replicas: is 6, must be 0 (those of delivery.replicas) to 5`,
			},
		},
		{
			name:   "scripts data store max bytes",
			modify: func(c *config.Config) { c.Scripts.DataStoreMaxBytes = 0 },
			want:   []string{`scripts.data_store_max_bytes: is 0, must be positive`},
		},
		{
			name: "scripts messages",
			modify: func(c *config.Config) {
				c.Scripts.Messages = []config.Message{{Key: "a", Text: "A"}, {Text: "none"}, {Key: "a", Text: "again"}}
			},
			want: []string{`scripts.messages[1].key: is empty`, `scripts.messages[2].key: "a" is in the catalogue twice`},
		},
		{
			name: "email",
			modify: func(c *config.Config) {
				c.Email = config.Email{Host: "smtp.example.com", TLS: "ssl", Port: 70000, Password: "x", From: "not an address"}
			},
			want: []string{
				`email.tls: "ssl" is not one of starttls, tls, none`,
				`email.port: is 70000, must be 1 to 65535 (or 0 for the TLS mode's port)`,
				`email.rate_per_minute: is 0, must be positive`,
				`email.timeout: is 0s, must be positive`,
				`email.from: "not an address" is not an address: mail: no angle-addr`,
				`email.username: is empty, and email.password is set`,
			},
		},
		{
			name:   "email without from",
			modify: func(c *config.Config) { c.Email.Host = "smtp.example.com" },
			want:   []string{`email.from: is empty, and email.host is set: give the sender of scripts' mail`},
		},
		{
			name:   "metrics listen",
			modify: func(c *config.Config) { c.Metrics.Listen = "127.0.0.1:99999" },
			want:   []string{`metrics.listen: "127.0.0.1:99999" has an invalid port`},
		},
		{
			name:   "log level and format",
			modify: func(c *config.Config) { c.Log = config.Log{Level: "verbose", Format: "xml"} },
			want: []string{
				`log.level: "verbose" is not one of debug, info, warn, error`,
				`log.format: "xml" is not one of text, json`,
			},
		},
		{
			name:   "loop ttl",
			modify: func(c *config.Config) { c.Loop.TTL = 0 },
			want:   []string{`loop.ttl: is 0s, must be positive`},
		},
		{
			name:   "loop ttl above the maximum",
			modify: func(c *config.Config) { c.Loop.TTL = 87600 * time.Hour },
			want:   []string{`loop.ttl: is 87600h0m0s, more than the maximum of 1h0m0s (a leaked Trigger-Origin would stay valid that long)`},
		},
		{
			name: "function without ref or trigger type",
			modify: func(c *config.Config) {
				c.Functions = []config.Function{{Lua: lua}}
			},
			want: []string{`functions[0].ref: is empty`, `functions[0].trigger_type: is empty`},
		},
		{
			name: "duplicate ref",
			modify: func(c *config.Config) {
				c.Functions = []config.Function{
					{Ref: "x", TriggerType: "POST_CREATE", Lua: lua},
					{Ref: "x", TriggerType: "POST_DELETE", Lua: lua},
				}
			},
			want: []string{`functions[1].ref (ref "x"): is also the ref of functions[0]`},
		},
		{
			name:   "no handler",
			modify: fn(config.Function{Ref: "notify"}),
			want:   []string{`functions[1] (ref "notify"): set exactly one of lua, webhook, exec`},
		},
		{
			name:   "two handlers",
			modify: fn(config.Function{Ref: "notify", Lua: lua, Exec: &config.ExecFunc{Command: []string{"x"}}}),
			want:   []string{`functions[1] (ref "notify"): set exactly one of lua, webhook, exec`},
		},
		{
			name:   "failure policy and mode",
			modify: fn(config.Function{TriggerType: "PRE_CREATE", FailurePolicy: "open", Mode: "dry-run", Lua: lua}),
			want: []string{
				`functions[1].failure_policy (ref "f"): "open" is not one of fail, ignore`,
				`functions[1].mode (ref "f"): "dry-run" is not one of enforce, shadow`,
			},
		},
		{
			name:   "negative timeout",
			modify: fn(config.Function{Timeout: -time.Second, Lua: lua}),
			want:   []string{`functions[1].timeout (ref "f"): is -1s, must not be negative`},
		},
		{
			name:   "lua without file",
			modify: fn(config.Function{Lua: &config.LuaFunc{Entry: "main"}}),
			want:   []string{`functions[1].lua.file (ref "f"): is empty`},
		},
		{
			name:   "schedule with every and cron",
			modify: fn(config.Function{Schedule: &config.Schedule{Every: time.Minute, Cron: "* * * * *"}, Lua: lua}),
			want:   []string{`functions[1].schedule (ref "f"): set one of every, cron, not both`},
		},
		{
			name:   "schedule with neither",
			modify: fn(config.Function{Schedule: &config.Schedule{Timezone: "UTC"}, Lua: lua}),
			want:   []string{`functions[1].schedule (ref "f"): set one of every, cron`},
		},
		{
			name:   "schedule negative every",
			modify: fn(config.Function{Schedule: &config.Schedule{Every: -time.Minute}, Lua: lua}),
			want:   []string{`functions[1].schedule.every (ref "f"): is -1m0s, must be positive`},
		},
		{
			name:   "cron fields",
			modify: fn(config.Function{Schedule: &config.Schedule{Cron: "0 3 * *"}, Lua: lua}),
			want:   []string{`functions[1].schedule.cron (ref "f"): "0 3 * *" has 4 fields, want 5 (minute hour day-of-month month day-of-week)`},
		},
		{
			name:   "cron field value",
			modify: fn(config.Function{Schedule: &config.Schedule{Cron: "61 3 * * *"}, Lua: lua}),
			want:   []string{`functions[1].schedule.cron (ref "f"): "61 3 * * *": minute: end of range (61) above maximum (59): 61`},
		},
		{
			name:   "timezone",
			modify: fn(config.Function{Schedule: &config.Schedule{Every: time.Hour, Timezone: "Mars/Olympus_Mons"}, Lua: lua}),
			want:   []string{`functions[1].schedule.timezone (ref "f"): "Mars/Olympus_Mons" is not a known time zone`},
		},
		{
			name:   "start",
			modify: fn(config.Function{Schedule: &config.Schedule{Every: time.Hour, Start: "25:00"}, Lua: lua}),
			want:   []string{`functions[1].schedule.start (ref "f"): "25:00" is not a time of day HH:MM or HH:MM:SS`},
		},
		{
			name:   "start with cron",
			modify: fn(config.Function{Schedule: &config.Schedule{Cron: "0 3 * * *", Start: "01:00"}, Lua: lua}),
			want:   []string{`functions[1].schedule.start (ref "f"): applies to every, not to cron`},
		},
		{
			name:   "be_uuid with a space",
			modify: fn(config.Function{Schedule: &config.Schedule{Every: time.Hour, BEUUID: "be 1"}, Lua: lua}),
			want:   []string{`functions[1].schedule.be_uuid (ref "f"): "be 1" is not a UUID (at most 64 letters, digits, '-', '_' and '.')`},
		},
		{
			name:   "be_uuid too long",
			modify: fn(config.Function{Schedule: &config.Schedule{Every: time.Hour, BEUUID: strings.Repeat("a", 65)}, Lua: lua}),
			want:   []string{`functions[1].schedule.be_uuid (ref "f"): "` + strings.Repeat("a", 65) + `" is not a UUID (at most 64 letters, digits, '-', '_' and '.')`},
		},
		{
			name:   "customer_uuid without be_uuid",
			modify: fn(config.Function{Schedule: &config.Schedule{Every: time.Hour, CustomerUUID: "c/1"}, Lua: lua}),
			want: []string{
				`functions[1].schedule.customer_uuid (ref "f"): is set without be_uuid: a customer belongs to a billing entity`,
				`functions[1].schedule.customer_uuid (ref "f"): "c/1" is not a UUID (at most 64 letters, digits, '-', '_' and '.')`,
			},
		},
		{
			name:   "webhook scheme",
			modify: fn(config.Function{Webhook: &config.WebhookFunc{URL: "ftp://example.com/x"}}),
			want:   []string{`functions[1].webhook.url (ref "f"): "ftp://example.com/x": scheme must be http or https`},
		},
		{
			name:   "webhook without url",
			modify: fn(config.Function{Webhook: &config.WebhookFunc{Secret: "s"}}),
			want:   []string{`functions[1].webhook.url (ref "f"): is empty`},
		},
		{
			name:   "webhook without host",
			modify: fn(config.Function{Webhook: &config.WebhookFunc{URL: "https:///x", Timeout: -1, MaxBodyBytes: -1}}),
			want: []string{
				`functions[1].webhook.url (ref "f"): "https:///x" has no host`,
				`functions[1].webhook.timeout (ref "f"): is -1ns, must not be negative`,
				`functions[1].webhook.max_body_bytes (ref "f"): is -1, must not be negative`,
			},
		},
		{
			name:   "exec without command",
			modify: fn(config.Function{Exec: &config.ExecFunc{Dir: "/tmp"}}),
			want:   []string{`functions[1].exec.command (ref "f"): is empty: give the program and its arguments as a list`},
		},
		{
			name:   "exec env and output",
			modify: fn(config.Function{Exec: &config.ExecFunc{Command: []string{"x"}, Env: []string{"A=1"}, MaxOutputBytes: -1}}),
			want: []string{
				`functions[1].exec.env[0] (ref "f"): "A=1" is not an environment variable name`,
				`functions[1].exec.max_output_bytes (ref "f"): is -1, must not be negative`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := config.Default()
			tt.modify(&c)
			err := c.Validate()
			if !errors.Is(err, config.ErrInvalid) {
				t.Fatalf("Validate() = %v, want an error matching ErrInvalid", err)
			}
			if got := messages(err); !sameSet(got, tt.want) {
				t.Fatalf("Validate() errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestValidateNamesFile(t *testing.T) {
	c := config.Default()
	c.File = "etc/worker.yaml"
	c.Delivery.MaxInFlight = 0
	c.Functions = []config.Function{{Ref: "notify", TriggerType: "POST_CREATE"}}
	want := []string{
		`etc/worker.yaml: delivery.max_in_flight: is 0, must be at least 1`,
		`etc/worker.yaml: functions[0] (ref "notify"): set exactly one of lua, webhook, exec`,
	}
	if got := messages(c.Validate()); !sameSet(got, want) {
		t.Fatalf("Validate() errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestSecretsRedacted(t *testing.T) {
	const (
		password = "pa55word-value"
		token    = "t0ken-value"
		hook     = "whsec-value"
		key      = "fleet-key-value"
	)
	c := config.Default()
	c.NATS.URL = "nats://127.0.0.1:4222"
	c.NATS.User = "worker"
	c.NATS.Password = password
	c.NATS.Token = token
	c.Loop.Key = key
	c.Functions = []config.Function{{
		Ref: "hook", TriggerType: "POST_CREATE",
		Webhook: &config.WebhookFunc{URL: "https://example.com", Secret: hook},
	}}

	var text, js bytes.Buffer
	slog.New(slog.NewTextHandler(&text, nil)).Info("config", "config", c, "password", c.NATS.Password, "webhook", c.Functions[0].Webhook)
	slog.New(slog.NewJSONHandler(&js, nil)).Info("config", "config", c, "password", c.NATS.Password, "webhook", c.Functions[0].Webhook)
	marshalled, err := json.Marshal(c)
	if err != nil {
		t.Fatalf("json.Marshal: %v", err)
	}
	outputs := map[string]string{
		"%v":          fmt.Sprintf("%v", c),
		"%+v":         fmt.Sprintf("%+v", c),
		"%#v":         fmt.Sprintf("%#v", c),
		"%+v webhook": fmt.Sprintf("%+v", *c.Functions[0].Webhook),
		"%s secret":   fmt.Sprintf("%s", c.Loop.Key),
		"slog text":   text.String(),
		"slog json":   js.String(),
		"json":        string(marshalled),
	}
	for name, out := range outputs {
		for _, secret := range []string{password, token, hook, key} {
			if strings.Contains(out, secret) {
				t.Errorf("%s output contains secret %q:\n%s", name, secret, out)
			}
		}
		if !strings.Contains(out, "REDACTED") {
			t.Errorf("%s output does not say REDACTED:\n%s", name, out)
		}
	}
	if string(c.NATS.Password) != password {
		t.Errorf("string(Password) = %q, want the secret", c.NATS.Password)
	}
	if got := config.Secret("").String(); got != "" {
		t.Errorf(`Secret("").String() = %q, want ""`, got)
	}
}

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		give *config.Error
		want string
	}{
		{&config.Error{File: "a.yaml", Key: "nats.urll", Err: config.ErrUnknownKey}, `a.yaml: unknown key "nats.urll"`},
		{&config.Error{Key: "nats.urll", Err: config.ErrUnknownKey}, `unknown key "nats.urll"`},
		{&config.Error{File: "a.yaml", Key: "log.level", Msg: "bad"}, `a.yaml: log.level: bad`},
		{&config.Error{File: "a.yaml", Env: "TRIGGER_LOG_LEVEL", Key: "log.level", Msg: "bad"}, `env TRIGGER_LOG_LEVEL: log.level: bad`},
		{&config.Error{Key: "functions[2]", Ref: "notify", Msg: "bad"}, `functions[2] (ref "notify"): bad`},
		{&config.Error{File: "a.yaml", Msg: "bad"}, `a.yaml: bad`},
	}
	for _, tt := range tests {
		if got := tt.give.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
		if !errors.Is(tt.give, config.ErrInvalid) {
			t.Errorf("errors.Is(%q, ErrInvalid) = false", tt.want)
		}
	}
}

// messages returns the message of every error joined in err.
func messages(err error) []string {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []string
		for _, e := range j.Unwrap() {
			out = append(out, messages(e)...)
		}
		return out
	}
	return []string{err.Error()}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func TestScriptsDenyPrivateNetworks(t *testing.T) {
	cfg, err := config.Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Scripts.DenyPrivateNetworks {
		t.Errorf("scripts.deny_private_networks defaults to true, want false")
	}
	cfg, err = config.Load("", map[string]any{"scripts.deny_private_networks": true})
	if err != nil || !cfg.Scripts.DenyPrivateNetworks {
		t.Errorf("Load(scripts.deny_private_networks: true) = %v, %v, want it set", cfg.Scripts.DenyPrivateNetworks, err)
	}
	t.Setenv("TRIGGER_SCRIPTS_DENY_PRIVATE_NETWORKS", "true")
	cfg, err = config.Load("", nil)
	if err != nil || !cfg.Scripts.DenyPrivateNetworks {
		t.Errorf("Load with TRIGGER_SCRIPTS_DENY_PRIVATE_NETWORKS=true = %v, %v, want it set", cfg.Scripts.DenyPrivateNetworks, err)
	}
}

// TestScriptsMessagesKeepKeys: the keys of translate.string's catalogue keep
// their case and dots, which YAML map keys under viper would not.
func TestScriptsMessagesKeepKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	data := "scripts:\n  messages:\n    - key: Backup.Done.NOW\n      text: \"Done {0}\"\n"
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := []config.Message{{Key: "Backup.Done.NOW", Text: "Done {0}"}}; !slices.Equal(cfg.Scripts.Messages, want) {
		t.Errorf("scripts.messages = %v, want %v", cfg.Scripts.Messages, want)
	}
}
