package schedule_test

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/triggerbus/triggerbus/pkg/schedule"
)

// Hostile schedules: what a script's description table or a config file
// may hold. Every rejection wraps ErrInvalid and says what is wrong;
// nothing panics, overflows or loops forever.

func TestParseFDLHostile(t *testing.T) {
	tests := []struct {
		name  string
		table map[string]map[string]int
		want  string
	}{
		{"empty", map[string]map[string]int{}, "no frequency"},
		{"empty frequency", map[string]map[string]int{"frequency": {}}, "no frequency"},
		{"negative", map[string]map[string]int{"frequency": {"MINUTE": -1}}, "frequency: MINUTE = -1 is out of range"},
		{"min int", map[string]map[string]int{"frequency": {"SECOND": math.MinInt}}, "is out of range"},
		{"max int", map[string]map[string]int{"frequency": {"SECOND": math.MaxInt}}, "is out of range"},
		{"overflowing weeks", map[string]map[string]int{"frequency": {"WEEK": 1_000_000}}, "frequency: WEEK = 1000000 is out of range"},
		{"overflowing sum", map[string]map[string]int{"frequency": {"WEEK": 15_000, "DAY": 1_000_000}}, "is out of range"},
		{"zero", map[string]map[string]int{"frequency": {"SECOND": 0}}, "frequency 0s is under a second"},
		{"unit twice", map[string]map[string]int{"frequency": {"MINUTE": 5, "minutes": 3}}, "frequency: MINUTE is given twice"},
		{"key twice", map[string]map[string]int{"frequency": {"MINUTE": 5}, "FREQUENCY": {"MINUTE": 5}}, "frequency is given twice"},
		{"unknown key", map[string]map[string]int{"frequency": {"MINUTE": 5}, "every": {"MINUTE": 1}}, `unknown key "every" (want frequency and start)`},
		{"unknown unit", map[string]map[string]int{"frequency": {"FORTNIGHT": 1}}, `frequency: unknown unit "FORTNIGHT" (want SECOND, MINUTE, HOUR, DAY or WEEK)`},
		{"invalid UTF-8 unit", map[string]map[string]int{"frequency": {"MINUTE\xff": 1}}, `unknown unit "MINUTE\xff"`},
		{"NUL in a unit", map[string]map[string]int{"frequency": {"MIN\x00UTE": 1}}, `unknown unit "MIN\x00UTE"`},
		{"empty unit", map[string]map[string]int{"frequency": {"": 1}}, `unknown unit ""`},
		{"start in days", map[string]map[string]int{"frequency": {"HOUR": 1}, "start": {"DAY": 1}}, "start takes HOUR, MINUTE and SECOND, not DAY"},
		{"start past midnight", map[string]map[string]int{"frequency": {"HOUR": 1}, "start": {"HOUR": 24}}, "start 24h0m0s is not a time of day"},
		{"start of a million seconds", map[string]map[string]int{"frequency": {"HOUR": 1}, "start": {"SECOND": 1_000_000}}, "is not a time of day"},
		{"start negative", map[string]map[string]int{"frequency": {"HOUR": 1}, "start": {"MINUTE": -5}}, "start: MINUTE = -5 is out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := schedule.ParseFDL(tt.table)
			if err == nil {
				t.Fatalf("ParseFDL(%v) = %v, want an error", tt.table, s)
			}
			if !errors.Is(err, schedule.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseFDL(%v) error = %q, want ErrInvalid containing %q", tt.table, err, tt.want)
			}
		})
	}
}

