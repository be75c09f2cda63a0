package lua

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"runtime/metrics"
	"strings"

	lua "github.com/yuin/gopher-lua"

	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
)

// The sandbox. A script sees only what these lists name; everything else of
// gopher-lua (io, os.execute/getenv/exit, package/require, debug, coroutine,
// channel, dofile, loadfile, load, loadstring, getfenv, setfenv,
// collectgarbage, newproxy, string.dump) is left out.
//
//   - coroutine is left out: each coroutine gets a value stack of its own,
//     so a loop of coroutine.create allocates far faster than a deadline
//     can stop it, and no trigger script needs one.
//   - load and loadstring are left out rather than limited to text: a chunk
//     they compiled would run in the state's global table, not the call's.
//   - os keeps time, clock, date and difftime: pure functions of the clock.
//   - pcall and xpcall cannot catch the end of the call's context (nor the
//     call passing its memory limit), and build no traceback; print
//     and trigger.log go to the call's logger; setmetatable takes tables
//     only (gopher-lua would let a script give every number or function of
//     the state a metatable that outlives the call); math.random uses the
//     process's generator and math.randomseed does nothing.
//   - string.rep, string.format, string.gsub, table.concat and the ..
//     operator refuse to build strings larger than MaxStringBytes.
//   - string.find, match, gmatch and gsub match patterns with a matcher of
//     our own (pattern.go) that stops when the call's context ends.
//   - A call holds at most about Options.MaxMemory (memory.go).
//   - next, pairs, rawget, rawset, getmetatable and setmetatable decode the
//     fields of p still pending first (lazy.go), so that they see p whole.
//   - table.unpack, table.pack, bit32, rawlen, math.log's base, string.rep's
//     separator and xpcall's arguments are there for scripts written for
//     Lua 5.2, which the orchestrator's FDL runtime ran (lua52.go).
//
// What the sandbox cannot bound: a table indexed by a large integer
// (t[5e7] = true) gets a dense array part up to that index in one step (up
// to lua.MaxArrayIndex, 64M slots, 1 GiB), before the memory limit sees it:
// keep numeric ids as string keys.
var (
	baseNames = []string{
		"assert", "error", "getmetatable", "ipairs", "next", "pairs", "rawequal", "rawget", "rawset",
		"select", "tonumber", "tostring", "type", "unpack", "_VERSION",
	}
	stringNames = []string{"byte", "char", "len", "lower", "reverse", "sub", "upper"}
	tableNames  = []string{"getn", "insert", "maxn", "remove", "sort"}
	mathNames   = []string{
		"abs", "acos", "asin", "atan", "atan2", "ceil", "cos", "cosh", "deg", "exp", "floor", "fmod", "frexp",
		"huge", "ldexp", "log", "log10", "max", "min", "mod", "modf", "pi", "pow", "rad", "sin", "sinh",
		"sqrt", "tan", "tanh",
	}
	osNames = []string{"clock", "date", "difftime", "time"}
)

// vmState is one Lua state with the prototype of the environment its calls
// get. It serves one call at a time.
type vmState struct {
	L     *lua.LState
	file  string
	opts  *Options
	env   envProto
	strMT *lua.LTable // the metatable of strings; __index is set per call
	codec jsonCodec

	// The current call; zero between calls. event is nil while a script
	// loads.
	ctx   context.Context
	ref   string
	event *event.Event
	// callCtx is the context the state runs the call under (L.Context()):
	// ctx, ended early when the call passes its memory limit.
	callCtx *callContext
	// callEnv is the call's global table.
	callEnv *lua.LTable
	// callLibs are the call's proxies of the prototype's libraries, by
	// index in env.libs; nil where the call has not used one.
	callLibs []*lua.LTable
	// allocs reads the process's allocation counter for callCtx.
	allocs []metrics.Sample
	// sizer measures what a call holds; its maps are kept between measures.
	sizer memSizer
	// errLine is the line of the script where the last top-level error
	// was raised, 0 when unknown.
	errLine int
	// dirty is set when a call left the state unfit for reuse: it is
	// closed after the call.
	dirty bool
	// onError is the message handler of top-level protected calls.
	onError *lua.LFunction
	// concatFn is the .. operator (see compile).
	concatFn *lua.LFunction
	// trampoline runs the protected calls of pcall and xpcall (see bounce).
	trampoline *lua.LFunction
	// prepares are what the extensions do at the start of every call.
	prepares []namedPrepare
	// before and after are kept for the encodings of the next call's
	// input (see call).
	before, after []byte
	// lazy is the call's p while fields of it are pending (lazy.go), with
	// lazyMT its metatable then; fieldHooks are called with each field
	// decoded.
	lazy       lazyEvent
	lazyMT     *lua.LTable
	fieldHooks []func(lua.LValue)
}

