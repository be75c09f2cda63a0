package lua

import (
	"bytes"
	"math"
	"math/bits"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// Lua 5.2 in a Lua 5.1 runtime. gopher-lua is Lua 5.1 (with goto and
// labels, which it parses and runs as 5.2 does); the orchestrator's FDL
// runtime ran Lua 5.2. What scripts written for it may call and 5.1 lacks is
// added here: table.unpack, table.pack, the bit32 library, rawlen and
// math.log with a base, and in state.go string.rep with a separator and
// xpcall with arguments.
//
// What cannot be added is refused when the script is compiled, so that a
// script relying on it fails to load (check names the file and line) rather
// than running with other values than it says: _ENV, which in 5.2 decides
// where globals are looked up and in 5.1 is an ordinary variable (the
// rewriter of compile.go finds it), and the \x and \z string escapes, which
// 5.1 reads as other text (escapeError).

// openLua52 adds the Lua 5.2 functions to the global table g, whose table
// library is tab and math library mth.
func openLua52(L *lua.LState, g, tab, mth *lua.LTable) {
	g.RawSetString("rawlen", L.NewFunction(rawlen))
	if ln, ok := mth.RawGetString("log").(*lua.LFunction); ok && ln.IsG {
		mth.RawSetString("log", L.NewFunction(logBase(ln.GFunction)))
	}
	tab.RawSetString("unpack", g.RawGetString("unpack"))
	tab.RawSetString("pack", L.NewFunction(tablePack))
	b := L.CreateTable(0, len(bit32Funcs))
	for name, fn := range bit32Funcs {
		b.RawSetString(name, L.NewFunction(fn))
	}
	g.RawSetString("bit32", b)
}

// rawlen is rawlen(v): the length of a table or string without __len.
func rawlen(L *lua.LState) int {
	switch v := L.Get(1).(type) {
	case *lua.LTable:
		L.Push(lua.LNumber(v.Len()))
	case lua.LString:
		L.Push(lua.LNumber(len(v)))
	default:
		L.ArgError(1, "table or string expected")
	}
	return 1
}

// logBase is math.log(x [, base]): Lua 5.1's ignores the base.
func logBase(ln lua.LGFunction) lua.LGFunction {
	return func(L *lua.LState) int {
		if L.GetTop() < 2 || L.Get(2) == lua.LNil {
			return ln(L)
		}
		x, b := float64(L.CheckNumber(1)), float64(L.CheckNumber(2))
		if b == 2 {
			L.Push(lua.LNumber(math.Log2(x)))
		} else if b == 10 {
			L.Push(lua.LNumber(math.Log10(x)))
		} else {
			L.Push(lua.LNumber(math.Log(x) / math.Log(b)))
		}
		return 1
	}
}

// tablePack is table.pack(...): the arguments in a list, with their count
// in field n.
func tablePack(L *lua.LState) int {
	n := L.GetTop()
	t := L.CreateTable(n, 1)
	for i := 1; i <= n; i++ {
		t.RawSetInt(i, L.Get(i))
	}
	t.RawSetString("n", lua.LNumber(n))
	L.Push(t)
	return 1
}

// uint32Arg returns argument n as Lua 5.2's bit32 reads numbers: the
// integer part, modulo 2^32.
func uint32Arg(L *lua.LState, n int) uint32 {
	f := math.Trunc(float64(L.CheckNumber(n)))
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return 0
	}
	f = math.Mod(f, 1<<32)
	if f < 0 {
		f += 1 << 32
	}
	return uint32(f)
}

func pushUint32(L *lua.LState, v uint32) int {
	L.Push(lua.LNumber(v))
	return 1
}

// fold applies op to every argument, starting from zero.
func fold(zero uint32, op func(a, b uint32) uint32) lua.LGFunction {
	return func(L *lua.LState) int {
		v := zero
		for i := 1; i <= L.GetTop(); i++ {
			v = op(v, uint32Arg(L, i))
		}
		return pushUint32(L, v)
	}
}

// shift shifts x left by disp bits, right when disp is negative; bits
// shifted out are lost.
func shift(x uint32, disp int) uint32 {
	switch {
	case disp <= -32 || disp >= 32:
		return 0
	case disp < 0:
		return x >> -disp
	}
	return x << disp
}

// fieldArgs returns the field and width arguments of extract and replace,
// from argument n.
func fieldArgs(L *lua.LState, n int) (field, width int) {
	field = L.CheckInt(n)
	width = L.OptInt(n+1, 1)
	if field < 0 {
		L.ArgError(n, "field cannot be negative")
	}
	if width <= 0 {
		L.ArgError(n+1, "width must be positive")
	}
	if field+width > 32 {
		L.RaiseError("trying to access non-existent bits")
	}
	return field, width
}

func mask(width int) uint32 { return uint32(1<<width - 1) }

