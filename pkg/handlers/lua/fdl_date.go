package lua

import (
	"math"
	"strconv"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/triggerbus/triggerbus/internal/javadate"
)

// FDLDateHelper: times are milliseconds since the epoch, written and read
// with Java date patterns ("yyyy-MM-dd HH:mm:ss", "dd MMM yyyy",
// "HH:mm:ss.SSS Z"). Times are in UTC unless a zone is given, and the only
// zones are UTC and fixed offsets ("+02:00"): the sandbox reads no time zone
// database.
//
//	getTimestamp()                  now
//	getTimestamp(str, pattern [, zone])
//	getTimestamp(str)               RFC 3339, or "yyyy-MM-dd HH:mm:ss"
//	getTimestamp(table)             a table as os.date("*t") returns it, taken as UTC
//	getString(ms [, pattern [, zone]])   default pattern "yyyy-MM-dd HH:mm:ss"
//	addDays(ms, n), addHours(ms, n), addMinutes(ms, n), addSeconds(ms, n)
//
// A string that does not match its pattern raises a Lua error.

// zone reads the zone argument of a date function: UTC when absent.
func zone(L *lua.LState, n int) *time.Location {
	if L.GetTop() < n || L.Get(n) == lua.LNil {
		return time.UTC
	}
	s := strings.TrimSpace(L.CheckString(n))
	loc, read, ok := javadate.ReadZone(s)
	if !ok || read != len(s) {
		L.ArgError(n, "unknown zone "+strconv.Quote(s)+" (want UTC or an offset such as +02:00)")
	}
	return loc
}

func (s *compatLayer) pattern(L *lua.LState, n int) javadate.Pattern {
	p := L.OptString(n, javadate.DefaultPattern)
	pat, err := javadate.Compile(p)
	if err != nil {
		L.ArgError(n, "date pattern "+strconv.Quote(p)+": "+err.Error())
	}
	return pat
}

func (s *compatLayer) dateMethods() map[string]lua.LGFunction {
	add := func(unit time.Duration) lua.LGFunction {
		return func(L *lua.LState) int {
			base := s.helperBase(L, "FDLDateHelper")
			ms := float64(L.CheckNumber(base))
			n := float64(L.CheckNumber(base + 1))
			L.Push(lua.LNumber(ms + n*float64(unit/time.Millisecond)))
			return 1
		}
	}
	return map[string]lua.LGFunction{
		"getTimestamp": func(L *lua.LState) int {
			base := s.helperBase(L, "FDLDateHelper")
			switch v := argAt(L, base).(type) {
			case *lua.LNilType:
				L.Push(lua.LNumber(time.Now().UnixMilli()))
			case lua.LNumber:
				L.Push(v)
			case *lua.LTable:
				field := func(name string, def int) int {
					if n, ok := v.RawGetString(name).(lua.LNumber); ok {
						return int(n)
					}
					return def
				}
				t := time.Date(field("year", 1970), time.Month(field("month", 1)), field("day", 1),
					field("hour", 0), field("min", 0), field("sec", 0), 0, time.UTC)
				L.Push(lua.LNumber(t.UnixMilli()))
			case lua.LString:
				str := string(v)
				if L.GetTop() == base {
					if t, err := time.Parse(time.RFC3339Nano, str); err == nil {
						L.Push(lua.LNumber(t.UnixMilli()))
						return 1
					}
				}
				pat := s.pattern(L, base+1)
				t, err := pat.Parse(str, zone(L, base+2), time.Now())
				if err != nil {
					L.RaiseError("getTimestamp: cannot read %q with the pattern %q: %v", str, L.OptString(base+1, javadate.DefaultPattern), err)
				}
				L.Push(lua.LNumber(t.UnixMilli()))
			default:
				L.ArgError(base, "want a string, a number or a date table")
			}
			return 1
		},
		"getString": func(L *lua.LState) int {
			base := s.helperBase(L, "FDLDateHelper")
			ms := float64(L.CheckNumber(base))
			if math.IsNaN(ms) || math.Abs(ms) > 8.64e15 {
				L.ArgError(base, "not a time in milliseconds")
			}
			pat := s.pattern(L, base+1)
			t := time.UnixMilli(int64(ms)).In(zone(L, base+2))
			L.Push(lua.LString(pat.Format(t)))
			return 1
		},
		"addDays":    add(24 * time.Hour),
		"addHours":   add(time.Hour),
		"addMinutes": add(time.Minute),
		"addSeconds": add(time.Second),
	}
}
