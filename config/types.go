package config

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"
)

// DefaultPath is the configuration file trigger-worker reads when none is
// named, relative to the working directory.
const DefaultPath = "config/trigger-worker.yaml"

// envPrefix is the prefix of every environment variable Load reads.
const envPrefix = "TRIGGER"

var (
	// ErrInvalid matches (with errors.Is) every error that Load and
	// [Config.Validate] return for a bad key or value.
	ErrInvalid = errors.New("config: invalid")
	// ErrUnknownKey matches (with errors.Is) an error for a key that is not
	// part of the configuration.
	ErrUnknownKey = errors.New("config: unknown key")
)

// Config is the whole configuration of trigger-worker. Start from [Default]
// when building one in code: Validate checks the values as they are, and the
// zero value of most sections is invalid.
type Config struct {
	NATS      NATS       `mapstructure:"nats"`
	Subjects  Subjects   `mapstructure:"subjects"`
	Delivery  Delivery   `mapstructure:"delivery"`
	Scripts   Scripts    `mapstructure:"scripts"`
	Functions []Function `mapstructure:"functions"`
	Metrics   Metrics    `mapstructure:"metrics"`
	Log       Log        `mapstructure:"log"`
	Loop      Loop       `mapstructure:"loop"`
	Registry  Registry   `mapstructure:"registry"`
	Loading   Loading    `mapstructure:"loading"`

	// File is the file the configuration was loaded from, "" if none. Load
	// sets it; it is not a key.
	File string `mapstructure:"-"`
}

// NATS is how the worker reaches NATS.
type NATS struct {
	// URL is the server URL, or a comma-separated list of URLs of one cluster
	// (schemes nats, tls, ws, wss). "" starts the embedded server described
	// by Embedded instead.
	URL string `mapstructure:"url"`
	// Creds is the path of a credentials file (JWT and nkey seed).
	Creds string `mapstructure:"creds"`
	// NKey is the path of an nkey seed file.
	NKey string `mapstructure:"nkey"`
	// User and Password are for username/password authentication.
	User     string `mapstructure:"user"`
	Password Secret `mapstructure:"password"`
	// Token is for token authentication.
	Token Secret `mapstructure:"token"`
	// TLS configures TLS towards the server; all empty uses the system roots
	// for tls:// and wss:// URLs.
	TLS TLS `mapstructure:"tls"`
	// Embedded configures the server started when URL is "".
	Embedded Embedded `mapstructure:"embedded"`
	// Name is the connection name the server shows; default "trigger-worker".
	Name string `mapstructure:"name"`
}

// TLS holds PEM file paths. Cert and Key are both set (client certificate)
// or both empty.
type TLS struct {
	// CA is a file of root certificates to trust instead of the system's.
	CA   string `mapstructure:"ca"`
	Cert string `mapstructure:"cert"`
	Key  string `mapstructure:"key"`
}

// Embedded configures the in-process NATS server started when nats.url is
// empty.
type Embedded struct {
	// Listen is the client address; default "127.0.0.1:4222".
	Listen string `mapstructure:"listen"`
	// StoreDir is the JetStream directory; "" means
	// <os.TempDir()>/triggerbus-jetstream.
	StoreDir string `mapstructure:"store_dir"`
	// JetStream enables JetStream; default true.
	JetStream bool `mapstructure:"jetstream"`
}

// Subjects configures the subjects events are published on.
type Subjects struct {
	// Prefix is the first token(s) of every subject, <prefix>.<TYPE>.<OPTION>;
	// default "trigger". It may have several tokens ("fco.eu1.trigger").
	Prefix string `mapstructure:"prefix"`
	// Queue is the queue group the workers share; default "trigger-workers".
	Queue string `mapstructure:"queue"`
}

// Delivery modes.
const (
	DeliveryAuto    = "auto"    // durable when the server has JetStream, else core
	DeliveryCore    = "core"    // queue subscriptions, at most once
	DeliveryDurable = "durable" // JetStream stream and pull consumer, at least once
)