// bit32Funcs is Lua 5.2's bit32 library.
var bit32Funcs = map[string]lua.LGFunction{
	"band": fold(math.MaxUint32, func(a, b uint32) uint32 { return a & b }),
	"bor":  fold(0, func(a, b uint32) uint32 { return a | b }),
	"bxor": fold(0, func(a, b uint32) uint32 { return a ^ b }),
	"btest": func(L *lua.LState) int {
		v := uint32(math.MaxUint32)
		for i := 1; i <= L.GetTop(); i++ {
			v &= uint32Arg(L, i)
		}
		L.Push(lua.LBool(v != 0))
		return 1
	},
	"bnot": func(L *lua.LState) int { return pushUint32(L, ^uint32Arg(L, 1)) },
	"lshift": func(L *lua.LState) int {
		return pushUint32(L, shift(uint32Arg(L, 1), L.CheckInt(2)))
	},
	"rshift": func(L *lua.LState) int {
		return pushUint32(L, shift(uint32Arg(L, 1), -L.CheckInt(2)))
	},
	"arshift": func(L *lua.LState) int {
		x, disp := uint32Arg(L, 1), L.CheckInt(2)
		if disp < 0 || x&(1<<31) == 0 {
			return pushUint32(L, shift(x, -disp))
		}
		if disp >= 32 {
			return pushUint32(L, math.MaxUint32)
		}
		return pushUint32(L, uint32(int32(x)>>disp))
	},
	"lrotate": func(L *lua.LState) int {
		return pushUint32(L, bits.RotateLeft32(uint32Arg(L, 1), L.CheckInt(2)%32))
	},
	"rrotate": func(L *lua.LState) int {
		return pushUint32(L, bits.RotateLeft32(uint32Arg(L, 1), -(L.CheckInt(2)%32)))
	},
	"extract": func(L *lua.LState) int {
		n := uint32Arg(L, 1)
		field, width := fieldArgs(L, 2)
		return pushUint32(L, n>>field&mask(width))
	},
	"replace": func(L *lua.LState) int {
		n, v := uint32Arg(L, 1), uint32Arg(L, 2)
		field, width := fieldArgs(L, 3)
		m := mask(width)
		return pushUint32(L, n&^(m<<field)|(v&m)<<field)
	},
}

// envName is Lua 5.2's environment variable.
const envName = "_ENV"

// envError is the message of a script that names _ENV.
const envError = "_ENV is Lua 5.2: this runtime is Lua 5.1 (gopher-lua), where _ENV is an ordinary variable " +
	"and does not change where globals are looked up; keep the values in a table of your own and index it " +
	"(local env = {...}; env.x = 1), or use plain globals"

// escapeError returns the line of the first \x or \z escape in a quoted
// string of src, and why the script is refused, or 0 and "". Lua 5.2 reads
// "\x41" as "A" and "\z" as skipping the white space after it; Lua 5.1, and
// so gopher-lua, reads them as "x41" and "z": a script written for 5.2 would
// run with other strings than it says. Comments and long strings ([[...]])
// have no escapes.
func escapeError(src []byte) (int, string) {
	line := 1
	// longBracket returns the level of a long bracket opening at i ([[,
	// [=[, ...), -1 when there is none.
	longBracket := func(i int) int {
		if i >= len(src) || src[i] != '[' {
			return -1
		}
		j := i + 1
		for j < len(src) && src[j] == '=' {
			j++
		}
		if j < len(src) && src[j] == '[' {
			return j - i - 1
		}
		return -1
	}
	// skipLong skips the long bracket of level opening at i and returns
	// the index after its end.
	skipLong := func(i, level int) int {
		closing := "]" + strings.Repeat("=", level) + "]"
		end := bytes.Index(src[i:], []byte(closing))
		if end < 0 {
			end = len(src) - i
		}
		line += bytes.Count(src[i:i+end], []byte("\n"))
		return i + end + len(closing)
	}
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == '\n':
			line++
			i++
		case c == '-' && i+1 < len(src) && src[i+1] == '-':
			if level := longBracket(i + 2); level >= 0 {
				i = skipLong(i+2, level)
				continue
			}
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case c == '[' && longBracket(i) >= 0:
			i = skipLong(i, longBracket(i))
		case c == '"' || c == '\'':
			for i++; i < len(src) && src[i] != c && src[i] != '\n'; i++ {
				if src[i] != '\\' || i+1 >= len(src) {
					continue
				}
				i++
				switch src[i] {
				case 'x':
					return line, `"\x" escapes are Lua 5.2: this runtime is Lua 5.1 (gopher-lua), where "\x41" is "x41"; write a decimal escape ("\65") or string.char(0x41)`
				case 'z':
					return line, `"\z" escapes are Lua 5.2: this runtime is Lua 5.1 (gopher-lua), where "\z" is "z"; join the parts with ..`
				case '\n':
					line++
				}
			}
			i++
		default:
			i++
		}
	}
	return 0, ""
}
