package lua

import (
	"bytes"
	"encoding/json"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// The methods every FDL object answers as a Java object does: resources and
// other objects, value objects, enum objects, lists and maps.
//
//   - toJSONString(): the object's JSON (an enum's is its quoted name).
//   - equals(other): same JSON value, whatever the order of the keys; an
//     enum object equals another of the same name, or the name itself.
//   - hashCode(): a 32-bit number that equal objects share.
//   - getClass(): an object whose getSimpleName() and getName() name the
//     type: a value object's or enum's type, "List", a resource's class by its
//     resourceType (BILLING_ENTITY is BillingEntity), else "Map".

// javaMethod returns the Java-object method name of t, nil when name is
// not one.
func (s *compatLayer) javaMethod(t *lua.LTable, name string) *lua.LFunction {
	switch name {
	case "toJSONString":
		return s.bind(t, func(L *lua.LState, base int) int { return s.pushJSON(L, t) })
	case "equals":
		return s.bind(t, func(L *lua.LState, base int) int {
			L.Push(lua.LBool(s.equal(L, t, argAt(L, base))))
			return 1
		})
	case "hashCode":
		return s.bind(t, func(L *lua.LState, base int) int {
			L.Push(lua.LNumber(javaHash(s.canonical(L, t))))
			return 1
		})
	case "getClass":
		return s.bind(t, func(L *lua.LState, base int) int {
			L.Push(s.classObject(s.className(t)))
			return 1
		})
	}
	return nil
}

// equal reports whether a and b are the same value as equals sees it.
func (s *compatLayer) equal(L *lua.LState, a *lua.LTable, b lua.LValue) bool {
	if _, ok := s.enumValue(a); ok {
		return s.same(a, b)
	}
	bt, ok := b.(*lua.LTable)
	if !ok {
		return false
	}
	if a == bt {
		return true
	}
	return bytes.Equal(s.canonical(L, a), s.canonical(L, bt))
}

// canonical returns the JSON of v with the keys of every object sorted, so
// that equal values have equal texts; it raises the error of a value that
// has no JSON.
func (s *compatLayer) canonical(L *lua.LState, v lua.LValue) []byte {
	data, err := s.encode(v)
	if err != nil {
		L.RaiseError("%s", err.Error())
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil {
		L.RaiseError("json: %s", err.Error())
	}
	out, err := json.Marshal(x)
	if err != nil {
		L.RaiseError("json: %s", err.Error())
	}
	return out
}

// javaHash is Java's String.hashCode of b: what equal objects share.
func javaHash(b []byte) int32 {
	var h int32
	for _, c := range b {
		h = 31*h + int32(c)
	}
	return h
}

// className returns the simple name of the class of t.
func (s *compatLayer) className(t *lua.LTable) string {
	if _, ok := s.enumValue(t); ok {
		kind, _ := t.RawGetString("type").(lua.LString)
		return string(kind)
	}
	if typ := s.valueType(t); typ != "" {
		return typ
	}
	if t.Metatable == lua.LValue(s.call.listMT) {
		return "List"
	}
	rt := t.RawGetString("resourceType")
	if name, ok := s.enumValue(rt); ok {
		rt = lua.LString(name)
	}
	if str, ok := rt.(lua.LString); ok && str != "" {
		var b strings.Builder
		for word := range strings.SplitSeq(strings.ToLower(string(str)), "_") {
			if word != "" {
				b.WriteString(strings.ToUpper(word[:1]) + word[1:])
			}
		}
		return b.String()
	}
	return "Map"
}

// classObject returns what getClass() returns for the class name.
func (s *compatLayer) classObject(name string) *lua.LTable {
	c := s.L.CreateTable(0, 3)
	get := s.L.NewFunction(func(L *lua.LState) int {
		L.Push(lua.LString(name))
		return 1
	})
	for _, m := range []string{"getSimpleName", "getName", "toString"} {
		c.RawSetString(m, get)
	}
	return c
}

// elemCall runs a method of m over the elements of a list field of t: get
// (no argument: the list; a number: the element at that index, from 0; a
// string: the first element whose key field is that name, in any case),
// remove (a number: by index, returning the element; a string: every
// element of that name; an element: that element; returning whether one
// was removed) or clear.
func (s *compatLayer) elemCall(L *lua.LState, t *lua.LTable, m elemMethod, base int) int {
	list, ok := t.RawGetString(m.field).(*lua.LTable)
	if !ok {
		list = s.newList()
		t.RawSetString(m.field, list)
	}
	arg := argAt(L, base)
	switch m.op {
	case elemClear:
		listMethodTable["clear"](s, L, list, base)
		return 0
	case elemGet:
		switch arg.(type) {
		case *lua.LNilType:
			L.Push(list)
			return 1
		case lua.LNumber:
			return listMethodTable["get"](s, L, list, base)
		}
		for i := 1; i <= list.Len(); i++ {
			if s.elemMatches(list.RawGetInt(i), arg, m.key) {
				L.Push(s.out(list, lua.LNumber(i), list.RawGetInt(i), ""))
				return 1
			}
		}
		L.Push(lua.LNil)
		return 1
	}
	if _, ok := arg.(lua.LNumber); ok {
		return listMethodTable["remove"](s, L, list, base)
	}
	kept, removed := 0, false
	n := list.Len()
	for i := 1; i <= n; i++ {
		if s.elemMatches(list.RawGetInt(i), arg, m.key) {
			removed = true
			continue
		}
		kept++
		if kept != i {
			s.moveElem(list, kept, i)
		}
	}
	for i := n; i > kept; i-- {
		list.RawSetInt(i, lua.LNil)
	}
	L.Push(lua.LBool(removed))
	return 1
}

// elemMatches reports whether the element e is what arg names: the same
// table, or an object whose key field is the string arg in any case.
func (s *compatLayer) elemMatches(e, arg lua.LValue, key string) bool {
	if e == arg {
		return true
	}
	t, ok := e.(*lua.LTable)
	name, isStr := arg.(lua.LString)
	if !ok || !isStr {
		return false
	}
	v := t.RawGetString(key)
	if str, ok := s.enumValue(v); ok {
		v = lua.LString(str)
	}
	str, ok := v.(lua.LString)
	return ok && strings.EqualFold(string(str), string(name))
}