type namedPrepare struct {
	name string
	fn   prepareFunc
}

func newVMState(file string, opts *Options) (*vmState, error) {
	L := lua.NewState(lua.Options{
		SkipOpenLibs:     true,
		CallStackSize:    opts.CallStackSize,
		RegistrySize:     opts.RegistrySize,
		RegistryMaxSize:  opts.RegistryMaxSize,
		RegistryGrowStep: registryGrowStep,
	})
	vm := &vmState{L: L, file: file, opts: opts, allocs: []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}}
	if err := vm.init(); err != nil {
		L.Close()
		return nil, err
	}
	return vm, nil
}

func (vm *vmState) close() { vm.L.Close() }

func (vm *vmState) init() error {
	L := vm.L
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
		{lua.StringLibName, lua.OpenString},
		{lua.MathLibName, lua.OpenMath},
		{lua.OsLibName, lua.OpenOs},
	} {
		L.Push(L.NewFunction(lib.open))
		L.Push(lua.LString(lib.name))
		if err := L.PCall(1, 0, nil); err != nil {
			return fmt.Errorf("handlers: lua: open %q: %w", lib.name, err)
		}
	}
	opened := L.G.Global
	lib := func(name string) *lua.LTable { return opened.RawGetString(name).(*lua.LTable) }
	gfn := func(t *lua.LTable, name string) lua.LGFunction {
		return t.RawGetString(name).(*lua.LFunction).GFunction
	}
	copyNames := func(dst, src *lua.LTable, names []string) {
		for _, n := range names {
			if v := src.RawGetString(n); v != lua.LNil {
				dst.RawSetString(n, v)
			}
		}
	}

	null := L.NewUserData()
	null.Value = nullValue{}
	nullMT := L.NewTable()
	nullMT.RawSetString("__tostring", L.NewFunction(func(L *lua.LState) int {
		L.Push(lua.LString("null"))
		return 1
	}))
	nullMT.RawSetString("__metatable", lua.LFalse)
	null.Metatable = nullMT
	vm.codec = jsonCodec{L: L, null: null, maxBytes: vm.opts.MaxStringBytes, lazy: &vm.lazy}
	vm.lazy.vm = vm
	vm.lazyMT = vm.newLazyMT()

	g := L.NewTable()
	copyNames(g, opened, baseNames)
	vm.trampoline = L.NewFunction(vm.bounce)
	g.RawSetString("pcall", L.NewFunction(vm.pcallLua))
	g.RawSetString("xpcall", L.NewFunction(vm.xpcall))
	vm.onError = L.NewFunction(vm.handleError)
	vm.concatFn = L.NewFunction(vm.concat)
	g.RawSetString("print", L.NewFunction(vm.print))
	setmt := gfn(opened, "setmetatable")
	g.RawSetString("setmetatable", L.NewFunction(func(L *lua.LState) int {
		L.CheckTable(1)
		vm.lazy.settleArg(L, 1)
		return setmt(L)
	}))
	// What reads a table's keys raw sees p's pending fields decoded.
	for _, name := range []string{"next", "rawget", "rawset", "getmetatable"} {
		fn := gfn(opened, name)
		g.RawSetString(name, L.NewFunction(func(L *lua.LState) int {
			vm.lazy.settleArg(L, 1)
			return fn(L)
		}))
	}
	next := g.RawGetString("next")
	g.RawSetString("pairs", L.NewFunction(func(L *lua.LState) int {
		t := L.CheckTable(1)
		vm.lazy.settleArg(L, 1)
		L.Push(next)
		L.Push(t)
		L.Push(lua.LNil)
		return 3
	}))

	str := L.NewTable()
	copyNames(str, lib(lua.StringLibName), stringNames)
	str.RawSetString("format", L.NewFunction(vm.strFormat(gfn(lib(lua.StringLibName), "format"))))
	str.RawSetString("rep", L.NewFunction(vm.strRep))
	str.RawSetString("find", L.NewFunction(vm.strFind))
	str.RawSetString("match", L.NewFunction(vm.strMatch))
	str.RawSetString("gsub", L.NewFunction(vm.strGsub))
	str.RawSetString("gmatch", L.NewFunction(vm.strGmatch))
	g.RawSetString("string", str)

	tab := L.NewTable()
	copyNames(tab, lib(lua.TabLibName), tableNames)
	tab.RawSetString("concat", L.NewFunction(vm.tabConcat(gfn(lib(lua.TabLibName), "concat"))))
	g.RawSetString("table", tab)

	mth := L.NewTable()
	copyNames(mth, lib(lua.MathLibName), mathNames)
	mth.RawSetString("random", L.NewFunction(random))
	mth.RawSetString("randomseed", L.NewFunction(func(*lua.LState) int { return 0 }))
	g.RawSetString("math", mth)
	openLua52(L, g, tab, mth)

	osl := L.NewTable()
	copyNames(osl, lib(lua.OsLibName), osNames)
	g.RawSetString("os", osl)

	g.RawSetString("trigger", vm.triggerTable())

	for _, ext := range vm.opts.extensions {
		if ext.open == nil {
			continue
		}
		fn, err := ext.open(vm, g)
		if err != nil {
			return fmt.Errorf("handlers: lua extension %s: %w", ext.name, err)
		}
		if fn != nil {
			vm.prepares = append(vm.prepares, namedPrepare{ext.name, fn})
		}
	}

	// Strings index the call's string table (set by begin), through a
	// metatable scripts can neither read nor replace.
	vm.strMT = L.NewTable()
	vm.strMT.RawSetString("__metatable", lua.LFalse)
	L.SetMetatable(lua.LString(""), vm.strMT)

	// Nothing of the state's own global table is reachable by scripts;
	// empty it anyway.
	for k, _ := opened.Next(lua.LNil); k != lua.LNil; k, _ = opened.Next(k) {
		opened.RawSet(k, lua.LNil)
	}
	vm.env = vm.snapshot(g)
	return nil
}