func TestParseHostile(t *testing.T) {
	tests := []struct {
		name                  string
		every                 time.Duration
		cron, timezone, start string
		want                  string
	}{
		{name: "nothing", want: "set every or cron"},
		{name: "both", every: time.Minute, cron: "* * * * *", want: "set every or cron, not both"},
		{name: "negative every", every: -time.Minute, want: "frequency -1m0s is under a second"},
		{name: "min duration", every: math.MinInt64, want: "is under a second"},
		{name: "sub-second", every: 1500 * time.Millisecond, want: "frequency 1.5s is not whole seconds"},
		{name: "nanoseconds", every: time.Nanosecond, want: "frequency 1ns is under a second"},
		{name: "path as a zone", every: time.Hour, timezone: "../../../etc/passwd", want: `timezone "../../../etc/passwd"`},
		{name: "absolute path as a zone", every: time.Hour, timezone: "/etc/localtime", want: `timezone "/etc/localtime"`},
		{name: "NUL in a zone", every: time.Hour, timezone: "Europe/Berlin\x00", want: "timezone"},
		{name: "unknown zone", every: time.Hour, timezone: "Mars/Olympus_Mons", want: `timezone "Mars/Olympus_Mons": unknown time zone Mars/Olympus_Mons`},
		{name: "start 25:00", every: time.Hour, start: "25:00", want: `start "25:00" is not HH:MM or HH:MM:SS`},
		{name: "start with a leap second", every: time.Hour, start: "23:59:60", want: `start "23:59:60" is not HH:MM or HH:MM:SS`},
		{name: "start negative", every: time.Hour, start: "-1:00", want: `start "-1:00" is not HH:MM or HH:MM:SS`},
		{name: "start with Arabic digits", every: time.Hour, start: "٢٣:٠٠", want: `is not HH:MM or HH:MM:SS`},
		{name: "start too many parts", every: time.Hour, start: "1:2:3:4", want: `start "1:2:3:4" is not HH:MM or HH:MM:SS`},
		{name: "start huge", every: time.Hour, start: "99999999999999999999:00", want: "is not HH:MM or HH:MM:SS"},
		{name: "start with cron", cron: "0 * * * *", start: "10:00", want: "start goes with every, not cron"},
		{name: "cron six fields", cron: "0 0 * * * *", want: `cron "0 0 * * * *" has 6 fields, want 5`},
		{name: "cron empty", cron: "   ", want: "has 0 fields, want 5"},
		{name: "cron step zero", cron: "*/0 * * * *", want: `minute: bad step "0"`},
		{name: "cron step huge", cron: "*/99999999999999999999 * * * *", want: `minute: bad step "99999999999999999999"`},
		{name: "cron minute 60", cron: "60 * * * *", want: "minute: end of range (60) above maximum (59)"},
		{name: "cron hour -1", cron: "0 -1 * * *", want: "hour: failed to parse int from :"},
		{name: "cron backwards", cron: "0 9-5 * * *", want: "hour: beginning of range (9) beyond end of range (5)"},
		{name: "cron day 0", cron: "0 0 0 * *", want: "day of month: beginning of range (0) below minimum (1)"},
		{name: "cron month name in days", cron: "0 0 JAN * *", want: "day of month: failed to parse int from JAN"},
		{name: "cron day of week 8", cron: "0 0 * * 8", want: "day of week: end of range (8) above maximum (6)"},
		{name: "cron empty list item", cron: "1,,2 * * * *", want: `minute: "" is not a value`},
		{name: "cron invalid UTF-8", cron: "\xff * * * *", want: "minute: failed to parse int from \xff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := schedule.Parse(tt.every, tt.cron, tt.timezone, tt.start)
			if err == nil {
				t.Fatalf("Parse(%v, %q, %q, %q) = %v, want an error", tt.every, tt.cron, tt.timezone, tt.start, s)
			}
			if !errors.Is(err, schedule.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse(%v, %q, %q, %q) error = %q, want ErrInvalid containing %q", tt.every, tt.cron, tt.timezone, tt.start, err, tt.want)
			}
		})
	}
}

