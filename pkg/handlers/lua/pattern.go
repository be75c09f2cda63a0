package lua

import (
	"context"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// Lua string patterns (string.find, match, gmatch and gsub), as Lua 5.1
// defines them, matched by a backtracking matcher that looks at the call's
// context as it goes. gopher-lua's matcher does not: a pattern such as
// string.rep("a*", 20) .. "b" on a long subject backtracks for minutes in
// one Go call the VM cannot interrupt, long after the call's deadline.

// Limits of the matcher.
const (
	maxCaptures = 32
	// patternMaxDepth bounds the matcher's recursion, which grows with
	// the pattern's items (captures, ?, * and -), not with the subject.
	patternMaxDepth = 200
	// patternCheckEvery is how many steps the matcher takes between two
	// looks at the context (a power of two).
	patternCheckEvery = 1 << 10
)

const (
	capUnfinished = -1
	capPosition   = -2
)

// patternError is an error of the pattern (or the context's end), raised
// as a Lua error by the string function that matched.
type patternError string

// matchState is the state of one match of a pattern against a subject.
type matchState struct {
	src, pat string
	level    int
	capture  [maxCaptures]struct{ init, len int }
	depth    int
	steps    uint
	ctx      context.Context // nil: never stops
}

func newMatch(ctx context.Context, src, pat string) *matchState {
	return &matchState{src: src, pat: pat, ctx: ctx}
}

// step counts a step of the matcher and stops it when the context is done.
func (m *matchState) step() {
	m.steps++
	if m.steps%patternCheckEvery == 0 && m.ctx != nil {
		if err := m.ctx.Err(); err != nil {
			panic(patternError(err.Error()))
		}
	}
}

// patAt returns the pattern's byte at p, 0 past its end (as C's NUL).
func (m *matchState) patAt(p int) byte {
	if p < len(m.pat) {
		return m.pat[p]
	}
	return 0
}

// srcAt returns the subject's byte at s, 0 past its end.
func (m *matchState) srcAt(s int) byte {
	if s < len(m.src) {
		return m.src[s]
	}
	return 0
}

// classEnd returns the end of the single-character class at p.
func (m *matchState) classEnd(p int) int {
	c := m.pat[p]
	p++
	switch c {
	case '%':
		if p >= len(m.pat) {
			panic(patternError("malformed pattern (ends with '%')"))
		}
		return p + 1
	case '[':
		if m.patAt(p) == '^' {
			p++
		}
		for { // the first character is part of the set, even a ']'
			if p >= len(m.pat) {
				panic(patternError("malformed pattern (missing ']')"))
			}
			c := m.pat[p]
			p++
			if c == '%' && p < len(m.pat) {
				p++
			}
			if p >= len(m.pat) {
				panic(patternError("malformed pattern (missing ']')"))
			}
			if m.pat[p] == ']' {
				return p + 1
			}
		}
	}
	return p
}

// matchClass reports whether c is in the class %cl.
func matchClass(c, cl byte) bool {
	var res bool
	switch cl | 0x20 {
	case 'a':
		res = isAlpha(c)
	case 'c':
		res = c < 32 || c == 127
	case 'd':
		res = c >= '0' && c <= '9'
	case 'l':
		res = c >= 'a' && c <= 'z'
	case 'p':
		res = c > 32 && c < 127 && !isAlpha(c) && !(c >= '0' && c <= '9')
	case 's':
		res = c == ' ' || (c >= '\t' && c <= '\r')
	case 'u':
		res = c >= 'A' && c <= 'Z'
	case 'w':
		res = isAlpha(c) || (c >= '0' && c <= '9')
	case 'x':
		res = (c >= '0' && c <= '9') || (c|0x20 >= 'a' && c|0x20 <= 'f')
	case 'z':
		res = c == 0
	default:
		return cl == c
	}
	if cl >= 'A' && cl <= 'Z' {
		return !res
	}
	return res
}

func isAlpha(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }

// matchBracket reports whether c is in the set that starts with '[' at p
// and ends with ']' at ec.
func (m *matchState) matchBracket(c byte, p, ec int) bool {
	sig := true
	if m.pat[p+1] == '^' {
		sig = false
		p++
	}
	for p++; p < ec; p++ {
		switch {
		case m.pat[p] == '%':
			p++
			if matchClass(c, m.pat[p]) {
				return sig
			}
		case m.pat[p+1] == '-' && p+2 < ec:
			if m.pat[p] <= c && c <= m.pat[p+2] {
				return sig
			}
			p += 2
		case m.pat[p] == c:
			return sig
		}
	}
	return !sig
}

// single reports whether the subject's byte at s matches the class at p,
// which ends at ep.
func (m *matchState) single(s, p, ep int) bool {
	if s >= len(m.src) {
		return false
	}
	c := m.src[s]
	switch m.pat[p] {
	case '.':
		return true
	case '%':
		return matchClass(c, m.pat[p+1])
	case '[':
		return m.matchBracket(c, p, ep-1)
	}
	return m.pat[p] == c
}

// match matches the pattern from p against the subject from s and returns
// the end of the match, or -1.
func (m *matchState) match(s, p int) int {
	m.depth++
	if m.depth > patternMaxDepth {
		panic(patternError("pattern too complex"))
	}
	defer func() { m.depth-- }()
	for {
		m.step()
		if p >= len(m.pat) {
			return s
		}
		switch m.pat[p] {
		case '(':
			if m.patAt(p+1) == ')' {
				return m.startCapture(s, p+2, capPosition)
			}
			return m.startCapture(s, p+1, capUnfinished)
		case ')':
			return m.endCapture(s, p+1)
		case '$':
			if p+1 == len(m.pat) {
				if s == len(m.src) {
					return s
				}
				return -1
			}
		case '%':
			switch m.patAt(p + 1) {
			case 'b':
				if s = m.matchBalance(s, p+2); s < 0 {
					return -1
				}
				p += 4
				continue
			case 'f':
				p += 2
				if m.patAt(p) != '[' {
					panic(patternError("missing '[' after '%f' in pattern"))
				}
				ep := m.classEnd(p)
				var prev byte
				if s > 0 {
					prev = m.src[s-1]
				}
				if m.matchBracket(prev, p, ep-1) || !m.matchBracket(m.srcAt(s), p, ep-1) {
					return -1
				}
				p = ep
				continue
			default:
				if d := m.patAt(p + 1); d >= '0' && d <= '9' {
					if s = m.matchCapture(s, d); s < 0 {
						return -1
					}
					p += 2
					continue
				}
			}
		}
		ep := m.classEnd(p)
		ok := m.single(s, p, ep)
		switch m.patAt(ep) {
		case '?':
			if ok {
				if r := m.match(s+1, ep+1); r >= 0 {
					return r
				}
			}
			p = ep + 1
			continue
		case '*':
			return m.maxExpand(s, p, ep)
		case '+':
			if !ok {
				return -1
			}
			return m.maxExpand(s+1, p, ep)
		case '-':
			return m.minExpand(s, p, ep)
		}
		if !ok {
			return -1
		}
		s++
		p = ep
	}
}

func (m *matchState) maxExpand(s, p, ep int) int {
	i := 0
	for m.single(s+i, p, ep) {
		m.step()
		i++
	}
	for ; i >= 0; i-- {
		if r := m.match(s+i, ep+1); r >= 0 {
			return r
		}
	}
	return -1
}

func (m *matchState) minExpand(s, p, ep int) int {
	for {
		if r := m.match(s, ep+1); r >= 0 {
			return r
		}
		if !m.single(s, p, ep) {
			return -1
		}
		s++
	}
}

func (m *matchState) startCapture(s, p, what int) int {
	if m.level >= maxCaptures {
		panic(patternError("too many captures"))
	}
	m.capture[m.level].init, m.capture[m.level].len = s, what
	m.level++
	r := m.match(s, p)
	if r < 0 {
		m.level--
	}
	return r
}

func (m *matchState) endCapture(s, p int) int {
	l := -1
	for i := m.level - 1; i >= 0; i-- {
		if m.capture[i].len == capUnfinished {
			l = i
			break
		}
	}
	if l < 0 {
		panic(patternError("invalid pattern capture"))
	}
	m.capture[l].len = s - m.capture[l].init
	r := m.match(s, p)
	if r < 0 {
		m.capture[l].len = capUnfinished
	}
	return r
}

func (m *matchState) matchBalance(s, p int) int {
	if p+1 >= len(m.pat) {
		panic(patternError("unbalanced pattern"))
	}
	open, closing := m.pat[p], m.pat[p+1]
	if s >= len(m.src) || m.src[s] != open {
		return -1
	}
	depth := 1
	for s++; s < len(m.src); s++ {
		m.step()
		switch m.src[s] {
		case closing:
			if depth--; depth == 0 {
				return s + 1
			}
		case open:
			depth++
		}
	}
	return -1
}

func (m *matchState) matchCapture(s int, d byte) int {
	l := int(d) - '1'
	if l < 0 || l >= m.level || m.capture[l].len == capUnfinished {
		panic(patternError("invalid capture index"))
	}
	n := m.capture[l].len
	if n < 0 || len(m.src)-s < n {
		return -1
	}
	init := m.capture[l].init
	if m.src[init:init+n] != m.src[s:s+n] {
		return -1
	}
	return s + n
}

// find looks for the pattern in the subject from init on (and at init
// only when the pattern starts with '^') and returns the match's bounds,
// or -1, -1.
func (m *matchState) find(init int) (start, end int) {
	p := 0
	anchor := m.patAt(0) == '^'
	if anchor {
		p = 1
	}
	for s := init; s <= len(m.src); s++ {
		m.level = 0
		if e := m.match(s, p); e >= 0 {
			return s, e
		}
		if anchor {
			break
		}
	}
	return -1, -1
}

// captureCount is the number of values a match from s to e gives: its
// captures, or the whole match when it has none.
func (m *matchState) captureCount() int {
	if m.level == 0 {
		return 1
	}
	return m.level
}

// captureValue returns capture i of a match from s to e: a string or, for
// a position capture, its position.
func (m *matchState) captureValue(i, s, e int) lua.LValue {
	if i >= m.level {
		if i != 0 {
			panic(patternError("invalid capture index"))
		}
		return lua.LString(m.src[s:e])
	}
	c := m.capture[i]
	switch c.len {
	case capUnfinished:
		panic(patternError("unfinished capture"))
	case capPosition:
		return lua.LNumber(c.init + 1)
	}
	return lua.LString(m.src[c.init : c.init+c.len])
}

// pushCaptures pushes the values of a match from s to e and returns their
// number; with whole false, a match without captures pushes nothing.
func (m *matchState) pushCaptures(L *lua.LState, s, e int, whole bool) int {
	n := m.level
	if n == 0 && whole {
		n = 1
	}
	for i := range n {
		L.Push(m.captureValue(i, s, e))
	}
	return n
}

// patternSpecials are the characters that make a pattern more than a
// plain string for string.find.
const patternSpecials = "^$*+?.([%-"

// patterns runs f, raising a pattern error (or the end of the call's
// context, which a pattern error may be) as a Lua error.
func (vm *vmState) patterns(L *lua.LState, f func() int) (n int) {
	defer func() {
		if v := recover(); v != nil {
			msg, ok := v.(patternError)
			if !ok {
				panic(v)
			}
			vm.stopIfDone(L)
			L.RaiseError("%s", string(msg))
		}
	}()
	return f()
}

// searchStart is the 0-based start of a search from the 1-based, possibly
// negative, init of string.find and string.match.
func searchStart(init, n int) int {
	if init < 0 {
		init += n + 1
	}
	return min(max(init-1, 0), n)
}

// strFind is string.find.
func (vm *vmState) strFind(L *lua.LState) int {
	return vm.findOrMatch(L, true)
}

// strMatch is string.match.
func (vm *vmState) strMatch(L *lua.LState) int {
	return vm.findOrMatch(L, false)
}

func (vm *vmState) findOrMatch(L *lua.LState, find bool) int {
	str := L.CheckString(1)
	pat := L.CheckString(2)
	init := searchStart(L.OptInt(3, 1), len(str))
	if find && (lua.LVAsBool(L.Get(4)) || !strings.ContainsAny(pat, patternSpecials)) {
		if i := strings.Index(str[init:], pat); i >= 0 {
			L.Push(lua.LNumber(init + i + 1))
			L.Push(lua.LNumber(init + i + len(pat)))
			return 2
		}
		L.Push(lua.LNil)
		return 1
	}
	return vm.patterns(L, func() int {
		m := newMatch(L.Context(), str, pat)
		s, e := m.find(init)
		if s < 0 {
			L.Push(lua.LNil)
			return 1
		}
		if find {
			L.Push(lua.LNumber(s + 1))
			L.Push(lua.LNumber(e))
			return 2 + m.pushCaptures(L, s, e, false)
		}
		return m.pushCaptures(L, s, e, true)
	})
}

// strGmatch is string.gmatch, finding one match per step.
func (vm *vmState) strGmatch(L *lua.LState) int {
	str := L.CheckString(1)
	pat := L.CheckString(2)
	pos := 0
	L.Push(L.NewFunction(func(L *lua.LState) int {
		return vm.patterns(L, func() int {
			m := newMatch(L.Context(), str, pat)
			for s := pos; s <= len(str); s++ {
				m.level = 0
				if e := m.match(s, 0); e >= 0 {
					pos = e
					if e == s {
						pos++
					}
					return m.pushCaptures(L, s, e, true)
				}
			}
			pos = len(str) + 1
			return 0
		})
	}))
	return 1
}

// strGsub is string.gsub, which stops at the string limit.
func (vm *vmState) strGsub(L *lua.LState) int {
	str := L.CheckString(1)
	pat := L.CheckString(2)
	L.CheckTypes(3, lua.LTString, lua.LTTable, lua.LTFunction)
	repl := L.Get(3)
	limit := L.OptInt(4, len(str)+1)
	return vm.patterns(L, func() int {
		m := newMatch(L.Context(), str, pat)
		p := 0
		anchor := m.patAt(0) == '^'
		if anchor {
			p = 1
		}
		var out []byte
		s, count := 0, 0
		for count < limit {
			m.level = 0
			e := m.match(s, p)
			if e >= 0 {
				count++
				if r, ok := vm.gsubReplace(L, m, s, e, repl); ok {
					out = append(out, r...)
				} else {
					out = append(out, str[s:e]...)
				}
			}
			switch {
			case e > s:
				s = e
			case s < len(str):
				out = append(out, str[s])
				s++
			default:
				s = len(str) + 1
			}
			if len(out) > vm.opts.MaxStringBytes {
				vm.tooLong(L, "string.gsub", float64(len(out)))
			}
			if s > len(str) || anchor {
				break
			}
		}
		if s < len(str) {
			out = append(out, str[s:]...)
		}
		if len(out) > vm.opts.MaxStringBytes {
			vm.tooLong(L, "string.gsub", float64(len(out)))
		}
		vm.charge(len(out))
		L.Push(lua.LString(out))
		L.Push(lua.LNumber(count))
		return 2
	})
}

// gsubReplace returns the replacement of the match from s to e; ok is false
// when the match stays as it is (a table or function gave nil or false).
func (vm *vmState) gsubReplace(L *lua.LState, m *matchState, s, e int, repl lua.LValue) (string, bool) {
	switch r := repl.(type) {
	case lua.LString:
		t := string(r)
		var b strings.Builder
		for i := 0; i < len(t); i++ {
			c := t[i]
			if c != '%' || i+1 == len(t) {
				b.WriteByte(c)
				continue
			}
			i++
			c = t[i]
			switch {
			case c == '0':
				b.WriteString(m.src[s:e])
			case c >= '1' && c <= '9':
				b.WriteString(lua.LVAsString(m.captureValue(int(c-'1'), s, e)))
			default:
				b.WriteByte(c)
			}
			if b.Len() > vm.opts.MaxStringBytes {
				vm.tooLong(L, "string.gsub", float64(b.Len()))
			}
		}
		return b.String(), true
	case *lua.LTable, *lua.LFunction:
		var v lua.LValue
		if t, ok := r.(*lua.LTable); ok {
			v = L.GetTable(t, m.captureValue(0, s, e))
		} else {
			L.Push(r)
			n := m.pushCaptures(L, s, e, true)
			L.Call(n, 1)
			v = L.Get(-1)
			L.Pop(1)
		}
		switch v := v.(type) {
		case *lua.LNilType:
			return "", false
		case lua.LBool:
			if !bool(v) {
				return "", false
			}
		case lua.LString, lua.LNumber:
			return lua.LVAsString(v), true
		}
		L.RaiseError("invalid replacement value (a %s)", v.Type())
	}
	return "", false
}