// envProto is the prototype of a call's global table. Each call gets a
// global table of its own and, for every table of the prototype (string,
// math, trigger, trigger.json, ...) the call uses, a fresh proxy. What a
// script sets on them stays in the call. Lookups of what the call has not
// set fall through, by a metatable the script can neither read nor
// replace, to a table shared by all calls on the state that holds the
// prototype's other values: functions, numbers, strings and trigger.null,
// none of which a script can change. A library's proxy is made when the
// call first looks the library up (the shared table's own metatable does
// that, see lazyLib), except string's, which strings index. So a call's
// environment costs two tables plus one per library it uses, rather than
// a copy of every library.
//
// The price is in corner cases: pairs(_G) or pairs(string) lists only what
// the call set and the libraries it used so far, rawget(_G, "math") is nil
// until the call uses math, and assigning nil to a library or to a library
// function does not hide it; setmetatable(_G, ...) fails.
type envProto struct {
	global protoLib
	libs   []protoLib
	// str is the index in libs of the string library, -1 if none.
	str int
}

type protoLib struct {
	mt     *lua.LTable // {__index = the shared values, __metatable = false}
	nested []protoNested
}

// protoNested is a field that holds another of the prototype's tables.
type protoNested struct {
	key string
	lib int // index in libs
}

// globalLib is the parent index of lazyLib for the global table.
const globalLib = -1

// snapshot makes the prototype of the global table g. Metatables of g's
// tables are not kept.
func (vm *vmState) snapshot(g *lua.LTable) envProto {
	L := vm.L
	p := envProto{str: -1}
	index := map[*lua.LTable]int{}
	var lib func(t *lua.LTable) int
	split := func(t *lua.LTable, self int) protoLib {
		shared := L.NewTable()
		var nested []protoNested
		for k, v := t.Next(lua.LNil); k != lua.LNil; k, v = t.Next(k) {
			ks, ok := k.(lua.LString)
			if !ok {
				continue
			}
			if vt, ok := v.(*lua.LTable); ok {
				nested = append(nested, protoNested{key: string(ks), lib: lib(vt)})
				continue
			}
			shared.RawSetString(string(ks), v)
		}
		if len(nested) > 0 {
			// What the shared table lacks may be a library: made for the
			// call on its first lookup.
			lazy := L.NewTable()
			lazy.RawSetString("__index", L.NewFunction(vm.lazyLib(self, nested)))
			shared.Metatable = lazy
		}
		mt := L.NewTable()
		mt.RawSetString("__index", shared)
		mt.RawSetString("__metatable", lua.LFalse)
		return protoLib{mt: mt, nested: nested}
	}
	lib = func(t *lua.LTable) int {
		if i, ok := index[t]; ok {
			return i
		}
		i := len(p.libs)
		index[t] = i
		p.libs = append(p.libs, protoLib{})
		p.libs[i] = split(t, i)
		return i
	}
	p.global = split(g, globalLib)
	for _, n := range p.global.nested {
		if n.key == "string" {
			p.str = n.lib
		}
	}
	return p
}

// lazyLib returns the __index of the shared table of the prototype's table
// parent (globalLib: the global table), whose libraries are nested: the
// library named by the key, as the call's proxy of it, now also set in the
// call's proxy of parent; nil for any other key.
func (vm *vmState) lazyLib(parent int, nested []protoNested) lua.LGFunction {
	return func(L *lua.LState) int {
		key, ok := L.Get(2).(lua.LString)
		if !ok || vm.callEnv == nil {
			L.Push(lua.LNil)
			return 1
		}
		for _, n := range nested {
			if n.key != string(key) {
				continue
			}
			t := vm.callLib(n.lib)
			owner := vm.callEnv
			if parent != globalLib {
				owner = vm.callLib(parent)
			}
			owner.RawSetString(n.key, t)
			L.Push(t)
			return 1
		}
		L.Push(lua.LNil)
		return 1
	}
}