// TestScheduleHostileExtremes: the largest schedules that parse still give
// ticks strictly after now, without overflowing, and a cron expression that
// never matches gives the zero time rather than looping.
func TestScheduleHostileExtremes(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		s    func() (*schedule.Schedule, error)
		zero bool
	}{
		{name: "every 290 years", s: func() (*schedule.Schedule, error) {
			return schedule.Parse(290*365*24*time.Hour, "", "", "")
		}},
		{name: "every 290 years from 23:59:59 in Kathmandu", s: func() (*schedule.Schedule, error) {
			return schedule.Parse(290*365*24*time.Hour, "", "Asia/Kathmandu", "23:59:59")
		}},
		{name: "every 100,000 days", s: func() (*schedule.Schedule, error) {
			return schedule.ParseFDL(map[string]map[string]int{"frequency": {"DAY": 100_000}})
		}},
		{name: "every second", s: func() (*schedule.Schedule, error) {
			return schedule.ParseFDL(map[string]map[string]int{"frequency": {"SECOND": 1}, "start": {"HOUR": 23, "MINUTE": 59, "SECOND": 59}})
		}},
		{name: "30 February", zero: true, s: func() (*schedule.Schedule, error) {
			return schedule.Parse(0, "0 0 30 2 *", "Pacific/Apia", "")
		}},
		{name: "31 April, or never", zero: true, s: func() (*schedule.Schedule, error) {
			return schedule.Parse(0, "59 23 31 4,6,9,11 *", "", "")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := tt.s()
			if err != nil {
				t.Fatal(err)
			}
			next := s.Next(now)
			if tt.zero {
				if !next.IsZero() {
					t.Errorf("%s: Next = %v, want the zero time", s, next)
				}
				return
			}
			if !next.After(now) {
				t.Errorf("%s: Next(%v) = %v, not after it", s, now, next)
			}
			if f := s.Frequency(now); f <= 0 {
				t.Errorf("%s: Frequency = %v", s, f)
			}
		})
	}
}

// hostileZones are zones FuzzScheduleHostile draws from besides the fuzzed
// string: DST, half-hour and 45-minute offsets, a skipped day.
var hostileZones = []string{"", "UTC", "Europe/Berlin", "Australia/Lord_Howe", "Asia/Kathmandu", "Pacific/Apia", "America/Havana"}

// FuzzScheduleHostile parses YAML-style schedules from fuzzed parts (every
// in seconds, possibly huge or negative; a cron expression; a time zone,
// fuzzed or from a list; a start time) and FDL tables from fuzzed units and
// values. Parsing never panics and every error wraps ErrInvalid; a
// schedule that parses gives a next tick after now, or the zero time for a
// cron expression that never matches, without looping forever.
func FuzzScheduleHostile(f *testing.F) {
	f.Add(int64(300), "", "", "", uint8(0), "MINUTE", int64(5))
	f.Add(int64(86400), "", "", "23:59", uint8(2), "hours", int64(24))
	f.Add(int64(0), "*/5 * * * *", "", "", uint8(3), "\xff", int64(-1))
	f.Add(int64(-1), "0 0 30 2 *", "Mars/Base", "25:00", uint8(5), "WEEK", int64(1_000_000))
	f.Add(int64(math.MaxInt64/int64(time.Second)), "", "../etc/passwd", "", uint8(1), "SECOND", int64(math.MaxInt64))
	f.Add(int64(7), "", "", "00:00:01", uint8(6), "ſecond", int64(7))
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, everySeconds int64, cron, zone, start string, zoneIdx uint8, unit string, n int64) {
		tz := zone
		if zoneIdx%2 == 0 {
			tz = hostileZones[int(zoneIdx/2)%len(hostileZones)]
		}
		var every time.Duration
		if everySeconds > math.MinInt64/int64(time.Second) && everySeconds < math.MaxInt64/int64(time.Second) {
			every = time.Duration(everySeconds) * time.Second
		}
		check := func(what string, s *schedule.Schedule, err error) {
			if err != nil {
				if !errors.Is(err, schedule.ErrInvalid) {
					t.Fatalf("%s: error %q does not wrap ErrInvalid", what, err)
				}
				return
			}
			next := s.Next(now)
			if next.IsZero() {
				return // a cron expression that never matches
			}
			if !next.After(now) {
				t.Fatalf("%s: %s: Next(%v) = %v, not after it", what, s, now, next)
			}
		}
		s, err := schedule.Parse(every, cron, tz, start)
		check("Parse", s, err)
		table := map[string]map[string]int{"frequency": {unit: int(n)}}
		if start != "" {
			table["start"] = map[string]int{unit: int(n % 100)}
		}
		s, err = schedule.ParseFDL(table)
		check("ParseFDL", s, err)
	})
}
