package handlers

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// FDLDateHelper: times are milliseconds since the epoch, written and read
// with Java date patterns ("yyyy-MM-dd HH:mm:ss", "dd MMM yyyy", "HH:mm:ss.SSS Z").
// Times are in UTC unless a zone is given, and the only zones are UTC and
// fixed offsets ("+02:00"): the sandbox reads no time zone database.
//
//	getTimestamp()                  now
//	getTimestamp(str, pattern [, zone])
//	getTimestamp(str)               RFC 3339, or "yyyy-MM-dd HH:mm:ss"
//	getTimestamp(table)             a table as os.date("*t") returns it, taken as UTC
//	getString(ms [, pattern [, zone]])   default pattern "yyyy-MM-dd HH:mm:ss"
//	addDays(ms, n), addHours(ms, n), addMinutes(ms, n), addSeconds(ms, n)
//
// A string that does not match its pattern raises a Lua error.

const fdlDefaultDatePattern = "yyyy-MM-dd HH:mm:ss"

// fdlDateToken is a piece of a date pattern: a run of one pattern letter,
// or literal text (letter 0).
type fdlDateToken struct {
	letter byte
	count  int
	lit    string
}

// fdlDateLetters are the pattern letters understood. Y (week year) is
// taken as y, L (stand-alone month) as M.
const fdlDateLetters = "GyYMLdDEuaHkKhmsSzZX"

func fdlParsePattern(p string) ([]fdlDateToken, error) {
	var toks []fdlDateToken
	lit := func(s string) {
		if n := len(toks); n > 0 && toks[n-1].letter == 0 {
			toks[n-1].lit += s
			return
		}
		toks = append(toks, fdlDateToken{lit: s})
	}
	for i := 0; i < len(p); {
		c := p[i]
		switch {
		case c == '\'':
			if i+1 < len(p) && p[i+1] == '\'' {
				lit("'")
				i += 2
				continue
			}
			var b strings.Builder
			j := i + 1
			for ; j < len(p); j++ {
				if p[j] == '\'' {
					if j+1 < len(p) && p[j+1] == '\'' {
						b.WriteByte('\'')
						j++
						continue
					}
					break
				}
				b.WriteByte(p[j])
			}
			if j >= len(p) {
				return nil, errors.New("unterminated quote")
			}
			lit(b.String())
			i = j + 1
		case ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z'):
			j := i
			for j < len(p) && p[j] == c {
				j++
			}
			if strings.IndexByte(fdlDateLetters, c) < 0 {
				return nil, fmt.Errorf("unsupported pattern letter %q", c)
			}
			switch c {
			case 'Y':
				c = 'y'
			case 'L':
				c = 'M'
			}
			toks = append(toks, fdlDateToken{letter: c, count: j - i})
			i = j
		default:
			lit(string(c))
			i++
		}
	}
	return toks, nil
}

func fdlPad(b []byte, n, width int) []byte {
	s := strconv.Itoa(n)
	for i := len(s); i < width; i++ {
		b = append(b, '0')
	}
	return append(b, s...)
}

// fdlFormatDate writes t with a parsed pattern.
func fdlFormatDate(t time.Time, toks []fdlDateToken) string {
	var b []byte
	for _, tk := range toks {
		n := tk.count
		switch tk.letter {
		case 0:
			b = append(b, tk.lit...)
		case 'G':
			if t.Year() > 0 {
				b = append(b, "AD"...)
			} else {
				b = append(b, "BC"...)
			}
		case 'y':
			if n == 2 {
				b = fdlPad(b, t.Year()%100, 2)
			} else {
				b = fdlPad(b, t.Year(), n)
			}
		case 'M':
			switch {
			case n >= 4:
				b = append(b, t.Month().String()...)
			case n == 3:
				b = append(b, t.Month().String()[:3]...)
			default:
				b = fdlPad(b, int(t.Month()), n)
			}
		case 'd':
			b = fdlPad(b, t.Day(), n)
		case 'D':
			b = fdlPad(b, t.YearDay(), n)
		case 'E':
			if n >= 4 {
				b = append(b, t.Weekday().String()...)
			} else {
				b = append(b, t.Weekday().String()[:3]...)
			}
		case 'u':
			wd := int(t.Weekday())
			if wd == 0 {
				wd = 7
			}
			b = fdlPad(b, wd, n)
		case 'a':
			if t.Hour() < 12 {
				b = append(b, "AM"...)
			} else {
				b = append(b, "PM"...)
			}
		case 'H':
			b = fdlPad(b, t.Hour(), n)
		case 'k':
			h := t.Hour()
			if h == 0 {
				h = 24
			}
			b = fdlPad(b, h, n)
		case 'K':
			b = fdlPad(b, t.Hour()%12, n)
		case 'h':
			h := t.Hour() % 12
			if h == 0 {
				h = 12
			}
			b = fdlPad(b, h, n)
		case 'm':
			b = fdlPad(b, t.Minute(), n)
		case 's':
			b = fdlPad(b, t.Second(), n)
		case 'S':
			b = fdlPad(b, t.Nanosecond()/int(time.Millisecond), n)
		case 'z':
			_, off := t.Zone()
			if off == 0 {
				b = append(b, "UTC"...)
			} else {
				b = append(b, "GMT"...)
				b = fdlAppendOffset(b, off, true)
			}
		case 'Z':
			_, off := t.Zone()
			b = fdlAppendOffset(b, off, false)
		case 'X':
			_, off := t.Zone()
			switch {
			case off == 0:
				b = append(b, 'Z')
			case n == 1:
				start := len(b)
				b = fdlAppendOffset(b, off, false)[:start+3]
			default:
				b = fdlAppendOffset(b, off, n >= 3)
			}
		}
	}
	return string(b)
}