// callLib returns the call's proxy of the prototype's library i, making it
// on first use.
func (vm *vmState) callLib(i int) *lua.LTable {
	if t := vm.callLibs[i]; t != nil {
		return t
	}
	l := &vm.env.libs[i]
	t := vm.L.CreateTable(0, len(l.nested))
	t.Metatable = l.mt
	vm.callLibs[i] = t
	return t
}

// begin readies the state for a call under ctx and returns the call's fresh
// global table.
func (vm *vmState) begin(ctx context.Context, ref string) *lua.LTable {
	vm.ctx, vm.ref, vm.dirty = ctx, ref, false
	vm.codec.reset()
	vm.callCtx = newCallContext(ctx, vm)
	vm.L.SetContext(vm.callCtx)
	if len(vm.callLibs) != len(vm.env.libs) {
		vm.callLibs = make([]*lua.LTable, len(vm.env.libs))
	}
	env := vm.L.CreateTable(0, 8)
	env.Metatable = vm.env.global.mt
	vm.callEnv = env
	env.RawSetString("_G", env)
	env.RawSetString(concatGlobal, vm.concatFn)
	if vm.env.str >= 0 {
		str := vm.callLib(vm.env.str)
		env.RawSetString("string", str)
		vm.strMT.RawSetString("__index", str)
	}
	return env
}

// prepare runs what the extensions do at the start of a call.
func (vm *vmState) prepare(ctx context.Context, env, p *lua.LTable) error {
	for _, x := range vm.prepares {
		if err := x.fn(ctx, env, p); err != nil {
			return fmt.Errorf("handlers: lua extension %s: %w", x.name, err)
		}
	}
	return nil
}

// end drops everything of the call the state still holds.
func (vm *vmState) end() {
	vm.L.SetTop(0)
	vm.L.RemoveContext()
	vm.strMT.RawSetString("__index", lua.LNil)
	vm.codec.reset()
	vm.ctx, vm.ref, vm.event, vm.callCtx, vm.callEnv = nil, "", nil, nil, nil
	vm.lazy.reset()
	clear(vm.callLibs)
	vm.sizer = memSizer{} // its maps grew with the call's data
}

// runChunk runs the script's top-level code in env.
func (vm *vmState) runChunk(proto *lua.FunctionProto, env *lua.LTable) error {
	fn := vm.L.NewFunctionFromProto(proto)
	fn.Env = env
	vm.L.Push(fn)
	return vm.pcall(0, 0)
}

// pcall calls the function below nargs arguments on the stack, protected,
// and returns a *Error. It goes through a message handler, which notes
// where the error was raised: without one gopher-lua builds a traceback,
// one line per tail call, which after a runaway tail-recursive loop takes
// longer than the loop ran. (With one, gopher-lua leaves the upvalues of
// the failed frames open. Only closures of the failed call, which nothing
// can reach any more, share them, and the next call that needs an upvalue
// at the same stack slot reuses one as it would a fresh one, so the state
// stays fit for reuse.)
func (vm *vmState) pcall(nargs, nret int) error {
	vm.errLine = 0
	err := vm.protected(nargs, nret)
	if err == nil {
		return nil
	}
	e := errorFrom(vm.file, err, &vm.codec)
	if e.Line == 0 {
		e.Line = vm.errLine
	}
	if cerr := vm.callCtx.Err(); cerr != nil {
		return ctxError(e, cerr)
	}
	return e
}

// protected is L.PCall with the message handler. gopher-lua pushes the
// handler without room to spare, so a call that failed with a registry
// overflow makes PCall itself raise, before it has reset the state; that
// error is returned too, and the state marked dirty.
func (vm *vmState) protected(nargs, nret int) (err error) {
	defer func() {
		if v := recover(); v != nil {
			aerr, ok := v.(*lua.ApiError)
			if !ok {
				panic(v)
			}
			vm.dirty = true
			err = aerr
		}
	}()
	return vm.L.PCall(nargs, nret, vm.onError)
}

// handleError is the message handler of pcall: it notes the line of the
// innermost frame of the script and returns the error value as it is.
func (vm *vmState) handleError(L *lua.LState) int {
	for level := 1; level <= 32; level++ {
		dbg, ok := L.GetStack(level)
		if !ok {
			break
		}
		if _, err := L.GetInfo("Sl", dbg, lua.LNil); err != nil {
			continue
		}
		if dbg.Source == vm.file && dbg.CurrentLine > 0 {
			vm.errLine = dbg.CurrentLine
			break
		}
	}
	L.Push(L.Get(1))
	return 1
}

