package lua

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	lua "github.com/yuin/gopher-lua"

	"github.com/triggerbus/triggerbus/internal/xmltree"
)

// Object-style values. FDL scripts see the orchestrator's objects as Java
// beans: p.input:getJobType(), server:setName("x"), list:get(0). Here they
// stay the tables the JSON codec decoded, so that p.input.cpu still works
// and every change is in the table the Lua kind re-encodes for the PRE
// reply; a metatable answers the methods:
//
//   - objects (JSON objects): getFooBar() and isFooBar() read field fooBar
//     (getUUID() reads UUID), setFooBar(v) writes it, addFoo(v) appends to
//     the list field foo, foos or fooList; getFoo(key) returns the entry key
//     of the map or list in field foo. They are maps too: get, put, remove,
//     containsKey, containsValue, keySet, values, size, isEmpty, putAll,
//     clear, toString.
//   - lists (JSON arrays): size, get(i) and set(i, v) with i from 0, add(v),
//     add(i, v), addAll, remove(i or value), contains, indexOf, isEmpty,
//     clear, iterator (hasNext, next), toString.
//   - enum objects: the string of an enum-valued field read through a
//     getter (enumFields), or new("JobType", "CREATE_SERVER"); toString(),
//     name(), equals(), ordinal(); == compares their values, tostring and ..
//     give the value. They are tables {type = "JobType", value = "..."}.
//   - value objects from new("SearchFilter"), ...: objects with the extra
//     methods of their type (valueTypes).
//
// Methods work called with : or with . (the object is bound). Getters
// return nil for JSON null. Setters store enum objects as their names, nil
// as JSON null, keep a list a JSON array when they replace one with an
// empty or unmarked table, and write back big numbers read through a
// getter with the text they had in the document.

// attach gives v, and the tables in it, the metatable of a list or of an
// object, unless they have a metatable already.
func (s *compatLayer) attach(v lua.LValue, depth int) {
	t, ok := v.(*lua.LTable)
	if !ok || depth > jsonMaxDepth {
		return
	}
	s.vm.lazy.settle(t)
	if t.Metatable != lua.LNil {
		return
	}
	if s.isList(t) {
		t.Metatable = s.listMeta()
	} else {
		t.Metatable = s.call.objectMT
	}
	for k, val := t.Next(lua.LNil); k != lua.LNil; k, val = t.Next(k) {
		s.attach(val, depth+1)
	}
}

// isList reports whether t is a list: a JSON array, or a sequence.
func (s *compatLayer) isList(t *lua.LTable) bool {
	if t.Metatable == lua.LValue(s.call.listMT) {
		return true
	}
	if _, ok := s.vm.codec.arrays[t]; ok {
		return true
	}
	return t.Len() > 0
}

// bind returns a function that runs fn with the index of its first
// argument, skipping self when it was called as self:method(...).
func (s *compatLayer) bind(self lua.LValue, fn func(L *lua.LState, base int) int) *lua.LFunction {
	return s.L.NewFunction(func(L *lua.LState) int { return fn(L, selfBase(L, self)) })
}

// argAt returns argument i, nil when absent.
func argAt(L *lua.LState, i int) lua.LValue {
	if L.GetTop() < i {
		return lua.LNil
	}
	return L.Get(i)
}

// property returns the property of an accessor name such as getFooBar
// (FooBar for prefix "get"), or "" when name is not one.
func property(name, prefix string) string {
	if len(name) <= len(prefix) || !strings.HasPrefix(name, prefix) {
		return ""
	}
	if c := name[len(prefix)]; c < 'A' || c > 'Z' {
		return ""
	}
	return name[len(prefix):]
}

// beanField returns the field of t a property names: fooBar for FooBar, or
// the property as it is when t has that field or it starts with two
// capitals (UUID), as Java beans name them.
func beanField(t *lua.LTable, prop string) string {
	lower := strings.ToLower(prop[:1]) + prop[1:]
	if t.RawGetString(lower) != lua.LNil {
		return lower
	}
	if t.RawGetString(prop) != lua.LNil || (len(prop) > 1 && prop[1] >= 'A' && prop[1] <= 'Z') {
		return prop
	}
	return lower
}