func fdlAppendOffset(b []byte, off int, colon bool) []byte {
	sign := byte('+')
	if off < 0 {
		sign, off = '-', -off
	}
	b = append(b, sign)
	b = fdlPad(b, off/3600, 2)
	if colon {
		b = append(b, ':')
	}
	return fdlPad(b, off/60%60, 2)
}

// fdlNumeric reports whether a pattern letter is read as a number.
func fdlNumeric(tk fdlDateToken) bool {
	switch tk.letter {
	case 'y', 'd', 'D', 'u', 'H', 'k', 'K', 'h', 'm', 's', 'S':
		return true
	case 'M':
		return tk.count < 3
	}
	return false
}

// fdlParseDate reads s with a parsed pattern. Fields the pattern lacks are
// those of 1970-01-01 00:00:00; out-of-range values roll over, as Java's
// lenient parsing does.
func fdlParseDate(s string, toks []fdlDateToken, loc *time.Location, now time.Time) (time.Time, error) {
	year, month, day, yday := 1970, 1, 1, 0
	hour, minute, sec, ms := 0, 0, 0, 0
	pm, hasAmPm, hour12 := false, false, false
	pos := 0
	for i, tk := range toks {
		rest := s[pos:]
		if tk.letter == 0 {
			if !strings.HasPrefix(rest, tk.lit) {
				return time.Time{}, fmt.Errorf("want %q at offset %d", tk.lit, pos)
			}
			pos += len(tk.lit)
			continue
		}
		if fdlNumeric(tk) {
			width := 0
			if i+1 < len(toks) && fdlNumeric(toks[i+1]) {
				width = tk.count // abutting numbers: each takes its pattern's width
			}
			j := 0
			for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' && (width == 0 || j < width) {
				j++
			}
			if j == 0 || j > 9 {
				return time.Time{}, fmt.Errorf("want a number for %s at offset %d", strings.Repeat(string(tk.letter), tk.count), pos)
			}
			n, _ := strconv.Atoi(rest[:j])
			pos += j
			switch tk.letter {
			case 'y':
				if tk.count <= 2 && j == 2 {
					n = fdlCentury(n, now.Year())
				}
				year = n
			case 'M':
				month = n
			case 'd':
				day = n
			case 'D':
				yday = n
			case 'H', 'k':
				hour = n
				if tk.letter == 'k' && n == 24 {
					hour = 0
				}
			case 'K', 'h':
				hour, hour12 = n%12, true
			case 'm':
				minute = n
			case 's':
				sec = n
			case 'S':
				ms = n
			}
			continue
		}
		lower := strings.ToLower(rest)
		switch tk.letter {
		case 'M':
			found := false
			for m := time.January; m <= time.December; m++ {
				for _, name := range []string{m.String(), m.String()[:3]} {
					if strings.HasPrefix(lower, strings.ToLower(name)) {
						month, found = int(m), true
						pos += len(name)
						break
					}
				}
				if found {
					break
				}
			}
			if !found {
				return time.Time{}, fmt.Errorf("want a month name at offset %d", pos)
			}
		case 'E':
			found := false
			for d := time.Sunday; d <= time.Saturday && !found; d++ {
				for _, name := range []string{d.String(), d.String()[:3]} {
					if strings.HasPrefix(lower, strings.ToLower(name)) {
						found = true
						pos += len(name)
						break
					}
				}
			}
			if !found {
				return time.Time{}, fmt.Errorf("want a day name at offset %d", pos)
			}
		case 'a':
			switch {
			case strings.HasPrefix(lower, "am"):
				hasAmPm = true
			case strings.HasPrefix(lower, "pm"):
				hasAmPm, pm = true, true
			default:
				return time.Time{}, fmt.Errorf("want AM or PM at offset %d", pos)
			}
			pos += 2
		case 'G':
			if !strings.HasPrefix(lower, "ad") {
				return time.Time{}, fmt.Errorf("want AD at offset %d", pos)
			}
			pos += 2
		case 'z', 'Z', 'X':
			z, n, ok := fdlReadZone(rest)
			if !ok {
				return time.Time{}, fmt.Errorf("want a time zone at offset %d", pos)
			}
			loc = z
			pos += n
		}
	}
	if strings.TrimSpace(s[pos:]) != "" {
		return time.Time{}, fmt.Errorf("unexpected %q at offset %d", s[pos:], pos)
	}
	if hour12 && hasAmPm && pm {
		hour += 12
	}
	if yday > 0 {
		month, day = 1, yday
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, ms*int(time.Millisecond), loc), nil
}