// Delivery configures how POST and SCHEDULED events reach the workers.
type Delivery struct {
	// Mode is DeliveryAuto (default), DeliveryCore or DeliveryDurable.
	Mode string `mapstructure:"mode"`
	// MaxDeliver is how many times a durable event is attempted before it is
	// dead-lettered; default 5, -1 is unlimited.
	MaxDeliver int `mapstructure:"max_deliver"`
	// Backoff is the delay before each redelivery, the last one repeating;
	// default [1s, 5s, 30s].
	Backoff []time.Duration `mapstructure:"backoff"`
	// AckWait is how long a delivered event may run before it is redelivered;
	// default 30s.
	AckWait time.Duration `mapstructure:"ack_wait"`
	// MaxInFlight bounds the function invocations running at once per worker;
	// default 256.
	MaxInFlight int `mapstructure:"max_in_flight"`
	// MaxEventBytes is the largest event payload accepted; default 1 MiB.
	MaxEventBytes int `mapstructure:"max_event_bytes"`
	// ShutdownTimeout bounds how long shutdown waits for in-flight functions;
	// default 10s.
	ShutdownTimeout time.Duration `mapstructure:"shutdown_timeout"`
	// StreamMaxAge is the longest an event stays in the stream; default 24h,
	// 0 is unlimited.
	StreamMaxAge time.Duration `mapstructure:"stream_max_age"`
	// StreamMaxBytes is the size limit of the stream; default 1 GiB, -1 is
	// unlimited.
	StreamMaxBytes int64 `mapstructure:"stream_max_bytes"`
	// Replicas is the stream's replication factor (1 to 5); default 1.
	Replicas int `mapstructure:"replicas"`
	// DuplicateWindow is how long the stream remembers event ids to drop
	// duplicates; default 2m.
	DuplicateWindow time.Duration `mapstructure:"duplicate_window"`
}

// Scripts configures the FDL (Lua) scripts functions are loaded from.
type Scripts struct {
	// Dir is the directory of *.lua scripts; "" loads no scripts.
	Dir string `mapstructure:"dir"`
	// APIPrefix is the subject prefix of the orchestrator API bridged to
	// scripts' adminAPI/userAPI (<prefix>.admin.<method>); default "fco.api".
	APIPrefix string `mapstructure:"api_prefix"`
	// MaxMemoryBytes caps the memory one call of a script may hold (its
	// tables, strings and functions); 0 means the Lua kind's default, 64
	// MiB. A call over it fails like any script error.
	MaxMemoryBytes int64 `mapstructure:"max_memory_bytes"`
	// DenyPrivateNetworks makes the simplehttp requests of every FDL script
	// (from Dir and from functions' lua) refuse to connect to loopback,
	// private, link-local and other non-public addresses, as a webhook's
	// deny_private_networks does; default false.
	DenyPrivateNetworks bool `mapstructure:"deny_private_networks"`
}

// Metrics configures the HTTP endpoint of /metrics, /healthz and /readyz.
type Metrics struct {
	// Listen is the address; default "127.0.0.1:9464". "" or "off" disables
	// the endpoint.
	Listen string `mapstructure:"listen"`
}

// Enabled reports whether the metrics endpoint is on.
func (m Metrics) Enabled() bool { return m.Listen != "" && m.Listen != "off" }

// Log configures the worker's log.
type Log struct {
	// Level is debug, info (default), warn or error.
	Level string `mapstructure:"level"`
	// Format is text (default) or json.
	Format string `mapstructure:"format"`
}

// Loop configures the Trigger-Origin loop flag.
type Loop struct {
	// Key is the fleet's HMAC key. When set, Trigger-Origin values are signed
	// and only values that verify are honoured. Every worker needs the same
	// key.
	Key Secret `mapstructure:"key"`
	// TTL is how long a signed Trigger-Origin stays valid; default 5m, at
	// most MaxLoopTTL.
	TTL time.Duration `mapstructure:"ttl"`
}

// Registry configures the worker's entries in the PRE registry, the
// JetStream bucket that tells callers "no trigger" from "no worker".
type Registry struct {
	// Instance names this worker process in the registry; it adds and
	// removes only its own registrations. "" means the host name and a
	// random suffix, new for every process. Two running processes must not
	// share one.
	Instance string `mapstructure:"instance"`
	// Refresh is how often the worker rewrites its registrations with a new
	// last-seen time; default 1m. Registrations never expire.
	Refresh time.Duration `mapstructure:"refresh"`
}

// Loading configures what trigger-worker does with functions that do not
// load.
type Loading struct {
	// AllowPartial serves the functions that loaded when others did not (a
	// script with an error, an unknown trigger type, ...), warning at every
	// load. false (the default) refuses to start with any problem, and a
	// reload with any problem keeps the functions already served.
	AllowPartial bool `mapstructure:"allow_partial"`
}

// Function failure policies and modes (PRE functions only).
const (
	FailurePolicyFail   = "fail"    // an error or timeout refuses the action
	FailurePolicyIgnore = "ignore"  // an error or timeout counts as CONTINUE
	ModeEnforce         = "enforce" // the function's decision counts
	ModeShadow          = "shadow"  // the decision is recorded, never applied
)