// objectIndex is the __index of objects and value objects.
func (s *compatLayer) objectIndex(L *lua.LState) int {
	t := L.CheckTable(1)
	key, ok := L.Get(2).(lua.LString)
	if !ok {
		return 0
	}
	name := string(key)
	if fn := s.javaMethod(t, name); fn != nil {
		L.Push(fn)
		return 1
	}
	typ := valueTypes[s.valueType(t)]
	if field, ok := typ.adders[name]; ok {
		L.Push(s.adder(t, field))
		return 1
	}
	if m, ok := typ.elems[name]; ok {
		L.Push(s.bind(t, func(L *lua.LState, base int) int { return s.elemCall(L, t, m, base) }))
		return 1
	}
	if m, ok := mapMethods[name]; ok {
		L.Push(s.bind(t, func(L *lua.LState, base int) int { return m(s, L, t, base) }))
		return 1
	}
	if prop := property(name, "get"); prop != "" {
		L.Push(s.getter(t, prop))
		return 1
	}
	if prop := property(name, "is"); prop != "" {
		L.Push(s.getter(t, prop))
		return 1
	}
	if prop := property(name, "set"); prop != "" {
		L.Push(s.setter(t, prop))
		return 1
	}
	if prop := property(name, "add"); prop != "" {
		lower := strings.ToLower(prop[:1]) + prop[1:]
		field := lower + "s"
		for _, f := range []string{lower, lower + "s", lower + "List"} {
			if _, ok := t.RawGetString(f).(*lua.LTable); ok {
				field = f
				break
			}
		}
		L.Push(s.adder(t, field))
		return 1
	}
	return 0
}

// getter reads the field of prop; with an argument, the entry of that key
// (or index from 0) of the map (or list) the field holds.
func (s *compatLayer) getter(t *lua.LTable, prop string) *lua.LFunction {
	return s.bind(t, func(L *lua.LState, base int) int {
		field := beanField(t, prop)
		v := t.RawGetString(field)
		if v == lua.LNil && slices.Contains(valueTypes[s.valueType(t)].lists, field) {
			v = s.newList()
			t.RawSetString(field, v)
		}
		if L.GetTop() < base {
			L.Push(s.out(t, lua.LString(field), v, field))
			return 1
		}
		inner, ok := v.(*lua.LTable)
		if !ok {
			L.Push(lua.LNil)
			return 1
		}
		k := s.entryKey(inner, L.Get(base))
		L.Push(s.out(inner, k, inner.RawGet(k), ""))
		return 1
	})
}

// entryKey returns the key of inner that a Java-style key or index names.
func (s *compatLayer) entryKey(inner *lua.LTable, k lua.LValue) lua.LValue {
	if name, ok := s.enumValue(k); ok {
		return lua.LString(name)
	}
	if n, ok := k.(lua.LNumber); ok {
		if s.isList(inner) {
			return n + 1
		}
		if inner.RawGet(n) == lua.LNil {
			return lua.LString(lua.LVAsString(n))
		}
	}
	return k
}

// setter writes the field of prop.
func (s *compatLayer) setter(t *lua.LTable, prop string) *lua.LFunction {
	return s.bind(t, func(L *lua.LState, base int) int {
		field := beanField(t, prop)
		v := argAt(L, base)
		typ := valueTypes[s.valueType(t)]
		if kind := typ.enums[field]; kind != "" {
			name, ok := s.enumValue(v)
			if str, isStr := v.(lua.LString); isStr {
				name, ok = string(str), true
			}
			if ok {
				if err := checkEnum(kind, name); err != "" {
					L.RaiseError("set%s: %s", prop, err)
				}
			}
		}
		if slices.Contains(typ.lists, field) {
			v = s.asList(v)
		}
		s.store(t, lua.LString(field), v)
		return 0
	})
}

// adder appends its argument to the list in field, made when missing.
func (s *compatLayer) adder(t *lua.LTable, field string) *lua.LFunction {
	return s.bind(t, func(L *lua.LState, base int) int {
		list, ok := t.RawGetString(field).(*lua.LTable)
		if !ok {
			list = s.newList()
			t.RawSetString(field, list)
		}
		s.store(list, lua.LNumber(list.Len()+1), argAt(L, base))
		return 0
	})
}