// beforeKeep is the largest buffer of a call's input a state keeps for the
// next call (before and after).
const beforeKeep = 64 << 10

// call runs one call of h's entry point for ev.
func (vm *vmState) call(ctx context.Context, h *Handler, ev *event.Event) (handlers.Result, error) {
	L := vm.L
	env := vm.begin(ctx, h.ref)
	defer vm.end()
	vm.event = ev

	p, err := vm.eventTable(ev)
	if err != nil {
		return handlers.Result{}, err
	}
	if err := vm.prepare(ctx, env, p); err != nil {
		return handlers.Result{}, err
	}

	if err := vm.runChunk(h.proto, env); err != nil {
		return handlers.Result{}, err
	}
	entry, ok := env.RawGetString(h.entry).(*lua.LFunction)
	if !ok {
		return handlers.Result{}, &Error{File: h.file, Line: h.line, Message: fmt.Sprintf("entry point %s is not a function any more", h.entry)}
	}
	L.Push(entry)
	L.Push(p)
	if err := vm.pcall(1, 1); err != nil {
		return handlers.Result{}, err
	}
	ret := L.Get(-1)
	res, err := vm.result(h, ret)
	if err == nil {
		err = vm.lazy.err
	}
	if err != nil {
		return handlers.Result{}, err
	}

	// A result's input is the new input; nil or trigger.null there is none
	// (as JSON null is in a result document), and p.input counts. A p.input
	// still pending is the event's, unchanged.
	holder := p
	if t, ok := ret.(*lua.LTable); ok {
		if in := t.RawGetString("input"); in != lua.LNil && in != vm.codec.null {
			holder = t
		}
	}
	if holder.RawGetString("input") != lua.LNil {
		after, err := vm.codec.appendAt(vm.after[:0], holder, lua.LString("input"))
		if err != nil {
			return handlers.Result{}, &Error{File: h.file, Line: h.line, Message: "modified input: " + err.Error(), Err: handlers.ErrBadResult}
		}
		if cap(after) <= beforeKeep {
			vm.after = after
		}
		// before is the event's input as the codec writes it; none when
		// the event had none.
		var before []byte
		if len(ev.Input) > 0 {
			if before, err = vm.inputBefore(ev.Input); err != nil {
				return handlers.Result{}, err
			}
		}
		if !bytes.Equal(after, before) {
			res.Input = bytes.Clone(after)
		}
	}
	return res, nil
}

// eventTable returns p, the event as FDL scripts see it.
func (vm *vmState) eventTable(ev *event.Event) (*lua.LTable, error) {
	p := vm.L.CreateTable(0, 8+len(ev.Extra))
	// The keys are constants where RawSetString (inlined) boxes them: no
	// allocation for the key.
	if ev.ID != "" {
		p.RawSetString("id", lua.LString(ev.ID))
	}
	if ev.TriggerType != "" {
		p.RawSetString("triggerType", lua.LString(ev.TriggerType))
	}
	if ev.TriggerOption != "" {
		p.RawSetString("triggerOption", lua.LString(ev.TriggerOption))
	}
	if ev.BEUUID != "" {
		p.RawSetString("beUUID", lua.LString(ev.BEUUID))
	}
	if ev.TimeStamp != 0 {
		p.RawSetString("timeStamp", lua.LNumber(ev.TimeStamp))
	}
	if ev.Deadline != 0 {
		p.RawSetString("deadline", lua.LNumber(ev.Deadline))
	}
	// The documents are decoded when the script reads them (lazy.go).
	if len(ev.Customer) > 0 {
		vm.lazy.pend(p, lazyCustomer, ev.Customer)
	}
	if len(ev.User) > 0 {
		vm.lazy.pend(p, lazyUser, ev.User)
	}
	if len(ev.Input) > 0 {
		vm.lazy.pend(p, lazyInput, ev.Input)
	}
	for k, raw := range ev.Extra {
		if p.RawGetString(k) != lua.LNil || len(raw) == 0 {
			continue
		}
		if err := vm.codec.decodeInto(p, lua.LString(k), raw); err != nil {
			return nil, fmt.Errorf("handlers: lua: event %s: %w", k, err)
		}
	}
	return p, nil
}

// decodeField decodes the event's field k, to be stored as p[k] by the
// caller (with k a constant there, which its key then costs no
// allocation).
func (vm *vmState) decodeField(p *lua.LTable, k string, data []byte) (lua.LValue, error) {
	v, text, err := vm.codec.decode(data)
	if err != nil {
		return nil, fmt.Errorf("handlers: lua: event %s: %w", k, err)
	}
	if text != "" {
		vm.codec.keepText(p, lua.LString(k), v, text)
	}
	return v, nil
}

