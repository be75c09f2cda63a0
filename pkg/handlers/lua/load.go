package lua

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	lua "github.com/yuin/gopher-lua"

	"github.com/triggerbus/triggerbus/pkg/schedule"
)

// ScriptFunction is a trigger function an FDL script describes: one entry
// point named by the script's register() (or by a CONFIG_PROVIDER's
// triggerFunctions), with the fields of its description table.
type ScriptFunction struct {
	// Ref is the function's identity, the description's ref; it may differ
	// from the entry point's name.
	Ref string
	// Name and Description are the description's display name and text.
	Name, Description string
	// Entry is the Lua global function the script registered: called with
	// nil it returns its description, called with p it runs.
	Entry string
	// TriggerType is the description's triggerType, as written.
	TriggerType string
	// TriggerOptions are the description's triggerOptions, as written. When
	// the description has none: {"ANY"} for SCHEDULED, else nil.
	TriggerOptions []string
	// Priority orders the functions of an event, ascending; 0 when missing.
	Priority int
	// API is the description's api; "TRIGGER" when missing.
	API string
	// Version is the description's version; 0 when missing.
	Version int
	// Schedule is the description's schedule table, normalised: outer keys
	// "start" and "frequency", inner keys the units SECOND, MINUTE, HOUR,
	// DAY and WEEK (the script may write them in any case, singular or
	// plural). Nil when the description has none.
	Schedule map[string]map[string]int
	// Owner is the billing entity and customer the schedule's ticks belong
	// to: the schedule table's beUUID and customerUUID (keys in any case).
	// The zero Owner when the table names none.
	Owner schedule.Owner
	// File is the script's path as it was loaded.
	File string
	// Line is the line where the entry point's function is defined, 0 when
	// unknown.
	Line int
	// Handler runs the entry point. It makes its Lua states on demand, so
	// it holds none until its first call. The caller owns it and closes it.
	Handler *Handler
}

// LoadScripts loads every *.lua file of dir, in name order (see
// [LoadScript]). It returns the functions of all of them and every problem
// it found, joined; a file with problems still contributes its good entry
// points.
func LoadScripts(dir string, opts Options) ([]ScriptFunction, error) {
	fns, _, err := LoadScriptsReport(dir, opts)
	return fns, err
}

// UnwiredFunction is an entry point a script describes (called with nil it
// returns a trigger description) but does not wire: register() does not
// list it, nor does a CONFIG_PROVIDER. It is not registered; FDL scripts
// often keep such functions on purpose.
type UnwiredFunction struct {
	File        string
	Line        int
	Entry       string
	Ref         string
	TriggerType string
	Reason      string
}

// LoadScriptsReport is [LoadScripts] that also reports the entry points the
// scripts describe but do not wire.
func LoadScriptsReport(dir string, opts Options) ([]ScriptFunction, []UnwiredFunction, error) {
	opts.setDefaults()
	if err := opts.Validate(); err != nil {
		return nil, nil, err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("handlers: lua scripts: %w", err)
	}
	var fns []ScriptFunction
	var unwired []UnwiredFunction
	var errs []error
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".lua") {
			continue
		}
		got, uw, problems := loadFile(filepath.Join(dir, e.Name()), opts)
		fns = append(fns, got...)
		unwired = append(unwired, uw...)
		errs = append(errs, problems...)
	}
	return fns, unwired, errors.Join(errs...)
}

// LoadScript loads an FDL script. It runs the file's top-level code, calls
// register() for the names of its entry points and each entry point with
// nil for its description table; a CONFIG_PROVIDER entry point contributes
// the names in its description's triggerFunctions, and entry points of other
// APIs are skipped. All of it runs in the sandbox of calls, within
// opts.LoadTimeout.
//
// A problem with the file (a syntax error, an error or timeout in its
// top-level code, no register(), a register() that does not return a list of
// names) or with one entry point (not a function, an error, a description
// without ref or triggerType or with a field of the wrong type, a ref used
// twice) is a *[Error] with the file and, when known, the line; the
// entry point is skipped and the others still load. The error returned joins
// them all.
func LoadScript(path string, opts Options) ([]ScriptFunction, error) {
	opts.setDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	fns, _, errs := loadFile(path, opts)
	return fns, errors.Join(errs...)
}