// asList returns v as a list: a table is marked as one, another value is
// put in a new list, nil is an empty list.
func (s *compatLayer) asList(v lua.LValue) lua.LValue {
	if name, ok := s.enumValue(v); ok {
		v = lua.LString(name)
	}
	switch x := v.(type) {
	case *lua.LTable:
		if x.Metatable == lua.LNil || x.Metatable == lua.LValue(s.call.listMT) {
			s.vm.codec.markArray(x)
		}
		return x
	case *lua.LNilType:
		return s.newList()
	}
	l := s.newList()
	l.RawSetInt(1, v)
	return l
}

// out returns v, stored at owner[key], as a getter returns it: JSON null
// is nil, the string of an enum-valued field an enum object, a table gets
// its methods. field is the field's name, "" for an entry of a map or list.
func (s *compatLayer) out(owner *lua.LTable, key, v lua.LValue, field string) lua.LValue {
	switch x := v.(type) {
	case lua.LString:
		if field != "" {
			if kind, ok := s.enumKind(owner, field, string(x)); ok {
				return s.newEnum(kind, string(x))
			}
		}
	case lua.LNumber:
		if text := s.vm.codec.textOf(owner, key, x); text != "" {
			s.noteText(x, text)
		}
	case *lua.LTable:
		s.attach(x, 0)
	case *lua.LUserData:
		if _, ok := x.Value.(nullValue); ok {
			return lua.LNil
		}
	}
	return v
}

// enumKind returns the enum of the value of an enum-valued field.
func (s *compatLayer) enumKind(owner *lua.LTable, field, value string) (string, bool) {
	if kind, ok := valueTypes[s.valueType(owner)].enums[field]; ok {
		return kind, true
	}
	kind, ok := enumFields[field]
	if !ok || kind != "" {
		return kind, ok
	}
	for _, k := range statusEnums {
		if slices.Contains(enumValues[k], value) {
			return k, true
		}
	}
	return "Status", true
}

// noteText remembers the document's text of a big number a getter read.
func (s *compatLayer) noteText(n lua.LNumber, text string) {
	if s.call.numText == nil {
		s.call.numText = map[lua.LNumber]string{}
	}
	if old, ok := s.call.numText[n]; ok && old != text {
		text = ""
	}
	s.call.numText[n] = text
}

// store sets t[key] = v as setters do.
func (s *compatLayer) store(t *lua.LTable, key, v lua.LValue) {
	v = s.plain(v, 0)
	switch x := v.(type) {
	case *lua.LNilType:
		v = s.vm.codec.null
	case *lua.LTable:
		if old, ok := t.RawGet(key).(*lua.LTable); ok && s.marked(old) && !s.marked(x) && (x.Len() > 0 || s.isEmpty(x)) {
			s.vm.codec.markArray(x)
		}
		s.attach(x, 0)
	}
	t.RawSet(key, v)
	if n, ok := v.(lua.LNumber); ok {
		if text := s.call.numText[n]; text != "" {
			s.vm.codec.keepText(t, key, v, text)
		}
	}
}

func (s *compatLayer) marked(t *lua.LTable) bool {
	_, ok := s.vm.codec.arrays[t]
	return ok
}

// isEmpty reports whether t has no keys.
func (s *compatLayer) isEmpty(t *lua.LTable) bool {
	s.vm.lazy.settle(t)
	k, _ := t.Next(lua.LNil)
	return k == lua.LNil
}

// plain returns v as it is stored in a document: an enum object is its
// name (also inside tables, which are changed in place), an XML node its
// text.
func (s *compatLayer) plain(v lua.LValue, depth int) lua.LValue {
	var seen map[*lua.LTable]bool
	if _, ok := v.(*lua.LTable); ok {
		seen = map[*lua.LTable]bool{}
	}
	return s.plainIn(v, depth, seen)
}

// plainIn is plain; seen holds the tables walked, so that a table met
// twice (or in a cycle) is walked once.
func (s *compatLayer) plainIn(v lua.LValue, depth int, seen map[*lua.LTable]bool) lua.LValue {
	switch x := v.(type) {
	case *lua.LTable:
		s.vm.lazy.settle(x)
		if name, ok := s.enumValue(x); ok {
			return lua.LString(name)
		}
		if depth >= jsonMaxDepth || seen[x] {
			return v
		}
		seen[x] = true
		for k, val := x.Next(lua.LNil); k != lua.LNil; k, val = x.Next(k) {
			if p := s.plainIn(val, depth+1, seen); p != val {
				x.RawSet(k, p)
			}
		}
	case *lua.LUserData:
		if n, ok := x.Value.(*xmltree.Node); ok {
			return lua.LString(n.String())
		}
	}
	return v
}