// result maps what the entry point returned to a Result: nil, or a plain
// table read by ReadResult, the reader of every kind. A table with a
// metatable (a proxy, an FDL object) is refused: its keys and values are not
// all in the table, so what it says cannot be read without running it.
func (vm *vmState) result(h *Handler, ret lua.LValue) (handlers.Result, error) {
	bad := func(format string, args ...any) error {
		return &Error{File: h.file, Line: h.line, Message: fmt.Sprintf(format, args...), Err: handlers.ErrBadResult}
	}
	switch ret := ret.(type) {
	case *lua.LNilType:
		return handlers.Result{ExitState: handlers.Continue}, nil
	case *lua.LTable:
		if err := vm.lazy.settle(ret); err != nil {
			return handlers.Result{}, err
		}
		if ret.Metatable != lua.LNil {
			return handlers.Result{}, bad("the entry point returned a table with a metatable, want a plain table")
		}
		fields := make(map[string]handlers.ResultValue)
		var keyErr error
		ret.ForEach(func(k, v lua.LValue) {
			s, ok := k.(lua.LString)
			if !ok {
				if keyErr == nil {
					keyErr = bad("the result has a %s key (%s), want exitState, errorCode, errorMessage or input", k.Type(), lua.LVAsString(k))
				}
				return
			}
			fields[string(s)] = vm.ResultValue(v)
		})
		if keyErr != nil {
			return handlers.Result{}, keyErr
		}
		r, err := handlers.ReadResult(fields)
		if err != nil {
			var re *handlers.ResultError
			if errors.As(err, &re) {
				return handlers.Result{}, bad("%s", re.Reason)
			}
			return handlers.Result{}, bad("%v", err)
		}
		return r, nil
	}
	return handlers.Result{}, bad("the entry point returned a %s, want a table or nil", ret.Type())
}

// ResultValue describes v, a value of a result table, for ReadResult.
func (vm *vmState) ResultValue(v lua.LValue) handlers.ResultValue {
	switch v := v.(type) {
	case lua.LString:
		return handlers.ResultValue{Kind: handlers.ResultString, Text: string(v), What: "a string"}
	case lua.LNumber:
		return handlers.ResultValue{Kind: handlers.ResultNumber, Text: lua.LVAsString(v), What: "a number"}
	case *lua.LUserData:
		if v == vm.codec.null {
			return handlers.ResultValue{Kind: handlers.ResultNull, What: "null"}
		}
	}
	return handlers.ResultValue{Kind: handlers.ResultOther, What: "a " + v.Type().String()}
}

// logger returns the logger of the current call: the worker's
// Call.Logger, or outside a worker's call Options.Logger with the
// attributes of [handlers.CallLogger] (only the function's ref while a
// script loads).
func (vm *vmState) logger() *slog.Logger {
	if c, ok := handlers.CallFrom(vm.ctx); ok {
		return c.Logger
	}
	if vm.event == nil {
		return vm.opts.Logger.With(handlers.LogFunction, vm.ref)
	}
	return handlers.CallLogger(vm.opts.Logger, vm.ref, vm.event)
}

// pcallLua is pcall. A protected call of a script goes through bounce, so
// that an error raised in it carries no traceback, and the end of the
// call's context goes through it: gopher-lua raises it as an ordinary
// error, which a protected call would otherwise catch and let the script
// carry on.
func (vm *vmState) pcallLua(L *lua.LState) int {
	L.CheckAny(1)
	if v := L.Get(1); v.Type() != lua.LTFunction && L.GetMetaField(v, "__call").Type() != lua.LTFunction {
		L.Push(lua.LFalse)
		L.Push(lua.LString("attempt to call a " + v.Type().String() + " value"))
		return 2
	}
	err := vm.protectedLua(L, L.GetTop()-1)
	vm.stopIfDone(L)
	if err != nil {
		L.Push(lua.LFalse)
		L.Push(errorValue(err))
		return 2
	}
	L.Insert(lua.LTrue, 1)
	return L.GetTop()
}

// protectedLua calls the function below nargs arguments on the top of the
// stack, protected, through bounce, and leaves all its results.
//
// gopher-lua's PCall without a message handler builds a traceback of the
// failed call, unless the error has one: a line for every frame and for
// every tail call a frame made, so after a runaway tail recursion such as
// local function f(n) return f(n + 1) end it builds millions of lines,
// gigabytes, long after the call's deadline. A message handler would avoid
// it but leaves the upvalues of the failed frames open, which closures made
// there and kept by the script would read as garbage. bounce instead makes
// every error raised inside carry an empty traceback of its own.
func (vm *vmState) protectedLua(L *lua.LState, nargs int) error {
	L.Insert(vm.trampoline, L.GetTop()-nargs)
	return L.PCall(nargs+1, lua.MultRet, nil)
}

