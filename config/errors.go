package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"

	"github.com/go-viper/mapstructure/v2"
)

var (
	// ErrInvalid matches (with errors.Is) every error that Load and
	// [Config.Validate] return for a bad key or value.
	ErrInvalid = errors.New("config: invalid")
	// ErrUnknownKey matches (with errors.Is) an error for a key that is not
	// part of the configuration.
	ErrUnknownKey = errors.New("config: unknown key")
)

// Error is one problem with one key. Load and [Config.Validate] return an
// *Error or several joined with [errors.Join]; every *Error matches
// [ErrInvalid] with errors.Is, and an unknown key also matches
// [ErrUnknownKey].
type Error struct {
	// File is the file the value was read from; "" if it came from
	// elsewhere or is unknown.
	File string
	// Line is the line of Key in File; 0 if not known.
	Line int
	// Suggest is, for an unknown key, the nearest known key; "" if none is
	// near.
	Suggest string
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
	case e.File != "" && e.Line > 0:
		fmt.Fprintf(&b, "%s:%d: ", e.File, e.Line)
	case e.File != "":
		b.WriteString(e.File + ": ")
	}
	if errors.Is(e.Err, ErrUnknownKey) {
		fmt.Fprintf(&b, "unknown key %q", e.Key)
		if e.Suggest != "" {
			fmt.Fprintf(&b, " (did you mean %q?)", e.Suggest)
		}
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

// rootName is the name mapstructure gives the root of a decode (the
// Config) in its errors.
var rootName = reflect.TypeFor[Config]().String()

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
				// mapstructure (v2.5) names the root by its type where it
				// used to leave it empty.
				if n := de.Name(); n != "" && n != rootName {
					key = n + "." + k
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