// mapMethods are the java.util.Map methods of objects.
var mapMethods = map[string]func(s *compatLayer, L *lua.LState, t *lua.LTable, base int) int{
	"get": func(s *compatLayer, L *lua.LState, t *lua.LTable, base int) int {
		k := s.entryKey(t, L.CheckAny(base))
		L.Push(s.out(t, k, t.RawGet(k), ""))
		return 1
	},
	"put": func(s *compatLayer, L *lua.LState, t *lua.LTable, base int) int {
		k := s.entryKey(t, L.CheckAny(base))
		if k == lua.LNil {
			L.ArgError(base, "the key is nil")
		}
		old := s.out(t, k, t.RawGet(k), "")
		s.store(t, k, argAt(L, base+1))
		L.Push(old)
		return 1
	},
	"remove": func(s *compatLayer, L *lua.LState, t *lua.LTable, base int) int {
		k := s.entryKey(t, L.CheckAny(base))
		old := s.out(t, k, t.RawGet(k), "")
		if k != lua.LNil {
			t.RawSet(k, lua.LNil)
		}
		L.Push(old)
		return 1
	},
	"containsKey": func(s *compatLayer, L *lua.LState, t *lua.LTable, base int) int {
		k := s.entryKey(t, L.CheckAny(base))
		L.Push(lua.LBool(k != lua.LNil && t.RawGet(k) != lua.LNil))
		return 1
	},
	"containsValue": func(s *compatLayer, L *lua.LState, t *lua.LTable, base int) int {
		want := s.plain(L.CheckAny(base), 0)
		found := false
		s.vm.lazy.settle(t)
		for k, v := t.Next(lua.LNil); k != lua.LNil && !found; k, v = t.Next(k) {
			found = s.same(v, want)
		}
		L.Push(lua.LBool(found))
		return 1
	},
	"keySet": func(s *compatLayer, L *lua.LState, t *lua.LTable, base int) int {
		l := s.newList()
		s.vm.lazy.settle(t)
		for k, _ := t.Next(lua.LNil); k != lua.LNil; k, _ = t.Next(k) {
			l.Append(k)
		}
		L.Push(l)
		return 1
	},
	"values": func(s *compatLayer, L *lua.LState, t *lua.LTable, base int) int {
		l := s.newList()
		s.vm.lazy.settle(t)
		for k, v := t.Next(lua.LNil); k != lua.LNil; k, v = t.Next(k) {
			l.Append(s.out(t, k, v, ""))
		}
		L.Push(l)
		return 1
	},
	"size": func(s *compatLayer, L *lua.LState, t *lua.LTable, base int) int {
		n := 0
		s.vm.lazy.settle(t)
		for k, _ := t.Next(lua.LNil); k != lua.LNil; k, _ = t.Next(k) {
			n++
		}
		L.Push(lua.LNumber(n))
		return 1
	},
	"isEmpty": func(s *compatLayer, L *lua.LState, t *lua.LTable, base int) int {
		L.Push(lua.LBool(s.isEmpty(t)))
		return 1
	},
	"putAll": func(s *compatLayer, L *lua.LState, t *lua.LTable, base int) int {
		src := L.CheckTable(base)
		s.vm.lazy.settleIn(L, src)
		for k, v := src.Next(lua.LNil); k != lua.LNil; k, v = src.Next(k) {
			s.store(t, k, v)
		}
		return 0
	},
	"clear": func(s *compatLayer, L *lua.LState, t *lua.LTable, base int) int {
		var keys []lua.LValue
		s.vm.lazy.settle(t)
		for k, _ := t.Next(lua.LNil); k != lua.LNil; k, _ = t.Next(k) {
			keys = append(keys, k)
		}
		for _, k := range keys {
			t.RawSet(k, lua.LNil)
		}
		return 0
	},
	"toString": func(s *compatLayer, L *lua.LState, t *lua.LTable, base int) int {
		return s.pushJSON(L, t)
	},
}

// pushJSON pushes the JSON text of v, or raises an error.
func (s *compatLayer) pushJSON(L *lua.LState, v lua.LValue) int {
	data, err := s.encode(v)
	if err != nil {
		L.RaiseError("%s", err.Error())
	}
	L.Push(lua.LString(data))
	return 1
}