// Function is a trigger function registered in the config file. Exactly one
// of Lua, Webhook and Exec is set.
type Function struct {
	// Ref is the function's unique name.
	Ref string `mapstructure:"ref"`
	// TriggerType is a trigger type of the catalogue, e.g. "PRE_CREATE".
	TriggerType string `mapstructure:"trigger_type"`
	// TriggerOptions are the options it runs for; "ANY" means all.
	TriggerOptions []string `mapstructure:"trigger_options"`
	// Priority orders functions of the same event, lowest first.
	Priority int `mapstructure:"priority"`
	// Timeout bounds one call; 0 means the default, 5s.
	Timeout time.Duration `mapstructure:"timeout"`
	// FailurePolicy is FailurePolicyFail or FailurePolicyIgnore, PRE only;
	// "" means fail.
	FailurePolicy string `mapstructure:"failure_policy"`
	// Mode is ModeEnforce or ModeShadow, PRE only; "" means enforce.
	Mode string `mapstructure:"mode"`
	// Schedule is when a SCHEDULED function runs.
	Schedule *Schedule `mapstructure:"schedule"`

	Lua     *LuaFunc     `mapstructure:"lua"`
	Webhook *WebhookFunc `mapstructure:"webhook"`
	Exec    *ExecFunc    `mapstructure:"exec"`
}

// Schedule is a SCHEDULED function's timing: exactly one of Every and Cron.
type Schedule struct {
	// Every runs the function at this interval.
	Every time.Duration `mapstructure:"every"`
	// Cron is a five-field cron expression (minute hour day-of-month month
	// day-of-week).
	Cron string `mapstructure:"cron"`
	// Timezone is the IANA zone Cron and Start are read in; "" is UTC.
	Timezone string `mapstructure:"timezone"`
	// Start, "HH:MM" or "HH:MM:SS", anchors Every to a time of day (Every
	// 24h with Start 23:59 runs daily at 23:59); "" anchors to midnight.
	Start string `mapstructure:"start"`
}

// LuaFunc is a function written as an FDL (Lua) script.
type LuaFunc struct {
	// File is the script's path.
	File string `mapstructure:"file"`
	// Entry is the entry-point function to call; "" means the script's one
	// entry point.
	Entry string `mapstructure:"entry"`
}

// WebhookFunc is a function served over HTTP.
type WebhookFunc struct {
	// URL is the http or https endpoint the event is POSTed to.
	URL string `mapstructure:"url"`
	// Secret signs requests (Standard Webhooks); "" sends them unsigned.
	Secret Secret `mapstructure:"secret"`
	// Timeout bounds the HTTP call; 0 means the function's timeout.
	Timeout time.Duration `mapstructure:"timeout"`
	// Headers are sent with every request. Names arrive lower-cased
	// (HTTP header names are case-insensitive).
	Headers map[string]string `mapstructure:"headers"`
	// CA is a PEM file of root certificates to trust instead of the system's.
	CA string `mapstructure:"ca"`
	// MaxBodyBytes caps the response body read; 0 means the handler's
	// default.
	MaxBodyBytes int64 `mapstructure:"max_body_bytes"`
	// DenyPrivateNetworks refuses to connect to loopback, private and
	// link-local addresses.
	DenyPrivateNetworks bool `mapstructure:"deny_private_networks"`
}

// ExecFunc is a function run as an external command.
type ExecFunc struct {
	// Command is the argv; it is never run through a shell.
	Command []string `mapstructure:"command"`
	// Env names environment variables of the worker passed to the command.
	Env []string `mapstructure:"env"`
	// Dir is the working directory; "" is the worker's.
	Dir string `mapstructure:"dir"`
	// MaxOutputBytes caps the output read; 0 means the handler's default.
	MaxOutputBytes int64 `mapstructure:"max_output_bytes"`
}

// Secret is a string that must not appear in output: it prints, logs and
// marshals as REDACTED (or "" when empty). Convert it with string(s) where
// the value is needed.
type Secret string

const redacted = "REDACTED"

// String returns REDACTED, or "" for an empty secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString is String quoted, for the %#v verb.
func (s Secret) GoString() string { return fmt.Sprintf("%q", s.String()) }

// LogValue implements [slog.LogValuer].
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText implements [encoding.TextMarshaler] so that JSON and YAML
// encoders redact the secret too.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Default returns the configuration used for every key that no file,
// environment variable or override sets.
func Default() Config {
	return Config{
		NATS: NATS{
			Name:     "trigger-worker",
			Embedded: Embedded{Listen: "127.0.0.1:4222", JetStream: true},
		},
		Subjects: Subjects{Prefix: "trigger", Queue: "trigger-workers"},
		Delivery: Delivery{
			Mode:            DeliveryAuto,
			MaxDeliver:      5,
			Backoff:         []time.Duration{time.Second, 5 * time.Second, 30 * time.Second},
			AckWait:         30 * time.Second,
			MaxInFlight:     256,
			MaxEventBytes:   1 << 20,
			ShutdownTimeout: 10 * time.Second,
			StreamMaxAge:    24 * time.Hour,
			StreamMaxBytes:  1 << 30,
			Replicas:        1,
			DuplicateWindow: 2 * time.Minute,
		},
		Scripts: Scripts{APIPrefix: "fco.api"},
		Metrics: Metrics{Listen: "127.0.0.1:9464"},
		Log:     Log{Level: "info", Format: "text"},
		Loop:    Loop{TTL: 5 * time.Minute},

		Registry: Registry{Refresh: time.Minute},
	}
}

