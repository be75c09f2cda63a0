package config

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"
)

// envPrefix is the prefix of every environment variable Load reads.
const envPrefix = "TRIGGER"

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
// typically set from command-line flags) and the flags bound to keys that
// were set on the command line, and validates the result.
//
// Problems with keys and values come back together in one pass (unknown
// keys, values that do not decode, invalid values), joined, each an
// [*Error] matching [ErrInvalid], with the line of the key in the file and,
// for an unknown key, the nearest known one (triggerType: trigger_type). When only [Config.Validate] fails, Load
// also returns the decoded Config so that a caller can still show it; on
// any other error it returns the zero Config. A file that cannot be read or
// parsed gives an error naming the file.
func Load(path string, overrides map[string]any, flags ...FlagBinding) (Config, error) {
	return load(path, overrides, true, flags...)
}

// load is Load, with the environment read only when env is true.
func load(path string, overrides map[string]any, env bool, flags ...FlagBinding) (Config, error) {
	defaults := flatten(Default())
	v := viper.New()
	v.SetConfigType("yaml")
	if env {
		v.SetEnvPrefix(envPrefix)
		v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
		v.AutomaticEnv()
	}
	for key, value := range defaults {
		v.SetDefault(key, value)
	}

	// Every problem is reported in one pass: unknown keys (of the file and
	// of the overrides), values that do not decode, and values that decode
	// but are not valid.
	var errs []error
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
		errs = append(errs, emptyUnknownKeys(path, data, defaults)...)
	}

	src := sources{file: path, overrides: map[string]bool{}}
	for _, key := range slices.Sorted(maps.Keys(overrides)) {
		lower := strings.ToLower(key)
		if _, ok := defaults[lower]; !ok {
			errs = append(errs, &Error{Key: key, Msg: "unknown key", Err: ErrUnknownKey})
			continue
		}
		v.Set(lower, overrides[key])
		src.overrides[lower] = true
	}
	for _, b := range flags {
		if _, ok := defaults[b.Key]; !ok || b.Flag == nil {
			errs = append(errs, &Error{Key: b.Key, Msg: "unknown key", Err: ErrUnknownKey})
			continue
		}
		if err := v.BindPFlag(b.Key, b.Flag); err != nil {
			return Config{}, err
		}
		if b.Flag.Changed {
			src.overrides[b.Key] = true
		}
	}

	var cfg Config
	hook := viper.DecodeHook(mapstructure.ComposeDecodeHookFunc(stringToSliceHook, durationHook))
	decoded := true
	if err := v.UnmarshalExact(&cfg, hook); err != nil {
		decoded = false
		errs = append(errs, leaves(src.decodeErrors(err))...)
	}
	cfg.File = path
	if len(cfg.Functions) == 0 {
		cfg.Functions = nil
	}
	// A value that did not decode was left at its zero value: its
	// validation would report it twice.
	bad := map[string]bool{}
	for _, e := range errs {
		if ce, ok := e.(*Error); ok {
			bad[ce.Key] = true
			if errors.Is(ce.Err, ErrUnknownKey) {
				// A misspelt key leaves the one meant unset.
				if s := suggestKey(ce.Key); s != "" {
					bad[s] = true
				}
			}
		}
	}
	for _, e := range leaves(src.attribute(cfg.Validate())) {
		if ce, ok := e.(*Error); !ok || !covered(bad, ce.Key) {
			errs = append(errs, e)
		}
	}
	if len(errs) == 0 {
		return cfg, nil
	}
	annotate(path, errs)
	if !decoded {
		return Config{}, errors.Join(errs...)
	}
	return cfg, errors.Join(errs...)
}

// covered reports whether key or a key under it is in bad.
func covered(bad map[string]bool, key string) bool {
	for b := range bad {
		if b == key || strings.HasPrefix(b, key+".") || strings.HasPrefix(b, key+"[") {
			return true
		}
	}
	return false
}

// FlagBinding binds a command-line flag to a key: when the flag is set on
// the command line its value overrides the environment and the file.
type FlagBinding struct {
	Key  string // dotted lower-case key, e.g. "metrics.listen"
	Flag *pflag.Flag
}

// annotate adds to the errors of the file at path the line of their key,
// and to unknown keys the nearest known key.
func annotate(path string, errs []error) {
	lines := KeyLines(path)
	for _, e := range errs {
		ce, ok := e.(*Error)
		if !ok {
			continue
		}
		if errors.Is(ce.Err, ErrUnknownKey) {
			if s := suggestKey(ce.Key); s != strings.ToLower(ce.Key) {
				ce.Suggest = s
			}
		}
		if ce.File != "" && ce.File == path {
			key := strings.ToLower(ce.Key)
			for key != "" {
				if n, ok := lines[key]; ok {
					ce.Line = n
					break
				}
				i := strings.LastIndexAny(key, ".[")
				if i < 0 {
					break
				}
				key = key[:i]
			}
		}
	}
}

// DefinitionsFile is the file of a bundle directory that defines its
// functions (see [LoadDefinitions]).
const DefinitionsFile = "functions.yaml"

// Definitions are the functions of a bundle directory: the functions list
// and the directory of FDL scripts.
type Definitions struct {
	// Functions are as in [Config.Functions], their relative lua.file and
	// webhook.ca paths joined to the directory of the file.
	Functions []Function
	// ScriptsDir is scripts.dir joined to the directory of the file; "" if
	// not set.
	ScriptsDir string
}

// LoadDefinitions reads a file of function definitions, such as the
// functions.yaml of a bundle directory: a config file whose only keys are
// functions and scripts.dir. Relative paths in it (scripts.dir, lua.file,
// webhook.ca) are relative to the file's directory, so that the directory
// can be moved whole; exec commands and directories are paths of the host
// and stay as written. Environment variables do not apply. The functions
// are validated as [Load] validates them; problems come back joined, each
// an [*Error].
func LoadDefinitions(path string) (Definitions, error) {
	var errs []error
	for key := range KeyLines(path) {
		if key == "functions" || strings.HasPrefix(key, "functions[") || key == "scripts" || key == "scripts.dir" {
			continue
		}
		if strings.Contains(key, ".") && !strings.HasPrefix(key, "scripts.") {
			continue // inside another section, which is reported
		}
		errs = append(errs, &Error{File: path, Key: key, Msg: "is not a key of a definitions file (only functions and scripts.dir)"})
	}
	if len(errs) > 0 {
		slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
		return Definitions{}, errors.Join(errs...)
	}
	cfg, err := load(path, nil, false)
	if err != nil {
		return Definitions{}, err
	}
	base := filepath.Dir(path)
	rebase := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(base, p)
	}
	d := Definitions{Functions: cfg.Functions, ScriptsDir: rebase(cfg.Scripts.Dir)}
	for i := range d.Functions {
		f := &d.Functions[i]
		if f.Lua != nil {
			f.Lua.File = rebase(f.Lua.File)
		}
		if f.Webhook != nil {
			f.Webhook.CA = rebase(f.Webhook.CA)
		}
	}
	return d, nil
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