// same reports whether a and b are the same value, an enum object being its
// name.
func (s *compatLayer) same(a, b lua.LValue) bool {
	if name, ok := s.enumValue(a); ok {
		a = lua.LString(name)
	}
	if name, ok := s.enumValue(b); ok {
		b = lua.LString(name)
	}
	return a == b
}

// listMethods is the __index of lists.
func (s *compatLayer) listMethods(L *lua.LState) int {
	t := L.CheckTable(1)
	key, ok := L.Get(2).(lua.LString)
	if !ok {
		return 0
	}
	if fn := s.javaMethod(t, string(key)); fn != nil {
		L.Push(fn)
		return 1
	}
	m, ok := listMethodTable[string(key)]
	if !ok {
		return 0
	}
	L.Push(s.bind(t, func(L *lua.LState, base int) int { return m(s, L, t, base) }))
	return 1
}

// indexArg returns the 1-based position of the 0-based index of argument
// n of a method of a list of size elements; the index may be size when
// end is set (add(i, v)).
func indexArg(L *lua.LState, n, size int, end bool) int {
	f := float64(L.CheckNumber(n))
	limit := float64(size)
	if end {
		limit++
	}
	if f != math.Trunc(f) || f < 0 || f >= limit {
		L.RaiseError("index %v out of range (size %d)", f, size)
	}
	return int(f) + 1
}

// moveElem sets t[dst] to t[src], with the number's text.
func (s *compatLayer) moveElem(t *lua.LTable, dst, src int) {
	v := t.RawGetInt(src)
	text := s.vm.codec.textOf(t, lua.LNumber(src), v)
	t.RawSetInt(dst, v)
	s.vm.codec.keepText(t, lua.LNumber(dst), v, text)
}

// listMethodTable are the java.util.List methods of lists.
var listMethodTable = map[string]func(s *compatLayer, L *lua.LState, t *lua.LTable, base int) int{
	"size": func(s *compatLayer, L *lua.LState, t *lua.LTable, base int) int {
		L.Push(lua.LNumber(t.Len()))
		return 1
	},
	"isEmpty": func(s *compatLayer, L *lua.LState, t *lua.LTable, base int) int {
		L.Push(lua.LBool(t.Len() == 0))
		return 1
	},
	"get": func(s *compatLayer, L *lua.LState, t *lua.LTable, base int) int {
		i := indexArg(L, base, t.Len(), false)
		L.Push(s.out(t, lua.LNumber(i), t.RawGetInt(i), ""))
		return 1
	},
	"set": func(s *compatLayer, L *lua.LState, t *lua.LTable, base int) int {
		i := indexArg(L, base, t.Len(), false)
		old := s.out(t, lua.LNumber(i), t.RawGetInt(i), "")
		s.store(t, lua.LNumber(i), argAt(L, base+1))
		L.Push(old)
		return 1
	},
	"add": func(s *compatLayer, L *lua.LState, t *lua.LTable, base int) int {
		n := t.Len()
		if L.GetTop() >= base+1 {
			i := indexArg(L, base, n, true)
			for j := n; j >= i; j-- {
				s.moveElem(t, j+1, j)
			}
			s.store(t, lua.LNumber(i), L.Get(base+1))
			return 0
		}
		s.store(t, lua.LNumber(n+1), argAt(L, base))
		L.Push(lua.LTrue)
		return 1
	},
	"addAll": func(s *compatLayer, L *lua.LState, t *lua.LTable, base int) int {
		src := L.CheckTable(base)
		for i := 1; i <= src.Len(); i++ {
			s.store(t, lua.LNumber(t.Len()+1), src.RawGetInt(i))
		}
		L.Push(lua.LBool(src.Len() > 0))
		return 1
	},
	"remove": func(s *compatLayer, L *lua.LState, t *lua.LTable, base int) int {
		n := t.Len()
		i := 0
		if _, ok := L.Get(base).(lua.LNumber); ok {
			i = indexArg(L, base, n, false)
		} else {
			want := s.plain(L.CheckAny(base), 0)
			for j := 1; j <= n && i == 0; j++ {
				if s.same(t.RawGetInt(j), want) {
					i = j
				}
			}
			if i == 0 {
				L.Push(lua.LFalse)
				return 1
			}
		}
		old := s.out(t, lua.LNumber(i), t.RawGetInt(i), "")
		for j := i; j < n; j++ {
			s.moveElem(t, j, j+1)
		}
		t.RawSetInt(n, lua.LNil)
		if _, ok := L.Get(base).(lua.LNumber); ok {
			L.Push(old)
		} else {
			L.Push(lua.LTrue)
		}
		return 1
	},
	"contains": func(s *compatLayer, L *lua.LState, t *lua.LTable, base int) int {
		L.Push(lua.LBool(s.indexOf(t, L.CheckAny(base)) >= 0))
		return 1
	},
	"indexOf": func(s *compatLayer, L *lua.LState, t *lua.LTable, base int) int {
		L.Push(lua.LNumber(s.indexOf(t, L.CheckAny(base))))
		return 1
	},
	"clear": func(s *compatLayer, L *lua.LState, t *lua.LTable, base int) int {
		for i := t.Len(); i >= 1; i-- {
			t.RawSetInt(i, lua.LNil)
		}
		return 0
	},
	"iterator": func(s *compatLayer, L *lua.LState, t *lua.LTable, base int) int {
		L.Push(s.newIterator(t))
		return 1
	},
	"toString": func(s *compatLayer, L *lua.LState, t *lua.LTable, base int) int {
		return s.pushJSON(L, t)
	},
}