// FindDefault returns [DefaultPath] if that file exists in the working
// directory, else "".
func FindDefault() string {
	if fi, err := os.Stat(DefaultPath); err == nil && fi.Mode().IsRegular() {
		return DefaultPath
	}
	return ""
}

// Load reads the YAML file at path (with path "", no file: defaults,
// environment and overrides only), then the environment variables
// TRIGGER_<SECTION>_<KEY> (e.g. TRIGGER_NATS_URL, TRIGGER_DELIVERY_MAX_DELIVER,
// TRIGGER_SUBJECTS_PREFIX), then overrides (dotted keys such as "nats.url",
// typically set from command-line flags), and validates the result.
//
// Problems with keys and values come back together, joined, each an
// [*Error] matching [ErrInvalid]. When only [Config.Validate] fails, Load
// also returns the decoded Config so that a caller can still show it; on
// any other error it returns the zero Config. A file that cannot be read or
// parsed gives an error naming the file.
func Load(path string, overrides map[string]any) (Config, error) {
	defaults := flatten(Default())
	v := viper.New()
	v.SetConfigType("yaml")
	v.SetEnvPrefix(envPrefix)
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	for key, value := range defaults {
		v.SetDefault(key, value)
	}

	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return Config{}, fmt.Errorf("config: %w", err)
		}
		if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
			var pe viper.ConfigParseError
			if errors.As(err, &pe) {
				err = pe.Unwrap()
			}
			return Config{}, fmt.Errorf("%s: %w", path, err)
		}
		if errs := emptyUnknownKeys(path, data, defaults); len(errs) > 0 {
			return Config{}, errors.Join(errs...)
		}
	}

	src := sources{file: path, overrides: map[string]bool{}}
	var errs []error
	for _, key := range slices.Sorted(maps.Keys(overrides)) {
		lower := strings.ToLower(key)
		if _, ok := defaults[lower]; !ok {
			errs = append(errs, &Error{Key: key, Msg: "unknown key", Err: ErrUnknownKey})
			continue
		}
		v.Set(lower, overrides[key])
		src.overrides[lower] = true
	}
	if len(errs) > 0 {
		return Config{}, errors.Join(errs...)
	}

	var cfg Config
	hook := viper.DecodeHook(mapstructure.ComposeDecodeHookFunc(stringToSliceHook, durationHook))
	if err := v.UnmarshalExact(&cfg, hook); err != nil {
		return Config{}, src.decodeErrors(err)
	}
	cfg.File = path
	if len(cfg.Functions) == 0 {
		cfg.Functions = nil
	}

	if err := cfg.Validate(); err != nil {
		return cfg, src.attribute(err)
	}
	return cfg, nil
}

// flatten returns every key of c in dotted form with its value: the keys
// Load sets defaults for (so that environment variables can reach them)
// and accepts as overrides. Slices, including functions, are single keys.
func flatten(c Config) map[string]any {
	out := map[string]any{}
	var walk func(prefix string, v reflect.Value)
	walk = func(prefix string, v reflect.Value) {
		t := v.Type()
		for i := range t.NumField() {
			tag := t.Field(i).Tag.Get("mapstructure")
			if tag == "" || tag == "-" {
				continue
			}
			key := prefix + tag
			if f := v.Field(i); f.Kind() == reflect.Struct {
				walk(key+".", f)
			} else {
				out[key] = f.Interface()
			}
		}
	}
	walk("", reflect.ValueOf(c))
	return out
}

var durationType = reflect.TypeFor[time.Duration]()

// durationHook decodes "1m30s" into a time.Duration, and refuses a bare
// number other than 0, which would otherwise silently mean nanoseconds.
func durationHook(from, to reflect.Type, data any) (any, error) {
	if to != durationType || from == durationType {
		return data, nil
	}
	switch from.Kind() {
	case reflect.String:
		s := strings.TrimSpace(reflect.ValueOf(data).String())
		if s == "" {
			return time.Duration(0), nil
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return nil, fmt.Errorf("invalid duration %q (write a number with a unit, such as 500ms, 30s or 1h)", s)
		}
		return d, nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		if reflect.ValueOf(data).IsZero() {
			return time.Duration(0), nil
		}
		return nil, fmt.Errorf("invalid duration %v: give a unit, such as %vs", data, data)
	}
	return data, nil
}