// fdlCentury puts a two-digit year within 80 years before and 20 after
// thisYear, as Java does.
func fdlCentury(yy, thisYear int) int {
	y := thisYear - thisYear%100 + yy
	switch {
	case y > thisYear+20:
		y -= 100
	case y <= thisYear-80:
		y += 100
	}
	return y
}

// fdlReadZone reads a zone at the start of s: Z, UTC, GMT, or an offset
// (+02, +0200, +02:00), optionally after UTC or GMT. It returns the
// location and how many bytes it read.
func fdlReadZone(s string) (*time.Location, int, bool) {
	n := 0
	upper := strings.ToUpper(s)
	switch {
	case strings.HasPrefix(upper, "UTC"), strings.HasPrefix(upper, "GMT"):
		n = 3
	case strings.HasPrefix(upper, "Z"):
		return time.UTC, 1, true
	}
	rest := s[n:]
	if rest == "" || (rest[0] != '+' && rest[0] != '-') {
		if n > 0 {
			return time.UTC, n, true
		}
		return nil, 0, false
	}
	digits := func(at int) (int, bool) {
		if at+2 > len(rest) || rest[at] < '0' || rest[at] > '9' || rest[at+1] < '0' || rest[at+1] > '9' {
			return 0, false
		}
		return int(rest[at]-'0')*10 + int(rest[at+1]-'0'), true
	}
	hh, ok := digits(1)
	if !ok {
		// One digit, after UTC or GMT: GMT+2.
		if n > 0 && len(rest) > 1 && rest[1] >= '0' && rest[1] <= '9' {
			return fdlOffsetZone(rest[0], int(rest[1]-'0'), 0), n + 2, true
		}
		return nil, 0, false
	}
	read := 3
	mm := 0
	if m, ok := digits(3); ok {
		mm, read = m, 5
	} else if len(rest) > 3 && rest[3] == ':' {
		if m, ok := digits(4); ok {
			mm, read = m, 6
		}
	}
	if hh > 18 || mm > 59 {
		return nil, 0, false
	}
	return fdlOffsetZone(rest[0], hh, mm), n + read, true
}

func fdlOffsetZone(sign byte, hh, mm int) *time.Location {
	off := hh*3600 + mm*60
	if sign == '-' {
		off = -off
	}
	if off == 0 {
		return time.UTC
	}
	return time.FixedZone("", off)
}

// fdlZone reads the zone argument of a date function: UTC when absent.
func fdlZone(L *lua.LState, n int) *time.Location {
	if L.GetTop() < n || L.Get(n) == lua.LNil {
		return time.UTC
	}
	s := strings.TrimSpace(L.CheckString(n))
	loc, read, ok := fdlReadZone(s)
	if !ok || read != len(s) {
		L.ArgError(n, "unknown zone "+strconv.Quote(s)+" (want UTC or an offset such as +02:00)")
	}
	return loc
}

func (s *fdlState) pattern(L *lua.LState, n int) []fdlDateToken {
	p := L.OptString(n, fdlDefaultDatePattern)
	toks, err := fdlParsePattern(p)
	if err != nil {
		L.ArgError(n, "date pattern "+strconv.Quote(p)+": "+err.Error())
	}
	return toks
}

func (s *fdlState) dateMethods() map[string]lua.LGFunction {
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
			switch v := fdlArg(L, base).(type) {
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
				toks := s.pattern(L, base+1)
				t, err := fdlParseDate(str, toks, fdlZone(L, base+2), time.Now())
				if err != nil {
					L.RaiseError("getTimestamp: cannot read %q with the pattern %q: %v", str, L.OptString(base+1, fdlDefaultDatePattern), err)
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
			toks := s.pattern(L, base+1)
			t := time.UnixMilli(int64(ms)).In(fdlZone(L, base+2))
			L.Push(lua.LString(fdlFormatDate(t, toks)))
			return 1
		},
		"addDays":    add(24 * time.Hour),
		"addHours":   add(time.Hour),
		"addMinutes": add(time.Minute),
		"addSeconds": add(time.Second),
	}
}