func loadFile(path string, opts Options) ([]ScriptFunction, []UnwiredFunction, []error) {
	src, err := os.ReadFile(path)
	if err != nil {
		var perr *fs.PathError
		if errors.As(err, &perr) {
			err = perr.Err
		}
		return nil, nil, []error{&Error{File: path, Message: "cannot read the script: " + err.Error(), Err: err}}
	}
	fns, errs := loadSource(path, src, opts)
	var unwired []UnwiredFunction
	if len(errs) == 0 || len(fns) > 0 {
		unwired = findUnwired(path, src, opts, fns)
	}
	return fns, unwired, errs
}

// loadSource loads a script from src, named file; opts has its defaults.
func loadSource(file string, src []byte, opts Options) ([]ScriptFunction, []error) {
	proto, err := compile(file, src)
	if err != nil {
		return nil, []error{err}
	}
	vm, err := newVMState(file, &opts)
	if err != nil {
		return nil, []error{err}
	}
	defer vm.close()
	ctx, cancel := context.WithTimeout(context.Background(), opts.LoadTimeout)
	defer cancel()
	l := &loader{vm: vm, file: file, opts: opts, proto: proto, ctx: ctx}
	return l.load()
}

type loader struct {
	vm    *vmState
	file  string
	opts  Options
	proto *lua.FunctionProto
	ctx   context.Context

	fns  []ScriptFunction
	errs []error
}

func (l *loader) problem(line int, format string, args ...any) {
	l.errs = append(l.errs, &Error{File: l.file, Line: line, Message: fmt.Sprintf(format, args...)})
}

// fail records the error of a protected call in what, saying so when
// loading ran out of time; prefix, when not empty, introduces the script's
// message.
func (l *loader) fail(err error, what, prefix string) {
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{File: l.file, Message: err.Error()}
	}
	e = &Error{File: e.File, Line: e.Line, Message: e.Message}
	switch {
	case l.ctx.Err() != nil:
		e.Message = fmt.Sprintf("%s did not finish within the load timeout of %v", what, l.opts.LoadTimeout)
		e.Err = l.ctx.Err()
	case prefix != "":
		e.Message = prefix + ": " + e.Message
	}
	l.errs = append(l.errs, e)
}

