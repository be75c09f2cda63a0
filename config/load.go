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
// typically set from command-line flags), and validates the result.
//
// Problems with keys and values come back together, joined, each an
// [*Error] matching [ErrInvalid]. When only [Config.Validate] fails, Load
// also returns the decoded Config so that a caller can still show it; on
// any other error it returns the zero Config. A file that cannot be read or
// parsed gives an error naming the file.
func Load(path string, overrides map[string]any) (Config, error) {
	return load(path, overrides, true)
}

// load is Load, with the environment read only when env is true.
func load(path string, overrides map[string]any, env bool) (Config, error) {
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