// stringToSliceHook splits a comma-separated string (from an environment
// variable or a flag) into a list, trimming spaces around each element.
func stringToSliceHook(from, to reflect.Type, data any) (any, error) {
	if from.Kind() != reflect.String || to.Kind() != reflect.Slice || to.Elem().Kind() == reflect.Uint8 {
		return data, nil
	}
	s := strings.TrimSpace(reflect.ValueOf(data).String())
	if s == "" {
		return []string{}, nil
	}
	parts := strings.Split(s, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts, nil
}

// Error is one problem with one key. Load and [Config.Validate] return an
// *Error or several joined with [errors.Join]; every *Error matches
// [ErrInvalid] with errors.Is, and an unknown key also matches
// [ErrUnknownKey].
type Error struct {
	// File is the file the value was read from; "" if it came from
	// elsewhere or is unknown.
	File string
	// Env is the environment variable the value came from, if it did.
	Env string
	// Key is the dotted path of the key, e.g. "delivery.mode",
	// "delivery.backoff[1]" or "functions[2].webhook.url".
	Key string
	// Ref is the ref of the function the key belongs to, if known.
	Ref string
	// Msg says what is wrong.
	Msg string
	// Err is the underlying error, if any.
	Err error
}

// Error formats e as "<file>: <key> (ref "<ref>"): <msg>", or
// "<file>: unknown key "<key>"" for an unknown key; an environment variable
// replaces the file when the value came from one.
func (e *Error) Error() string {
	var b strings.Builder
	switch {
	case e.Env != "":
		b.WriteString("env " + e.Env + ": ")
	case e.File != "":
		b.WriteString(e.File + ": ")
	}
	if errors.Is(e.Err, ErrUnknownKey) {
		fmt.Fprintf(&b, "unknown key %q", e.Key)
		return b.String()
	}
	if e.Key != "" {
		b.WriteString(e.Key)
		if e.Ref != "" {
			fmt.Fprintf(&b, " (ref %q)", e.Ref)
		}
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Is reports whether target is [ErrInvalid].
func (e *Error) Is(target error) bool { return target == ErrInvalid }

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// sources knows where the values of one Load came from.
type sources struct {
	file      string
	overrides map[string]bool // lower-case dotted keys set by overrides
}

// locate sets e.File or e.Env to where the value of e.Key came from: an
// override (neither), an environment variable, or the file.
func (s sources) locate(e *Error) {
	key := e.Key
	if i := strings.IndexByte(key, '['); i >= 0 {
		key = key[:i]
	}
	e.File, e.Env = s.file, ""
	if s.overrides[key] {
		e.File = ""
		return
	}
	env := envPrefix + "_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
	if os.Getenv(env) != "" {
		e.File, e.Env = "", env
	}
}

// attribute locates every *Error in err.
func (s sources) attribute(err error) error {
	for _, e := range leaves(err) {
		var ce *Error
		if errors.As(e, &ce) {
			s.locate(ce)
		}
	}
	return err
}

// decodeErrors turns the errors of mapstructure into one *Error per key,
// splitting "has invalid keys: a, b" into one unknown-key error each.
func (s sources) decodeErrors(err error) error {
	const invalidKeys = "has invalid keys: "
	var errs []error
	for _, leaf := range leaves(err) {
		var de *mapstructure.DecodeError
		if !errors.As(leaf, &de) {
			errs = append(errs, &Error{File: s.file, Msg: leaf.Error(), Err: leaf})
			continue
		}
		inner := de.Unwrap()
		if msg := inner.Error(); strings.HasPrefix(msg, invalidKeys) {
			for k := range strings.SplitSeq(strings.TrimPrefix(msg, invalidKeys), ", ") {
				key := k
				if de.Name() != "" {
					key = de.Name() + "." + k
				}
				errs = append(errs, &Error{File: s.file, Key: key, Msg: "unknown key", Err: ErrUnknownKey})
			}
			continue
		}
		e := &Error{Key: de.Name(), Msg: describe(inner), Err: inner}
		s.locate(e)
		errs = append(errs, e)
	}
	slices.SortStableFunc(errs, func(a, b error) int {
		return strings.Compare(errorKey(a), errorKey(b))
	})
	return errors.Join(errs...)
}

func errorKey(err error) string {
	if e, ok := err.(*Error); ok {
		return e.Key
	}
	return ""
}

// leaves flattens a tree of joined errors, stopping at mapstructure's
// DecodeErrors and at errors that do not join others.
func leaves(err error) []error {
	if err == nil {
		return nil
	}
	if _, ok := err.(*mapstructure.DecodeError); ok {
		return []error{err}
	}
	switch u := err.(type) {
	case interface{ Unwrap() []error }:
		var out []error
		for _, e := range u.Unwrap() {
			out = append(out, leaves(e)...)
		}
		return out
	case interface{ Unwrap() error }:
		if _, ok := err.(*Error); !ok {
			if inner := u.Unwrap(); inner != nil {
				return leaves(inner)
			}
		}
	}
	return []error{err}
}

// describe words a decoding error without mapstructure's jargon.
func describe(err error) string {
	var pe *mapstructure.ParseError
	if errors.As(err, &pe) {
		return fmt.Sprintf("cannot use %q as %s", fmt.Sprint(pe.Value), pe.Expected.Type())
	}
	var ue *mapstructure.UnconvertibleTypeError
	if errors.As(err, &ue) {
		return fmt.Sprintf("cannot use a %s as %s", kindName(ue.Value), ue.Expected.Type())
	}
	return err.Error()
}

func kindName(v any) string {
	switch reflect.ValueOf(v).Kind() {
	case reflect.Map:
		return "map"
	case reflect.Slice, reflect.Array:
		return "list"
	case reflect.Invalid:
		return "null"
	default:
		return reflect.TypeOf(v).String()
	}
}

// Validate checks c and returns every problem found, joined, each an
// [*Error] naming the key (and c.File, when set). It checks structure only:
// that trigger types and options exist is for package matcher to say.
func (c Config) Validate() error {
	p := &problems{file: c.File}
	c.NATS.validate(p)
	c.Subjects.validate(p)
	c.Delivery.validate(p)
	c.Scripts.validate(p)
	c.Metrics.validate(p)
	c.Log.validate(p)
	c.Loop.validate(p)
	c.Registry.validate(p)
	validateFunctions(p, c.Functions)
	return errors.Join(p.errs...)
}

// problems collects validation errors.
type problems struct {
	file string
	ref  string // ref of the function being checked, if any
	errs []error
}

func (p *problems) add(key, format string, args ...any) {
	p.errs = append(p.errs, &Error{File: p.file, Key: key, Ref: p.ref, Msg: fmt.Sprintf(format, args...)})
}

// oneOf checks that value is one of allowed.
func (p *problems) oneOf(key, value string, allowed ...string) {
	if !slices.Contains(allowed, value) {
		p.add(key, "%q is not one of %s", value, strings.Join(allowed, ", "))
	}
}

// listen checks a host:port address.
func (p *problems) listen(key, addr string) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		p.add(key, "%q is not a host:port address", addr)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		p.add(key, "%q has an invalid port", addr)
	}
}

// subjectPrefix checks one or more NATS subject tokens joined by dots, with
// no wildcards.
func (p *problems) subjectPrefix(key, s string) {
	if s == "" {
		p.add(key, "is empty")
		return
	}
	for tok := range strings.SplitSeq(s, ".") {
		if tok == "" || strings.ContainsAny(tok, "*> \t\r\n") || strings.ContainsFunc(tok, unicode.IsControl) {
			p.add(key, "%q is not a valid subject prefix (tokens separated by dots, no wildcards or spaces)", s)
			return
		}
	}
}

func (n NATS) validate(p *problems) {
	if strings.TrimSpace(n.URL) != "" {
		for i, raw := range strings.Split(n.URL, ",") {
			raw = strings.TrimSpace(raw)
			if raw == "" {
				p.add("nats.url", "entry %d is empty", i+1)
				continue
			}
			if !strings.Contains(raw, "://") {
				// Not printed: it may hold a password.
				p.add("nats.url", "entry %d has no scheme (nats://, tls://, ws:// or wss://)", i+1)
				continue
			}
			u, err := url.Parse(raw)
			if err != nil {
				var ue *url.Error
				if errors.As(err, &ue) {
					err = ue.Err // without the URL, which may hold a password
				}
				p.add("nats.url", "entry %d is not a URL: %v", i+1, err)
				continue
			}
			switch strings.ToLower(u.Scheme) {
			case "nats", "tls", "ws", "wss":
			default:
				p.add("nats.url", "%q: scheme must be nats, tls, ws or wss", u.Redacted())
				continue
			}
			if u.Host == "" {
				p.add("nats.url", "entry %d has no host", i+1)
			}
		}
	}
	if (n.TLS.Cert == "") != (n.TLS.Key == "") {
		if n.TLS.Cert == "" {
			p.add("nats.tls.cert", "is empty but nats.tls.key is set: set both or neither")
		} else {
			p.add("nats.tls.key", "is empty but nats.tls.cert is set: set both or neither")
		}
	}
	p.listen("nats.embedded.listen", n.Embedded.Listen)
}

func (s Subjects) validate(p *problems) {
	p.subjectPrefix("subjects.prefix", s.Prefix)
	if s.Queue == "" || strings.ContainsFunc(s.Queue, unicode.IsSpace) {
		p.add("subjects.queue", "%q is not a valid queue group name (non-empty, no spaces)", s.Queue)
	}
}

func (d Delivery) validate(p *problems) {
	p.oneOf("delivery.mode", d.Mode, DeliveryAuto, DeliveryCore, DeliveryDurable)
	if d.MaxDeliver < 1 && d.MaxDeliver != -1 {
		p.add("delivery.max_deliver", "is %d, must be at least 1 (or -1 for unlimited)", d.MaxDeliver)
	}
	for i, b := range d.Backoff {
		if b <= 0 {
			p.add(fmt.Sprintf("delivery.backoff[%d]", i), "is %v, must be positive", b)
		}
	}
	if d.AckWait <= 0 {
		p.add("delivery.ack_wait", "is %v, must be positive", d.AckWait)
	}
	if d.MaxInFlight < 1 {
		p.add("delivery.max_in_flight", "is %d, must be at least 1", d.MaxInFlight)
	}
	if d.MaxEventBytes < 1 {
		p.add("delivery.max_event_bytes", "is %d, must be at least 1", d.MaxEventBytes)
	}
	if d.ShutdownTimeout <= 0 {
		p.add("delivery.shutdown_timeout", "is %v, must be positive", d.ShutdownTimeout)
	}
	if d.StreamMaxAge < 0 {
		p.add("delivery.stream_max_age", "is %v, must be positive (or 0 for unlimited)", d.StreamMaxAge)
	}
	if d.StreamMaxBytes < 1 && d.StreamMaxBytes != -1 {
		p.add("delivery.stream_max_bytes", "is %d, must be positive (or -1 for unlimited)", d.StreamMaxBytes)
	}
	if d.Replicas < 1 || d.Replicas > 5 {
		p.add("delivery.replicas", "is %d, must be 1 to 5", d.Replicas)
	}
	if d.DuplicateWindow < 0 {
		p.add("delivery.duplicate_window", "is %v, must not be negative", d.DuplicateWindow)
	}
}

func (s Scripts) validate(p *problems) {
	p.subjectPrefix("scripts.api_prefix", s.APIPrefix)
	if s.MaxMemoryBytes < 0 {
		p.add("scripts.max_memory_bytes", "is %d, must not be negative", s.MaxMemoryBytes)
	}
}

func (m Metrics) validate(p *problems) {
	if m.Enabled() {
		p.listen("metrics.listen", m.Listen)
	}
}

func (l Log) validate(p *problems) {
	p.oneOf("log.level", l.Level, "debug", "info", "warn", "error")
	p.oneOf("log.format", l.Format, "text", "json")
}

// MaxLoopTTL is the longest loop.ttl (worker.MaxOriginTTL): a signed
// Trigger-Origin read off the bus can be replayed for that long.
const MaxLoopTTL = time.Hour

func (l Loop) validate(p *problems) {
	if l.TTL > MaxLoopTTL {
		p.add("loop.ttl", "is %v, more than the maximum of %v (a leaked Trigger-Origin would stay valid that long)", l.TTL, MaxLoopTTL)
	}
	if l.TTL <= 0 {
		p.add("loop.ttl", "is %v, must be positive", l.TTL)
	}
}

func (r Registry) validate(p *problems) {
	if r.Refresh <= 0 {
		p.add("registry.refresh", "is %v, must be positive", r.Refresh)
	}
}

func validateFunctions(p *problems, fns []Function) {
	seen := map[string]int{}
	for i, f := range fns {
		key := fmt.Sprintf("functions[%d]", i)
		p.ref = f.Ref
		if f.Ref == "" {
			p.add(key+".ref", "is empty")
		} else if j, dup := seen[f.Ref]; dup {
			p.add(key+".ref", "is also the ref of functions[%d]", j)
		} else {
			seen[f.Ref] = i
		}
		f.validate(p, key)
	}
	p.ref = ""
}

func (f Function) validate(p *problems, key string) {
	if f.TriggerType == "" {
		p.add(key+".trigger_type", "is empty")
	}
	if f.FailurePolicy != "" {
		p.oneOf(key+".failure_policy", f.FailurePolicy, FailurePolicyFail, FailurePolicyIgnore)
	}
	if f.Mode != "" {
		p.oneOf(key+".mode", f.Mode, ModeEnforce, ModeShadow)
	}
	if f.Timeout < 0 {
		p.add(key+".timeout", "is %v, must not be negative", f.Timeout)
	}
	if f.Schedule != nil {
		f.Schedule.validate(p, key+".schedule")
	}

	handlers := 0
	if f.Lua != nil {
		handlers++
		if f.Lua.File == "" {
			p.add(key+".lua.file", "is empty")
		}
	}
	if f.Webhook != nil {
		handlers++
		f.Webhook.validate(p, key+".webhook")
	}
	if f.Exec != nil {
		handlers++
		f.Exec.validate(p, key+".exec")
	}
	if handlers != 1 {
		p.add(key, "set exactly one of lua, webhook, exec")
	}
}

func (s Schedule) validate(p *problems, key string) {
	switch {
	case s.Every != 0 && s.Cron != "":
		p.add(key, "set one of every, cron, not both")
	case s.Every == 0 && s.Cron == "":
		p.add(key, "set one of every, cron")
	}
	if s.Every < 0 {
		p.add(key+".every", "is %v, must be positive", s.Every)
	}
	if s.Cron != "" {
		if n := len(strings.Fields(s.Cron)); n != 5 {
			p.add(key+".cron", "%q has %d fields, want 5 (minute hour day-of-month month day-of-week)", s.Cron, n)
		}
	}
	if s.Timezone != "" {
		if _, err := time.LoadLocation(s.Timezone); err != nil {
			p.add(key+".timezone", "%q is not a known time zone", s.Timezone)
		}
	}
	if s.Start != "" {
		if s.Cron != "" {
			p.add(key+".start", "applies to every, not to cron")
		}
		if !validClock(s.Start) {
			p.add(key+".start", "%q is not a time of day HH:MM or HH:MM:SS", s.Start)
		}
	}
}

// validClock reports whether s is "HH:MM" or "HH:MM:SS" on a 24-hour clock.
func validClock(s string) bool {
	for _, layout := range []string{"15:04", "15:04:05"} {
		if _, err := time.Parse(layout, s); err == nil && len(s) == len(layout) {
			return true
		}
	}
	return false
}

func (w WebhookFunc) validate(p *problems, key string) {
	u, err := url.Parse(w.URL)
	switch {
	case w.URL == "":
		p.add(key+".url", "is empty")
	case err != nil:
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		p.add(key+".url", "is not a URL: %v", err)
	case u.Scheme != "http" && u.Scheme != "https":
		p.add(key+".url", "%q: scheme must be http or https", u.Redacted())
	case u.Host == "":
		p.add(key+".url", "%q has no host", u.Redacted())
	}
	if w.Timeout < 0 {
		p.add(key+".timeout", "is %v, must not be negative", w.Timeout)
	}
	if w.MaxBodyBytes < 0 {
		p.add(key+".max_body_bytes", "is %d, must not be negative", w.MaxBodyBytes)
	}
}

func (e ExecFunc) validate(p *problems, key string) {
	if len(e.Command) == 0 || e.Command[0] == "" {
		p.add(key+".command", "is empty: give the program and its arguments as a list")
	}
	for i, name := range e.Env {
		if name == "" || strings.ContainsAny(name, "= \t") {
			p.add(fmt.Sprintf("%s.env[%d]", key, i), "%q is not an environment variable name", name)
		}
	}
	if e.MaxOutputBytes < 0 {
		p.add(key+".max_output_bytes", "is %d, must not be negative", e.MaxOutputBytes)
	}
}

// emptyUnknownKeys finds the unknown keys of a config file whose value is
// empty (`natz:` or `natz: {}`): viper drops them before decoding, so the
// strict decode cannot see them. known holds every valid dotted key.
func emptyUnknownKeys(file string, data []byte, known map[string]any) []error {
	var raw map[string]any
	if yaml.Unmarshal(data, &raw) != nil {
		return nil // viper has already reported a parse error
	}
	sections := map[string]bool{}
	for k := range known {
		for i := range len(k) {
			if k[i] == '.' {
				sections[k[:i]] = true
			}
		}
	}
	var errs []error
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for _, k := range slices.Sorted(maps.Keys(m)) {
			key := strings.ToLower(prefix + k)
			v := m[k]
			if _, ok := known[key]; ok {
				continue
			}
			if sub, ok := v.(map[string]any); ok && sections[key] {
				walk(key+".", sub)
				continue
			}
			if sub, ok := v.(map[string]any); (ok && len(sub) == 0) || v == nil {
				errs = append(errs, &Error{File: file, Key: key, Msg: "unknown key", Err: ErrUnknownKey})
			}
		}
	}
	walk("", raw)
	return errs
}