func (l *loader) load() ([]ScriptFunction, []error) {
	vm, L := l.vm, l.vm.L
	env := vm.begin(l.ctx, "")
	defer vm.end()
	if err := vm.prepare(l.ctx, env, nil); err != nil {
		return nil, []error{err}
	}
	if err := vm.runChunk(l.proto, env); err != nil {
		l.fail(err, "the top-level code", "")
		return nil, l.errs
	}

	reg, ok := env.RawGetString("register").(*lua.LFunction)
	if !ok {
		l.problem(0, "no register() function")
		return nil, l.errs
	}
	regLine := lineDefined(reg)
	L.Push(reg)
	if err := vm.pcall(0, 1); err != nil {
		l.fail(err, "register()", "register()")
		return nil, l.errs
	}
	ret := L.Get(-1)
	L.Pop(1)
	list, ok := ret.(*lua.LTable)
	if !ok {
		l.problem(regLine, "register() returned a %s, want a list of entry-point names", ret.Type())
		return nil, l.errs
	}
	names, err := readNames(list)
	if err != nil {
		l.problem(regLine, "register() returned %v", err)
		return nil, l.errs
	}

	queued := map[string]bool{}
	var queue []string
	enqueue := func(names []string) {
		for _, n := range names {
			if !queued[n] {
				queued[n] = true
				queue = append(queue, n)
			}
		}
	}
	enqueue(names)
	refs := map[string]int{} // ref -> line of its entry point
	for i := 0; i < len(queue) && l.ctx.Err() == nil; i++ {
		name := queue[i]
		entry, ok := env.RawGetString(name).(*lua.LFunction)
		if !ok {
			l.problem(regLine, "entry point %q is a %s, not a function", name, env.RawGetString(name).Type())
			continue
		}
		line := lineDefined(entry)
		L.Push(entry)
		L.Push(lua.LNil)
		if err := vm.pcall(1, 1); err != nil {
			l.fail(err, "the description call of "+name, "entry point "+name+" called with nil")
			if vm.dirty {
				break // the state is unfit for the other calls
			}
			continue
		}
		ret := L.Get(-1)
		L.Pop(1)
		desc, ok := ret.(*lua.LTable)
		if !ok {
			l.problem(line, "entry point %s returned a %s when called with nil, want its description table", name, ret.Type())
			continue
		}
		api, err := descString(desc, "api")
		if err != nil {
			l.problem(line, "entry point %s: %v", name, err)
			continue
		}
		switch strings.ToUpper(api) {
		case "", "TRIGGER":
		case "CONFIG_PROVIDER":
			fns, ok := desc.RawGetString("triggerFunctions").(*lua.LTable)
			if !ok {
				if v := desc.RawGetString("triggerFunctions"); v != lua.LNil {
					l.problem(line, "entry point %s: triggerFunctions is a %s, want a list of entry-point names", name, v.Type())
				}
				continue
			}
			names, err := readNames(fns)
			if err != nil {
				l.problem(line, "entry point %s: triggerFunctions is %v", name, err)
				continue
			}
			enqueue(names)
			continue
		default:
			l.opts.Logger.Debug("skipping an entry point that is not a trigger", "file", l.file, "entry", name, "api", api)
			continue
		}
		sf, err := describe(desc)
		if err != nil {
			l.problem(line, "entry point %s: %v", name, err)
			continue
		}
		if other, dup := refs[sf.Ref]; dup {
			l.problem(line, "entry point %s: ref %q is already used by the entry point at line %d", name, sf.Ref, other)
			continue
		}
		refs[sf.Ref] = line
		sf.Entry, sf.File, sf.Line = name, l.file, line
		sf.Handler = newHandler(l.file, name, sf.Ref, line, l.proto, l.opts)
		l.fns = append(l.fns, sf)
	}
	return l.fns, l.errs
}

func lineDefined(fn *lua.LFunction) int {
	if fn.Proto == nil {
		return 0
	}
	return fn.Proto.LineDefined
}

// readNames reads a list of names: a sequence of strings.
func readNames(t *lua.LTable) ([]string, error) {
	var names []string
	n := 0
	for k, v := t.Next(lua.LNil); k != lua.LNil; k, v = t.Next(k) {
		n++
		s, ok := v.(lua.LString)
		if !ok {
			return nil, fmt.Errorf("a list whose item %s is a %s, want a name", k.String(), v.Type())
		}
		names = append(names, string(s))
	}
	if n != t.Len() {
		return nil, errors.New("a table that is not a list")
	}
	return names, nil
}

func descString(d *lua.LTable, key string) (string, error) {
	switch v := d.RawGetString(key).(type) {
	case *lua.LNilType:
		return "", nil
	case lua.LString:
		return string(v), nil
	default:
		return "", fmt.Errorf("%s is a %s (%s), want a string", key, v.Type(), v.String())
	}
}

func descInt(d *lua.LTable, key string) (int, error) {
	switch v := d.RawGetString(key).(type) {
	case *lua.LNilType:
		return 0, nil
	case lua.LNumber:
		f := float64(v)
		if f != math.Trunc(f) || math.Abs(f) > 1<<53 {
			return 0, fmt.Errorf("%s is %v, want an integer", key, f)
		}
		return int(f), nil
	case lua.LString:
		return 0, fmt.Errorf("%s is a string (%q), want an integer", key, string(v))
	default:
		return 0, fmt.Errorf("%s is a %s, want an integer", key, v.Type())
	}
}

