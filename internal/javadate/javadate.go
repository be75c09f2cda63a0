package javadate

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Pattern is a compiled Java date pattern; the zero Pattern is the empty
// pattern.
type Pattern struct{ toks []token }

// Compile reads a Java date pattern (see the package comment for the
// letters understood).
func Compile(p string) (Pattern, error) {
	toks, err := parsePattern(p)
	if err != nil {
		return Pattern{}, err
	}
	return Pattern{toks: toks}, nil
}

// Format writes t with p.
func (p Pattern) Format(t time.Time) string { return format(t, p.toks) }

// Parse reads s with p, in loc unless s names a zone; now is the time
// two-digit years are placed around. Fields the pattern lacks are those of
// 1970-01-01 00:00:00; out-of-range values roll over, as Java's lenient
// parsing does.
func (p Pattern) Parse(s string, loc *time.Location, now time.Time) (time.Time, error) {
	return parse(s, p.toks, loc, now)
}

// DefaultPattern is the pattern FDL uses when a script gives none.
const DefaultPattern = "yyyy-MM-dd HH:mm:ss"

// token is a piece of a date pattern: a run of one pattern letter,
// or literal text (letter 0).
type token struct {
	letter byte
	count  int
	lit    string
}

// letters are the pattern letters understood. Y (week year) is
// taken as y, L (stand-alone month) as M.
const letters = "GyYMLdDEuaHkKhmsSzZX"

func parsePattern(p string) ([]token, error) {
	var toks []token
	lit := func(s string) {
		if n := len(toks); n > 0 && toks[n-1].letter == 0 {
			toks[n-1].lit += s
			return
		}
		toks = append(toks, token{lit: s})
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
			if strings.IndexByte(letters, c) < 0 {
				return nil, fmt.Errorf("unsupported pattern letter %q", c)
			}
			switch c {
			case 'Y':
				c = 'y'
			case 'L':
				c = 'M'
			}
			toks = append(toks, token{letter: c, count: j - i})
			i = j
		default:
			lit(string(c))
			i++
		}
	}
	return toks, nil
}

func pad(b []byte, n, width int) []byte {
	s := strconv.Itoa(n)
	for i := len(s); i < width; i++ {
		b = append(b, '0')
	}
	return append(b, s...)
}

// format writes t with a parsed pattern.
func format(t time.Time, toks []token) string {
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
				b = pad(b, t.Year()%100, 2)
			} else {
				b = pad(b, t.Year(), n)
			}
		case 'M':
			switch {
			case n >= 4:
				b = append(b, t.Month().String()...)
			case n == 3:
				b = append(b, t.Month().String()[:3]...)
			default:
				b = pad(b, int(t.Month()), n)
			}
		case 'd':
			b = pad(b, t.Day(), n)
		case 'D':
			b = pad(b, t.YearDay(), n)
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
			b = pad(b, wd, n)
		case 'a':
			if t.Hour() < 12 {
				b = append(b, "AM"...)
			} else {
				b = append(b, "PM"...)
			}
		case 'H':
			b = pad(b, t.Hour(), n)
		case 'k':
			h := t.Hour()
			if h == 0 {
				h = 24
			}
			b = pad(b, h, n)
		case 'K':
			b = pad(b, t.Hour()%12, n)
		case 'h':
			h := t.Hour() % 12
			if h == 0 {
				h = 12
			}
			b = pad(b, h, n)
		case 'm':
			b = pad(b, t.Minute(), n)
		case 's':
			b = pad(b, t.Second(), n)
		case 'S':
			b = pad(b, t.Nanosecond()/int(time.Millisecond), n)
		case 'z':
			_, off := t.Zone()
			if off == 0 {
				b = append(b, "UTC"...)
			} else {
				b = append(b, "GMT"...)
				b = appendOffset(b, off, true)
			}
		case 'Z':
			_, off := t.Zone()
			b = appendOffset(b, off, false)
		case 'X':
			_, off := t.Zone()
			switch {
			case off == 0:
				b = append(b, 'Z')
			case n == 1:
				start := len(b)
				b = appendOffset(b, off, false)[:start+3]
			default:
				b = appendOffset(b, off, n >= 3)
			}
		}
	}
	return string(b)
}

func appendOffset(b []byte, off int, colon bool) []byte {
	sign := byte('+')
	if off < 0 {
		sign, off = '-', -off
	}
	b = append(b, sign)
	b = pad(b, off/3600, 2)
	if colon {
		b = append(b, ':')
	}
	return pad(b, off/60%60, 2)
}

// numeric reports whether a pattern letter is read as a number.
func numeric(tk token) bool {
	switch tk.letter {
	case 'y', 'd', 'D', 'u', 'H', 'k', 'K', 'h', 'm', 's', 'S':
		return true
	case 'M':
		return tk.count < 3
	}
	return false
}

// parse reads s with a parsed pattern. Fields the pattern lacks are
// those of 1970-01-01 00:00:00; out-of-range values roll over, as Java's
// lenient parsing does.
func parse(s string, toks []token, loc *time.Location, now time.Time) (time.Time, error) {
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
		if numeric(tk) {
			width := 0
			if i+1 < len(toks) && numeric(toks[i+1]) {
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
					n = century(n, now.Year())
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
			z, n, ok := ReadZone(rest)
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

// century puts a two-digit year within 80 years before and 20 after
// thisYear, as Java does.
func century(yy, thisYear int) int {
	y := thisYear - thisYear%100 + yy
	switch {
	case y > thisYear+20:
		y -= 100
	case y <= thisYear-80:
		y += 100
	}
	return y
}

// ReadZone reads a zone at the start of s: Z, UTC, GMT, or an offset
// (+02, +0200, +02:00), optionally after UTC or GMT. It returns the
// location and how many bytes it read.
func ReadZone(s string) (*time.Location, int, bool) {
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
			return offsetZone(rest[0], int(rest[1]-'0'), 0), n + 2, true
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
	return offsetZone(rest[0], hh, mm), n + read, true
}

func offsetZone(sign byte, hh, mm int) *time.Location {
	off := hh*3600 + mm*60
	if sign == '-' {
		off = -off
	}
	if off == 0 {
		return time.UTC
	}
	return time.FixedZone("", off)
}
