package lua

import (
	"fmt"

	lua "github.com/yuin/gopher-lua"
)

// An entry point's p carries the event's documents, customer, user and
// input, decoded into tables the first time the call reads them: a script
// that looks only at p.input does not pay for p.customer and p.user, and a
// script that leaves p.input alone does not pay for telling whether it
// changed it.
//
// Until then the field is pending: p has no value for it, and p's
// metatable (lazyMT, which no script can read or replace) decodes it on its
// first lookup, or drops it when the script assigns the field first. The
// field's key is set and cleared when p is made, so that it keeps its place
// among p's keys: pairs(p) lists the fields in the same order whether or
// not the script read them before.
//
// What reads a table's keys without its metatable decodes every pending
// field of p first (settle): next, pairs, rawget, rawset, getmetatable and
// setmetatable, the JSON encoder, and every other walk of a table's keys
// in this package (TestTableWalksSettle holds that). Once no field is
// pending, p is a plain table.
//
// A field that does not decode (one nested deeper than jsonMaxDepth, say)
// ends the call that reads it with the error it has, which pcall cannot
// catch: the call fails as it would have before the script ran.

// The pending fields of p, in the order of p's keys.
const (
	lazyCustomer = iota
	lazyUser
	lazyInput
	lazyFields
)

// lazyNames are the fields' keys.
var lazyNames = [lazyFields]string{"customer", "user", "input"}

// lazyField returns the index of the field named k, -1 for any other key.
func lazyField(k string) int {
	switch k {
	case "customer":
		return lazyCustomer
	case "user":
		return lazyUser
	case "input":
		return lazyInput
	}
	return -1
}

// lazyEvent is the call's p while fields of it are pending.
type lazyEvent struct {
	vm *vmState
	p  *lua.LTable // nil when no field is pending
	// doc holds the documents of the pending fields; nil for a field that
	// is not pending.
	doc [lazyFields][]byte
	// err is the error of the first field that failed to decode.
	err error
}

// pend makes the field i of p pending with the document doc, keeping its
// key's place.
func (l *lazyEvent) pend(p *lua.LTable, i int, doc []byte) {
	setField(p, i, lua.LTrue)
	setField(p, i, lua.LNil)
	l.doc[i] = doc
	l.p = p
	p.Metatable = l.vm.lazyMT
}

// setField sets p's field i to v; with constant keys, which RawSetString
// (inlined) boxes without allocating.
func setField(p *lua.LTable, i int, v lua.LValue) {
	switch i {
	case lazyCustomer:
		p.RawSetString("customer", v)
	case lazyUser:
		p.RawSetString("user", v)
	case lazyInput:
		p.RawSetString("input", v)
	}
}

// pending reports whether the field i of t is pending.
func (l *lazyEvent) pending(t *lua.LTable, i int) bool {
	return t != nil && t == l.p && l.doc[i] != nil
}

// reset forgets the call's p.
func (l *lazyEvent) reset() {
	l.p, l.doc, l.err = nil, [lazyFields][]byte{}, nil
}

// settle decodes every pending field of t, when t is the call's p; t is
// then a plain table. It returns the error of a field that did not decode.
func (l *lazyEvent) settle(t *lua.LTable) error {
	if l == nil || t == nil || t != l.p {
		return nil
	}
	for i := range l.doc {
		if l.doc[i] != nil {
			l.load(i)
		}
	}
	return l.err
}

// settleArg settles argument n when it is a table, and raises the error of
// a field that did not decode.
func (l *lazyEvent) settleArg(L *lua.LState, n int) {
	if t, ok := L.Get(n).(*lua.LTable); ok {
		l.settleIn(L, t)
	}
}

// settleIn settles t and raises the error of a field that did not decode.
func (l *lazyEvent) settleIn(L *lua.LState, t *lua.LTable) {
	if t != nil && t == l.p {
		l.settle(t)
		l.raise(L)
	}
}

// load decodes the pending field i, sets it in p and returns it; nil when
// it does not decode (see fail).
func (l *lazyEvent) load(i int) lua.LValue {
	p, doc := l.p, l.doc[i]
	l.done(i)
	v, err := l.vm.decodeField(p, lazyNames[i], doc)
	if err != nil {
		l.fail(err)
		return lua.LNil
	}
	setField(p, i, v)
	for _, hook := range l.vm.fieldHooks {
		hook(v)
	}
	return v
}

// done ends the field i's pending; p is plain once no field is.
func (l *lazyEvent) done(i int) {
	l.doc[i] = nil
	if l.doc[lazyCustomer] == nil && l.doc[lazyUser] == nil && l.doc[lazyInput] == nil && l.p != nil {
		l.p.Metatable = lua.LNil
		l.p = nil
	}
}

// fail records err, the error of a field that did not decode, and ends the
// call with it.
func (l *lazyEvent) fail(err error) {
	if l.err != nil {
		return
	}
	l.err = err
	if c := l.vm.callCtx; c != nil && c.failed == nil {
		c.failed = err
	}
}

// raise raises the error of a field that did not decode, if one did not.
func (l *lazyEvent) raise(L *lua.LState) {
	if l.err != nil {
		L.RaiseError("%s", l.err.Error())
	}
}

// newLazyMT returns the metatable of a p with pending fields.
func (vm *vmState) newLazyMT() *lua.LTable {
	L := vm.L
	mt := L.CreateTable(0, 3)
	mt.RawSetString("__index", L.NewFunction(vm.lazyIndex))
	mt.RawSetString("__newindex", L.NewFunction(vm.lazyNewIndex))
	mt.RawSetString("__metatable", lua.LFalse)
	return mt
}

// lazyIndex is the __index of p: a pending field is decoded; any other key
// p lacks is nil.
func (vm *vmState) lazyIndex(L *lua.LState) int {
	t, _ := L.Get(1).(*lua.LTable)
	k, _ := L.Get(2).(lua.LString)
	l := &vm.lazy
	if i := lazyField(string(k)); i >= 0 && l.pending(t, i) {
		v := l.load(i)
		l.raise(L)
		L.Push(v)
		return 1
	}
	L.Push(lua.LNil)
	return 1
}

// lazyNewIndex is the __newindex of p: a pending field the script sets is
// no longer pending.
func (vm *vmState) lazyNewIndex(L *lua.LState) int {
	t := L.CheckTable(1)
	k := L.Get(2)
	l := &vm.lazy
	if s, ok := k.(lua.LString); ok {
		if i := lazyField(string(s)); i >= 0 && l.pending(t, i) {
			l.done(i)
		}
	}
	L.RawSet(t, k, L.Get(3))
	return 0
}

// inputBefore returns the input of ev as the codec writes it: what the
// call's input is compared with to tell whether the script changed it.
func (vm *vmState) inputBefore(input []byte) ([]byte, error) {
	if b, ok := appendCanonical(vm.before[:0], input, vm.codec.maxBytes); ok {
		if cap(b) <= beforeKeep {
			vm.before = b
		}
		return b, nil
	}
	// The codec's own encoding of a fresh decoding: the script may have
	// changed the input p holds.
	v, text, err := vm.codec.decode(input)
	if err != nil {
		return nil, fmt.Errorf("handlers: lua: event input: %w", err)
	}
	holder := vm.L.CreateTable(0, 1)
	holder.RawSetString("input", v)
	vm.codec.keepText(holder, lua.LString("input"), v, text)
	b, err := vm.codec.encodeAt(holder, lua.LString("input"))
	if err != nil {
		return nil, fmt.Errorf("handlers: lua: event input: %w", err)
	}
	return b, nil
}