// bounce calls its first argument with the others and returns all results,
// with errors raised as *lua.ApiError values that carry a traceback already
// (see protectedLua). A PCall inside sets its own panic function and puts
// this one back when it returns.
func (vm *vmState) bounce(L *lua.LState) int {
	L.Panic = panicNoTraceback
	L.Call(L.GetTop()-1, lua.MultRet)
	return L.GetTop()
}

// noTraceback is the traceback of errors raised under bounce.
const noTraceback = "stack traceback: (not kept)"

func panicNoTraceback(L *lua.LState) {
	panic(&lua.ApiError{Type: lua.ApiErrorRun, Object: L.Get(-1), StackTrace: noTraceback})
}

// xpcall is xpcall(f, handler, ...) that passes the arguments after the
// handler to f, as Lua 5.2 does, and calls the message handler once the failed call has
// unwound (gopher-lua's calls it before, and leaves the upvalues of the
// failed frames open, so closures made there read garbage). Without a debug
// library a handler cannot tell the difference.
func (vm *vmState) xpcall(L *lua.LState) int {
	fn := L.CheckFunction(1)
	handler := L.CheckFunction(2)
	// Lua 5.2 passes the arguments after the handler to fn.
	args := make([]lua.LValue, 0, max(L.GetTop()-2, 0))
	for i := 3; i <= L.GetTop(); i++ {
		args = append(args, L.Get(i))
	}
	L.SetTop(2)
	L.Push(fn)
	for _, a := range args {
		L.Push(a)
	}
	if err := vm.protectedLua(L, len(args)); err != nil {
		vm.stopIfDone(L)
		L.SetTop(2)
		L.Push(handler)
		L.Push(errorValue(err))
		if err := vm.protectedLua(L, 1); err != nil {
			vm.stopIfDone(L)
			L.SetTop(2)
			L.Push(lua.LFalse)
			L.Push(errorValue(err))
			return 2
		}
		vm.stopIfDone(L)
		ret := lua.LValue(lua.LNil)
		if L.GetTop() > 2 {
			ret = L.Get(3)
		}
		L.SetTop(2)
		L.Push(lua.LFalse)
		L.Push(ret)
		return 2
	}
	vm.stopIfDone(L)
	L.Insert(lua.LTrue, 3)
	return L.GetTop() - 2
}

// stopIfDone raises the end of the call's context again, past whatever
// protected call caught it.
func (vm *vmState) stopIfDone(L *lua.LState) {
	if ctx := L.Context(); ctx != nil && ctx.Err() != nil {
		L.RaiseError("%v", ctx.Err())
	}
}

func errorValue(err error) lua.LValue {
	var aerr *lua.ApiError
	if errors.As(err, &aerr) && aerr.Object != nil {
		return aerr.Object
	}
	return lua.LString(err.Error())
}

func (vm *vmState) print(L *lua.LState) int {
	top := L.GetTop()
	parts := make([]string, top)
	for i := 1; i <= top; i++ {
		parts[i-1] = L.ToStringMeta(L.Get(i)).String()
	}
	vm.logger().LogAttrs(vm.ctx, slog.LevelInfo, strings.Join(parts, "\t"), slog.String("source", "print"))
	return 0
}

func (vm *vmState) tooLong(L *lua.LState, what string, n float64) {
	L.RaiseError("%s: result of %.0f bytes is larger than the limit of %d", what, n, vm.opts.MaxStringBytes)
}

// concat is the .. operator (see compile): the operands are joined right
// to left as by the VM, runs of strings and numbers at once, __concat
// metamethods for the rest.
func (vm *vmState) concat(L *lua.LState) int {
	n := L.GetTop()
	rhs := L.Get(n)
	for i := n - 1; i >= 1; i-- {
		lhs := L.Get(i)
		if lua.LVCanConvToString(lhs) && lua.LVCanConvToString(rhs) {
			j := i
			for j > 1 && lua.LVCanConvToString(L.Get(j-1)) {
				j--
			}
			last := lua.LVAsString(rhs)
			total := len(last)
			for k := j; k <= i; k++ {
				total += len(lua.LVAsString(L.Get(k)))
			}
			if total > vm.opts.MaxStringBytes {
				vm.tooLong(L, "string concatenation", float64(total))
			}
			vm.charge(total)
			var b strings.Builder
			b.Grow(total)
			for k := j; k <= i; k++ {
				b.WriteString(lua.LVAsString(L.Get(k)))
			}
			b.WriteString(last)
			rhs = lua.LString(b.String())
			i = j
			continue
		}
		mm := L.GetMetaField(lhs, "__concat")
		if mm == lua.LNil {
			mm = L.GetMetaField(rhs, "__concat")
		}
		if mm == lua.LNil {
			culprit := lhs
			if lua.LVCanConvToString(lhs) {
				culprit = rhs
			}
			L.RaiseError("attempt to concatenate a %s value", culprit.Type())
		}
		L.Push(mm)
		L.Push(lhs)
		L.Push(rhs)
		L.Call(2, 1)
		rhs = L.Get(-1)
		L.Pop(1)
	}
	L.Push(rhs)
	return 1
}