// indexOf returns the 0-based index of v in the list t, -1 when absent.
func (s *compatLayer) indexOf(t *lua.LTable, v lua.LValue) int {
	want := s.plain(v, 0)
	for i := 1; i <= t.Len(); i++ {
		if s.same(t.RawGetInt(i), want) {
			return i - 1
		}
	}
	return -1
}

// iterator is the Value of an iterator's userdata.
type iterator struct {
	list *lua.LTable
	next int // 1-based
}

func (s *compatLayer) newIterator(t *lua.LTable) *lua.LUserData {
	ud := s.L.NewUserData()
	ud.Value = &iterator{list: t, next: 1}
	ud.Metatable = s.iterMT
	return ud
}

func iterMethods(s *compatLayer) map[string]lua.LGFunction {
	iter := func(L *lua.LState) *iterator {
		ud := L.CheckUserData(1)
		it, ok := ud.Value.(*iterator)
		if !ok {
			L.ArgError(1, "not an iterator (call it as it:next())")
		}
		return it
	}
	return map[string]lua.LGFunction{
		"hasNext": func(L *lua.LState) int {
			it := iter(L)
			L.Push(lua.LBool(it.next <= it.list.Len()))
			return 1
		},
		"next": func(L *lua.LState) int {
			it := iter(L)
			if it.next > it.list.Len() {
				L.RaiseError("next: no more elements")
			}
			i := it.next
			it.next++
			L.Push(s.out(it.list, lua.LNumber(i), it.list.RawGetInt(i), ""))
			return 1
		},
		"size": func(L *lua.LState) int {
			L.Push(lua.LNumber(iter(L).list.Len()))
			return 1
		},
	}
}

// newEnum returns the enum object of value, of the enum kind.
func (s *compatLayer) newEnum(kind, value string) *lua.LTable {
	t := s.L.CreateTable(0, 2)
	t.RawSetString("type", lua.LString(kind))
	t.RawSetString("value", lua.LString(value))
	t.Metatable = s.enumMeta()
	return t
}

// enumMeta returns the call's metatable of enum objects.
func (s *compatLayer) enumMeta() *lua.LTable {
	if mt := s.call.enumMT; mt != nil {
		return mt
	}
	mt := s.L.CreateTable(0, 4)
	mt.RawSetString("__index", s.enumIndex)
	mt.RawSetString("__eq", s.enumEq)
	mt.RawSetString("__tostring", s.enumString)
	mt.RawSetString("__concat", s.enumConcat)
	s.call.enumMT = mt
	return mt
}

// enumValue returns the value of an enum object.
func (s *compatLayer) enumValue(v lua.LValue) (string, bool) {
	t, ok := v.(*lua.LTable)
	if !ok || s.call.enumMT == nil || t.Metatable != lua.LValue(s.call.enumMT) {
		return "", false
	}
	str, ok := t.RawGetString("value").(lua.LString)
	return string(str), ok
}