// describe reads an entry point's description table. Fields it does not
// know (includeCustomerTags, ...) are ignored.
func describe(d *lua.LTable) (ScriptFunction, error) {
	var sf ScriptFunction
	var err error
	for _, f := range []struct {
		key string
		dst *string
	}{
		{"ref", &sf.Ref}, {"name", &sf.Name}, {"description", &sf.Description},
		{"triggerType", &sf.TriggerType}, {"api", &sf.API},
	} {
		if *f.dst, err = descString(d, f.key); err != nil {
			return ScriptFunction{}, err
		}
	}
	if sf.Ref == "" {
		return ScriptFunction{}, errors.New("the description has no ref")
	}
	if sf.TriggerType == "" {
		return ScriptFunction{}, errors.New("the description has no triggerType")
	}
	if sf.API == "" {
		sf.API = "TRIGGER"
	}
	if sf.Priority, err = descInt(d, "priority"); err != nil {
		return ScriptFunction{}, err
	}
	if sf.Version, err = descInt(d, "version"); err != nil {
		return ScriptFunction{}, err
	}
	switch v := d.RawGetString("triggerOptions").(type) {
	case *lua.LNilType:
		if strings.EqualFold(sf.TriggerType, "SCHEDULED") {
			sf.TriggerOptions = []string{"ANY"}
		}
	case *lua.LTable:
		opts, err := readNames(v)
		if err != nil {
			return ScriptFunction{}, fmt.Errorf("triggerOptions is %v", err)
		}
		sf.TriggerOptions = opts
	default:
		return ScriptFunction{}, fmt.Errorf("triggerOptions is a %s (%s), want a list of strings such as {%q}", v.Type(), v.String(), v.String())
	}
	if v := d.RawGetString("schedule"); v != lua.LNil {
		if sf.Schedule, sf.Owner, err = readSchedule(v); err != nil {
			return ScriptFunction{}, err
		}
	}
	return sf, nil
}

// readSchedule normalises an FDL schedule table such as
// {start = {hour = 22, minute = 0}, frequency = {hours = 24}}, and reads
// the billing entity and customer its ticks belong to (beUUID,
// customerUUID).
func readSchedule(v lua.LValue) (map[string]map[string]int, schedule.Owner, error) {
	var owner schedule.Owner
	t, ok := v.(*lua.LTable)
	if !ok {
		return nil, owner, fmt.Errorf("schedule is a %s, want a table", v.Type())
	}
	out := map[string]map[string]int{}
	seen := map[string]bool{}
	for k, val := t.Next(lua.LNil); k != lua.LNil; k, val = t.Next(k) {
		ks, ok := k.(lua.LString)
		part := strings.ToLower(string(ks))
		if ok && (part == "beuuid" || part == "customeruuid") {
			if seen[part] {
				return nil, owner, fmt.Errorf("schedule has %s twice", ks)
			}
			seen[part] = true
			id, ok := val.(lua.LString)
			if !ok || id == "" {
				return nil, owner, fmt.Errorf("schedule.%s is %s, want a UUID string (or no %s)", ks, uuidValue(val), ks)
			}
			if part == "beuuid" {
				owner.BEUUID = string(id)
			} else {
				owner.CustomerUUID = string(id)
			}
			continue
		}
		if !ok || (part != "start" && part != "frequency") {
			return nil, owner, fmt.Errorf("schedule has the key %s, want start, frequency, beUUID or customerUUID", k.String())
		}
		if _, dup := out[part]; dup {
			return nil, owner, fmt.Errorf("schedule has %s twice", part)
		}
		units, err := readUnits(part, val)
		if err != nil {
			return nil, owner, err
		}
		out[part] = units
	}
	if err := owner.Check(); err != nil {
		return nil, owner, err // "schedule: invalid: ..."
	}
	return out, owner, nil
}