// strRep is string.rep(s, n [, sep]), with Lua 5.2's separator.
func (vm *vmState) strRep(L *lua.LState) int {
	s := L.CheckString(1)
	n := float64(L.CheckNumber(2))
	sep := L.OptString(3, "")
	if n < 1 || (s == "" && sep == "") {
		L.Push(lua.LString(""))
		return 1
	}
	n = math.Floor(n)
	if size := float64(len(s))*n + float64(len(sep))*(n-1); size > float64(vm.opts.MaxStringBytes) {
		vm.tooLong(L, "string.rep", size)
	}
	if sep == "" {
		vm.charge(len(s) * int(n))
		L.Push(lua.LString(strings.Repeat(s, int(n))))
		return 1
	}
	vm.charge((len(s)+len(sep))*int(n) - len(sep))
	L.Push(lua.LString(strings.Repeat(s+sep, int(n)-1) + s))
	return 1
}

// strFormat bounds string.format: width and precision take at most two
// digits, as in Lua 5.1, and the result may not pass the string limit.
func (vm *vmState) strFormat(format lua.LGFunction) lua.LGFunction {
	return func(L *lua.LState) int {
		f := L.CheckString(1)
		size := float64(len(f))
		arg := 2
		for i := 0; i < len(f); i++ {
			if f[i] != '%' {
				continue
			}
			i++
			if i < len(f) && f[i] == '%' {
				continue
			}
			for i < len(f) && strings.IndexByte("-+ #0", f[i]) >= 0 {
				i++
			}
			width, digits := 0, 0
			for ; i < len(f) && f[i] >= '0' && f[i] <= '9'; i++ {
				width, digits = width*10+int(f[i]-'0'), digits+1
			}
			prec, pdigits := 0, 0
			if i < len(f) && f[i] == '.' {
				for i++; i < len(f) && f[i] >= '0' && f[i] <= '9'; i++ {
					prec, pdigits = prec*10+int(f[i]-'0'), pdigits+1
				}
			}
			if digits > 2 || pdigits > 2 {
				L.RaiseError("invalid format (width or precision too long)")
			}
			size += float64(max(width, prec, 32))
			if arg <= L.GetTop() {
				if s, ok := L.Get(arg).(lua.LString); ok {
					if i < len(f) && f[i] == 'q' {
						size += 4*float64(len(s)) + 2 // \xNN for every byte at worst
					} else {
						size += float64(len(s))
					}
				}
			}
			arg++
		}
		if size > float64(vm.opts.MaxStringBytes) {
			vm.tooLong(L, "string.format", size)
		}
		vm.charge(int(size))
		return format(L)
	}
}

func (vm *vmState) tabConcat(concat lua.LGFunction) lua.LGFunction {
	return func(L *lua.LState) int {
		t := L.CheckTable(1)
		sep := L.OptString(2, "")
		n := t.Len()
		i, j := max(L.OptInt(3, 1), 1), min(L.OptInt(4, n), n)
		total := 0.0
		for k := i; k <= j; k++ {
			total += float64(len(lua.LVAsString(t.RawGetInt(k))) + len(sep))
			if total > float64(vm.opts.MaxStringBytes) {
				vm.tooLong(L, "table.concat", total)
			}
		}
		vm.charge(int(total))
		return concat(L)
	}
}

// random is math.random on the process's generator, which is safe for
// concurrent use and cannot be seeded by a script.
func random(L *lua.LState) int {
	switch L.GetTop() {
	case 0:
		L.Push(lua.LNumber(rand.Float64()))
		return 1
	case 1:
		m := L.CheckInt64(1)
		if m < 1 {
			L.ArgError(1, "interval is empty")
		}
		L.Push(lua.LNumber(rand.Int64N(m) + 1))
		return 1
	}
	lo, hi := L.CheckInt64(1), L.CheckInt64(2)
	if lo > hi {
		L.ArgError(2, "interval is empty")
	}
	span := hi - lo + 1
	if span <= 0 {
		L.ArgError(2, "interval is too large")
	}
	L.Push(lua.LNumber(lo + rand.Int64N(span)))
	return 1
}