// enumMethods is the __index of enum objects.
func (s *compatLayer) enumMethods(L *lua.LState) int {
	t := L.CheckTable(1)
	key, _ := L.Get(2).(lua.LString)
	value := func() lua.LValue {
		name, _ := s.enumValue(t)
		return lua.LString(name)
	}
	switch key {
	case "toString", "name", "getValue":
		L.Push(s.bind(t, func(L *lua.LState, base int) int {
			L.Push(value())
			return 1
		}))
	case "equals":
		L.Push(s.bind(t, func(L *lua.LState, base int) int {
			L.Push(lua.LBool(s.same(t, argAt(L, base))))
			return 1
		}))
	case "toJSONString", "hashCode", "getClass":
		L.Push(s.javaMethod(t, string(key)))
	case "ordinal":
		L.Push(s.bind(t, func(L *lua.LState, base int) int {
			kind, _ := t.RawGetString("type").(lua.LString)
			name, _ := s.enumValue(t)
			L.Push(lua.LNumber(slices.Index(enumValues[string(kind)], name)))
			return 1
		}))
	default:
		return 0
	}
	return 1
}

func (s *compatLayer) enumEqual(L *lua.LState) int {
	a, aok := s.enumValue(L.Get(1))
	b, bok := s.enumValue(L.Get(2))
	L.Push(lua.LBool(aok && bok && a == b))
	return 1
}

func (s *compatLayer) enumToString(L *lua.LState) int {
	name, _ := s.enumValue(L.Get(1))
	L.Push(lua.LString(name))
	return 1
}

func (s *compatLayer) enumConcatenate(L *lua.LState) int {
	str := func(v lua.LValue) string {
		if name, ok := s.enumValue(v); ok {
			return name
		}
		if !lua.LVCanConvToString(v) {
			L.RaiseError("attempt to concatenate a %s value", v.Type())
		}
		return lua.LVAsString(v)
	}
	a, b := str(L.Get(1)), str(L.Get(2))
	if len(a)+len(b) > s.sh.maxBytes {
		s.vm.tooLong(L, "string concatenation", float64(len(a)+len(b)))
	}
	L.Push(lua.LString(a + b))
	return 1
}

// encode returns the JSON of v as the API bridge and the JSON helper write
// it: like the Lua kind's codec, with enum objects as their names and XML
// nodes as their text.
func (s *compatLayer) encode(v lua.LValue) ([]byte, error) {
	text := ""
	if n, ok := v.(lua.LNumber); ok {
		text = s.call.numText[n]
	}
	return s.appendJSON(nil, v, text, 0)
}

func (s *compatLayer) appendJSON(b []byte, v lua.LValue, text string, depth int) ([]byte, error) {
	if s.sh.maxBytes > 0 && len(b) > s.sh.maxBytes {
		return nil, fmt.Errorf("json: document larger than the limit of %d bytes", s.sh.maxBytes)
	}
	switch x := v.(type) {
	case *lua.LTable:
		if name, ok := s.enumValue(x); ok {
			return appendString(b, name), nil
		}
		if depth >= jsonMaxDepth {
			return nil, fmt.Errorf("json: nested deeper than %d levels (a table that contains itself?)", jsonMaxDepth)
		}
		return s.appendTable(b, x, depth+1)
	case *lua.LUserData:
		switch u := x.Value.(type) {
		case *xmltree.Node:
			return appendString(b, u.String()), nil
		case nullValue:
			return append(b, "null"...), nil
		}
		return nil, errors.New("json: cannot encode a " + lua.LVAsString(s.L.ToStringMeta(x)))
	}
	return s.vm.codec.appendValue(b, v, text, depth)
}

// appendTable writes t as the codec does (see jsonCodec.appendTable), with
// its values through appendJSON (enum objects and XML nodes as strings); an
// empty FDL List is [].
func (s *compatLayer) appendTable(b []byte, t *lua.LTable, depth int) ([]byte, error) {
	empty := s.marked(t) || t.Metatable == lua.LValue(s.call.listMT)
	return s.vm.codec.appendTableWith(b, t, depth, empty, s.appendJSON)
}

// decode decodes a JSON document into values with methods.
func (s *compatLayer) decode(data []byte) (lua.LValue, error) {
	s.vm.charge(decodeFactor * len(data))
	v, _, err := s.vm.codec.decode(data)
	if err != nil {
		return nil, err
	}
	s.attach(v, 0)
	return v, nil
}