// uuidValue names a value given as a UUID in an error: an empty string
// or its type.
func uuidValue(v lua.LValue) string {
	if v == lua.LString("") {
		return "an empty string"
	}
	return "a " + v.Type().String()
}

// readUnits reads the table of a schedule's part (start or frequency),
// such as {MINUTE = 5}.
func readUnits(part string, val lua.LValue) (map[string]int, error) {
	inner, ok := val.(*lua.LTable)
	if !ok {
		return nil, fmt.Errorf("schedule.%s is a %s, want a table such as {MINUTE = 5}", part, val.Type())
	}
	units := map[string]int{}
	for uk, uv := inner.Next(lua.LNil); uk != lua.LNil; uk, uv = inner.Next(uk) {
		us, ok := uk.(lua.LString)
		unit, known := schedule.Unit(string(us))
		if !ok || !known {
			return nil, fmt.Errorf("schedule.%s has the key %s, want SECOND, MINUTE, HOUR, DAY or WEEK", part, uk.String())
		}
		n, ok := uv.(lua.LNumber)
		if !ok || float64(n) != math.Trunc(float64(n)) || n < 0 || n > math.MaxInt32 {
			return nil, fmt.Errorf("schedule.%s.%s is %s, want a whole number", part, string(us), uv.String())
		}
		if _, dup := units[unit]; dup {
			return nil, fmt.Errorf("schedule.%s has %s twice", part, unit)
		}
		units[unit] = int(n)
	}
	return units, nil
}

// findUnwired finds the global functions of a script that describe a trigger
// when called with nil but are not among fns (not wired). It runs the script
// again in a fresh sandbox, within the load timeout; a function that fails
// when called with nil is not a description and is passed over.
func findUnwired(file string, src []byte, opts Options, fns []ScriptFunction) []UnwiredFunction {
	proto, err := compile(file, src)
	if err != nil {
		return nil
	}
	vm, err := newVMState(file, &opts)
	if err != nil {
		return nil
	}
	defer vm.close()
	ctx, cancel := context.WithTimeout(context.Background(), opts.LoadTimeout)
	defer cancel()
	env := vm.begin(ctx, "")
	defer vm.end()
	if vm.prepare(ctx, env, nil) != nil || vm.runChunk(proto, env) != nil {
		return nil
	}
	wired := map[string]bool{"register": true, "init": true}
	for _, f := range fns {
		wired[f.Entry] = true
	}
	var names []string
	env.ForEach(func(k, v lua.LValue) {
		name, ok := k.(lua.LString)
		if _, isFn := v.(*lua.LFunction); ok && isFn && !wired[string(name)] {
			names = append(names, string(name))
		}
	})
	slices.Sort(names)
	var out []UnwiredFunction
	L := vm.L
	for _, name := range names {
		if ctx.Err() != nil || vm.dirty {
			break
		}
		fn := env.RawGetString(name).(*lua.LFunction)
		L.Push(fn)
		L.Push(lua.LNil)
		if err := vm.pcall(1, 1); err != nil {
			continue
		}
		ret := L.Get(-1)
		L.Pop(1)
		desc, ok := ret.(*lua.LTable)
		if !ok {
			continue
		}
		typ, err := descString(desc, "triggerType")
		if err != nil || typ == "" {
			continue
		}
		if api, _ := descString(desc, "api"); api != "" && !strings.EqualFold(api, "TRIGGER") {
			continue
		}
		ref, _ := descString(desc, "ref")
		out = append(out, UnwiredFunction{
			File: file, Line: lineDefined(fn), Entry: name, Ref: ref, TriggerType: typ,
			Reason: "described but not listed by register() or a CONFIG_PROVIDER, so not registered",
		})
	}
	return out
}
