package schedule_test

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // Europe/Berlin and the fuzzed zones, whatever the host has

	"github.com/triggerbus/triggerbus/pkg/schedule"
)

// schedFDL builds an FDL schedule table.
func schedFDL(freq, start map[string]int) map[string]map[string]int {
	t := map[string]map[string]int{}
	if freq != nil {
		t["frequency"] = freq
	}
	if start != nil {
		t["start"] = start
	}
	return t
}

// schedUTC is a fixed UTC time.
func schedUTC(y int, mo time.Month, d, h, mi, s int) time.Time {
	return time.Date(y, mo, d, h, mi, s, 0, time.UTC)
}

func schedZone(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// schedTicks returns the n ticks of s after from.
func schedTicks(s *schedule.Schedule, from time.Time, n int) []time.Time {
	out := make([]time.Time, 0, n)
	t := from
	for range n {
		t = s.Next(t)
		if t.IsZero() {
			break
		}
		out = append(out, t)
	}
	return out
}

func checkSchedTicks(t *testing.T, s *schedule.Schedule, from time.Time, want []time.Time) {
	t.Helper()
	got := schedTicks(s, from, len(want))
	if len(got) != len(want) {
		t.Fatalf("%s: ticks after %v = %v, want %v", s, from, got, want)
	}
	for i := range want {
		if !got[i].Equal(want[i]) {
			t.Errorf("%s: tick %d after %v = %v, want %v", s, i, from, got[i], want[i])
		}
	}
}

func TestParseFDL(t *testing.T) {
	from := schedUTC(2025, 6, 1, 10, 2, 30) // a Sunday
	tests := []struct {
		name     string
		give     map[string]map[string]int
		wantFreq time.Duration
		want     []time.Time
	}{
		{
			name:     "every 5 minutes",
			give:     schedFDL(map[string]int{"MINUTE": 5}, nil),
			wantFreq: 5 * time.Minute,
			want:     []time.Time{schedUTC(2025, 6, 1, 10, 5, 0), schedUTC(2025, 6, 1, 10, 10, 0), schedUTC(2025, 6, 1, 10, 15, 0)},
		},
		{
			name:     "daily at 23:59:59",
			give:     schedFDL(map[string]int{"HOUR": 24}, map[string]int{"HOUR": 23, "MINUTE": 59, "SECOND": 59}),
			wantFreq: 24 * time.Hour,
			want:     []time.Time{schedUTC(2025, 6, 1, 23, 59, 59), schedUTC(2025, 6, 2, 23, 59, 59), schedUTC(2025, 6, 3, 23, 59, 59)},
		},
		{
			name:     "lower case keys and plural units",
			give:     map[string]map[string]int{"start": {"hour": 22, "minute": 0, "second": 0}, "frequency": {"hours": 24}},
			wantFreq: 24 * time.Hour,
			want:     []time.Time{schedUTC(2025, 6, 1, 22, 0, 0), schedUTC(2025, 6, 2, 22, 0, 0)},
		},
		{
			name:     "mixed case table keys",
			give:     map[string]map[string]int{"Start": {"Hour": 6}, "FREQUENCY": {"Days": 1}},
			wantFreq: 24 * time.Hour,
			want:     []time.Time{schedUTC(2025, 6, 2, 6, 0, 0), schedUTC(2025, 6, 3, 6, 0, 0)},
		},
		{
			name:     "start at midnight",
			give:     schedFDL(map[string]int{"HOUR": 24}, map[string]int{"HOUR": 0}),
			wantFreq: 24 * time.Hour,
			want:     []time.Time{schedUTC(2025, 6, 2, 0, 0, 0), schedUTC(2025, 6, 3, 0, 0, 0)},
		},
		{
			name:     "units add up",
			give:     schedFDL(map[string]int{"HOUR": 1, "MINUTE": 30}, nil),
			wantFreq: 90 * time.Minute,
			want:     []time.Time{schedUTC(2025, 6, 1, 10, 30, 0), schedUTC(2025, 6, 1, 12, 0, 0)},
		},
		{
			name:     "hourly at ten past",
			give:     schedFDL(map[string]int{"HOUR": 1}, map[string]int{"MINUTE": 10}),
			wantFreq: time.Hour,
			want:     []time.Time{schedUTC(2025, 6, 1, 10, 10, 0), schedUTC(2025, 6, 1, 11, 10, 0)},
		},
		{
			name:     "every 30 seconds",
			give:     schedFDL(map[string]int{"SECONDS": 30}, nil),
			wantFreq: 30 * time.Second,
			want:     []time.Time{schedUTC(2025, 6, 1, 10, 3, 0), schedUTC(2025, 6, 1, 10, 3, 30)},
		},
		{
			// Days are counted from 1970-01-01, a Thursday.
			name:     "weekly",
			give:     schedFDL(map[string]int{"WEEK": 1}, nil),
			wantFreq: 7 * 24 * time.Hour,
			want:     []time.Time{schedUTC(2025, 6, 5, 0, 0, 0), schedUTC(2025, 6, 12, 0, 0, 0)},
		},
		{
			name:     "every 2 days at 03:00",
			give:     schedFDL(map[string]int{"DAY": 2}, map[string]int{"HOUR": 3}),
			wantFreq: 48 * time.Hour,
			want:     []time.Time{schedUTC(2025, 6, 3, 3, 0, 0), schedUTC(2025, 6, 5, 3, 0, 0)}, // day 20240 of 1970 is June 1

		},
		{
			// A frequency that does not divide a day starts afresh from the
			// start time every day: 01, 08, 15, 22, then 01 again.
			name:     "every 7 hours from 01:00",
			give:     schedFDL(map[string]int{"HOUR": 7}, map[string]int{"HOUR": 1}),
			wantFreq: 7 * time.Hour,
			want:     []time.Time{schedUTC(2025, 6, 1, 15, 0, 0), schedUTC(2025, 6, 1, 22, 0, 0), schedUTC(2025, 6, 2, 1, 0, 0), schedUTC(2025, 6, 2, 8, 0, 0)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := schedule.ParseFDL(tt.give)
			if err != nil {
				t.Fatalf("ParseFDL(%v) error: %v", tt.give, err)
			}
			if got := s.Frequency(from); got != tt.wantFreq {
				t.Errorf("ParseFDL(%v).Frequency() = %v, want %v", tt.give, got, tt.wantFreq)
			}
			if s.String() == "" {
				t.Errorf("ParseFDL(%v).String() is empty", tt.give)
			}
			checkSchedTicks(t, s, from, tt.want)
		})
	}
}

func TestParseFDLErrors(t *testing.T) {
	tests := []struct {
		name    string
		give    map[string]map[string]int
		wantMsg string // part of the error message
	}{
		{"missing frequency", schedFDL(nil, map[string]int{"HOUR": 1}), "no frequency"},
		{"empty frequency", schedFDL(map[string]int{}, nil), "no frequency"},
		{"empty table", map[string]map[string]int{}, "no frequency"},
		{"zero frequency", schedFDL(map[string]int{"HOUR": 0}, nil), "under a second"},
		{"zero seconds", schedFDL(map[string]int{"SECOND": 0}, nil), "under a second"},
		{"unknown unit", schedFDL(map[string]int{"FORTNIGHT": 1}, nil), `unknown unit "FORTNIGHT"`},
		{"millisecond unit", schedFDL(map[string]int{"MILLISECOND": 500}, nil), "unknown unit"},
		{"unknown unit in start", schedFDL(map[string]int{"HOUR": 1}, map[string]int{"O'CLOCK": 3}), "unknown unit"},
		{"negative", schedFDL(map[string]int{"MINUTE": -5}, nil), "out of range"},
		{"too large", schedFDL(map[string]int{"HOUR": 2_000_000}, nil), "out of range"},
		{"overflows a duration", schedFDL(map[string]int{"WEEK": 1_000_000}, nil), "out of range"},
		{"start with days", schedFDL(map[string]int{"HOUR": 24}, map[string]int{"DAY": 1}), "start takes HOUR, MINUTE and SECOND"},
		{"start past the day", schedFDL(map[string]int{"HOUR": 24}, map[string]int{"HOUR": 24}), "not a time of day"},
		{"unknown key", map[string]map[string]int{"every": {"MINUTE": 1}}, `unknown key "every"`},
		{"unit twice", schedFDL(map[string]int{"MINUTE": 5, "minutes": 5}, nil), "MINUTE is given twice"},
		{"key twice", map[string]map[string]int{"frequency": {"MINUTE": 5}, "FREQUENCY": {"MINUTE": 1}}, "frequency is given twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := schedule.ParseFDL(tt.give)
			if !errors.Is(err, schedule.ErrInvalid) {
				t.Fatalf("ParseFDL(%v) = %v, %v, want an error wrapping ErrInvalid", tt.give, s, err)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("ParseFDL(%v) error %q, want it to say %q", tt.give, err, tt.wantMsg)
			}
		})
	}
}

func TestParse(t *testing.T) {
	berlin := schedZone(t, "Europe/Berlin")
	from := schedUTC(2025, 6, 1, 10, 2, 30) // a Sunday
	tests := []struct {
		name                  string
		every                 time.Duration
		cron, timezone, start string
		wantFreq              time.Duration
		want                  []time.Time
	}{
		{
			name: "every", every: 5 * time.Minute, wantFreq: 5 * time.Minute,
			want: []time.Time{schedUTC(2025, 6, 1, 10, 5, 0), schedUTC(2025, 6, 1, 10, 10, 0)},
		},
		{
			name: "every with start", every: 6 * time.Hour, start: "01:30", wantFreq: 6 * time.Hour,
			want: []time.Time{schedUTC(2025, 6, 1, 13, 30, 0), schedUTC(2025, 6, 1, 19, 30, 0), schedUTC(2025, 6, 2, 1, 30, 0)},
		},
		{
			name: "every with start and seconds", every: 24 * time.Hour, start: "23:59:59", wantFreq: 24 * time.Hour,
			want: []time.Time{schedUTC(2025, 6, 1, 23, 59, 59), schedUTC(2025, 6, 2, 23, 59, 59)},
		},
		{
			name: "every with timezone", every: 24 * time.Hour, start: "06:30", timezone: "Europe/Berlin", wantFreq: 24 * time.Hour,
			want: []time.Time{time.Date(2025, 6, 2, 6, 30, 0, 0, berlin), time.Date(2025, 6, 3, 6, 30, 0, 0, berlin)},
		},
		{
			name: "cron every 5 minutes", cron: "*/5 * * * *", wantFreq: 5 * time.Minute,
			want: []time.Time{schedUTC(2025, 6, 1, 10, 5, 0), schedUTC(2025, 6, 1, 10, 10, 0)},
		},
		{
			name: "cron weekdays at 9", cron: "0 9 * * MON-FRI", wantFreq: 24 * time.Hour,
			want: []time.Time{schedUTC(2025, 6, 2, 9, 0, 0), schedUTC(2025, 6, 3, 9, 0, 0), schedUTC(2025, 6, 4, 9, 0, 0), schedUTC(2025, 6, 5, 9, 0, 0), schedUTC(2025, 6, 6, 9, 0, 0), schedUTC(2025, 6, 9, 9, 0, 0)},
		},
		{
			name: "cron monthly", cron: "0 0 1 * *", wantFreq: 31 * 24 * time.Hour, // July 1 to August 1
			want: []time.Time{schedUTC(2025, 7, 1, 0, 0, 0), schedUTC(2025, 8, 1, 0, 0, 0), schedUTC(2025, 9, 1, 0, 0, 0)},
		},
		{
			// Both day fields restricted: a day matching either runs
			// (Fridays, and the 13th whatever its weekday).
			name: "cron day of month or day of week", cron: "0 12 13 * FRI", wantFreq: 7 * 24 * time.Hour,
			want: []time.Time{
				schedUTC(2025, 6, 6, 12, 0, 0), schedUTC(2025, 6, 13, 12, 0, 0), schedUTC(2025, 6, 20, 12, 0, 0), schedUTC(2025, 6, 27, 12, 0, 0),
				schedUTC(2025, 7, 4, 12, 0, 0), schedUTC(2025, 7, 11, 12, 0, 0), schedUTC(2025, 7, 13, 12, 0, 0), schedUTC(2025, 7, 18, 12, 0, 0),
			},
		},
		{
			// A day-of-month step starts with '*', so it counts as
			// unrestricted and only the day of week filters.
			name: "cron day of month step with day of week", cron: "0 12 */2 * MON", wantFreq: 7 * 24 * time.Hour,
			want: []time.Time{schedUTC(2025, 6, 2, 12, 0, 0), schedUTC(2025, 6, 9, 12, 0, 0)},
		},
		{
			name: "cron Sunday as 0", cron: "0 8 * * 0", wantFreq: 7 * 24 * time.Hour,
			want: []time.Time{schedUTC(2025, 6, 8, 8, 0, 0), schedUTC(2025, 6, 15, 8, 0, 0)},
		},
		{
			name: "cron Sunday as 7", cron: "0 8 * * 7", wantFreq: 7 * 24 * time.Hour,
			want: []time.Time{schedUTC(2025, 6, 8, 8, 0, 0), schedUTC(2025, 6, 15, 8, 0, 0)},
		},
		{
			name: "cron Sunday by name", cron: "0 8 * * sun", wantFreq: 7 * 24 * time.Hour,
			want: []time.Time{schedUTC(2025, 6, 8, 8, 0, 0), schedUTC(2025, 6, 15, 8, 0, 0)},
		},
		{
			name: "cron Friday to Sunday", cron: "0 8 * * 5-7", wantFreq: 24 * time.Hour,
			want: []time.Time{schedUTC(2025, 6, 6, 8, 0, 0), schedUTC(2025, 6, 7, 8, 0, 0), schedUTC(2025, 6, 8, 8, 0, 0), schedUTC(2025, 6, 13, 8, 0, 0)},
		},
		{
			name: "cron lists ranges and steps", cron: "15,45 8-12/2 * JAN,jun *", wantFreq: 30 * time.Minute,
			want: []time.Time{schedUTC(2025, 6, 1, 10, 15, 0), schedUTC(2025, 6, 1, 10, 45, 0), schedUTC(2025, 6, 1, 12, 15, 0), schedUTC(2025, 6, 1, 12, 45, 0), schedUTC(2025, 6, 2, 8, 15, 0)},
		},
		{
			name: "cron single value with step", cron: "5/20 * * * *", wantFreq: 20 * time.Minute,
			want: []time.Time{schedUTC(2025, 6, 1, 10, 5, 0), schedUTC(2025, 6, 1, 10, 25, 0), schedUTC(2025, 6, 1, 10, 45, 0), schedUTC(2025, 6, 1, 11, 5, 0)},
		},
		{
			// robfig/cron counts 0-6; 7 is Sunday as in Vixie cron.
			name: "cron stepped range to Sunday as 7", cron: "0 8 * * 1-7/3", wantFreq: 3 * 24 * time.Hour,
			want: []time.Time{schedUTC(2025, 6, 2, 8, 0, 0), schedUTC(2025, 6, 5, 8, 0, 0), schedUTC(2025, 6, 8, 8, 0, 0), schedUTC(2025, 6, 9, 8, 0, 0)},
		},
		{
			name: "cron Sunday as 7-7", cron: "0 8 * * 7-7", wantFreq: 7 * 24 * time.Hour,
			want: []time.Time{schedUTC(2025, 6, 8, 8, 0, 0), schedUTC(2025, 6, 15, 8, 0, 0)},
		},
		{
			// Only a field starting with '*' is unrestricted (robfig/cron
			// also counts "*,5"), so a day matching either field runs.
			name: "cron day of month list holding a star", cron: "0 12 *,5 * MON", wantFreq: 24 * time.Hour,
			want: []time.Time{schedUTC(2025, 6, 1, 12, 0, 0), schedUTC(2025, 6, 2, 12, 0, 0), schedUTC(2025, 6, 3, 12, 0, 0)},
		},
		{
			name: "cron in a timezone", cron: "0 9 * * *", timezone: "Europe/Berlin", wantFreq: 24 * time.Hour,
			want: []time.Time{time.Date(2025, 6, 2, 9, 0, 0, 0, berlin), time.Date(2025, 6, 3, 9, 0, 0, 0, berlin)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := schedule.Parse(tt.every, tt.cron, tt.timezone, tt.start)
			if err != nil {
				t.Fatalf("Parse(%v, %q, %q, %q) error: %v", tt.every, tt.cron, tt.timezone, tt.start, err)
			}
			if got := s.Frequency(from); got != tt.wantFreq {
				t.Errorf("Parse(%v, %q, ...).Frequency(%v) = %v, want %v", tt.every, tt.cron, from, got, tt.wantFreq)
			}
			checkSchedTicks(t, s, from, tt.want)
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name                  string
		every                 time.Duration
		cron, timezone, start string
		wantMsg               string
	}{
		{name: "nothing", wantMsg: "set every or cron"},
		{name: "both", every: time.Minute, cron: "* * * * *", wantMsg: "not both"},
		{name: "start with cron", cron: "0 9 * * *", start: "09:00", wantMsg: "start goes with every"},
		{name: "sub-second", every: 500 * time.Millisecond, wantMsg: "under a second"},
		{name: "fractional seconds", every: 1500 * time.Millisecond, wantMsg: "not whole seconds"},
		{name: "negative", every: -time.Minute, wantMsg: "under a second"},
		{name: "unknown timezone", every: time.Hour, timezone: "Europe/Atlantis", wantMsg: `timezone "Europe/Atlantis"`},
		{name: "start hour 24", every: time.Hour, start: "24:00", wantMsg: `start "24:00"`},
		{name: "start without minutes", every: time.Hour, start: "7", wantMsg: "HH:MM"},
		{name: "start minute 60", every: time.Hour, start: "07:60", wantMsg: "HH:MM"},
		{name: "start with text", every: time.Hour, start: "seven:00", wantMsg: "HH:MM"},
		{name: "cron four fields", cron: "0 9 * *", wantMsg: "has 4 fields, want 5"},
		{name: "cron six fields", cron: "0 0 9 * * *", wantMsg: "has 6 fields, want 5"},
		{name: "cron minute 60", cron: "60 * * * *", wantMsg: "minute: end of range (60) above maximum (59)"},
		{name: "cron hour 24", cron: "0 24 * * *", wantMsg: "hour: end of range (24) above maximum (23)"},
		{name: "cron day 0", cron: "0 0 0 * *", wantMsg: "day of month: beginning of range (0) below minimum (1)"},
		{name: "cron day 32", cron: "0 0 32 * *", wantMsg: "day of month: end of range (32) above maximum (31)"},
		{name: "cron month 13", cron: "0 0 1 13 *", wantMsg: "month: end of range (13) above maximum (12)"},
		{name: "cron weekday 8", cron: "0 0 * * 8", wantMsg: "day of week: end of range (8) above maximum (6)"},
		{name: "cron step 0", cron: "*/0 * * * *", wantMsg: `minute: bad step "0"`},
		{name: "cron step text", cron: "*/x * * * *", wantMsg: `minute: bad step "x"`},
		{name: "cron step too large", cron: "0 */25 * * *", wantMsg: `hour: bad step "25"`},
		{name: "cron backwards range", cron: "0 9-5 * * *", wantMsg: "hour: beginning of range (9) beyond end of range (5)"},
		{name: "cron month name in weekday", cron: "0 0 * * JAN", wantMsg: "day of week: failed to parse int from JAN"},
		{name: "cron empty list item", cron: "1,,2 * * * *", wantMsg: `minute: "" is not a value`},
		{name: "cron garbage", cron: "@daily", wantMsg: "has 1 fields, want 5"},
		// robfig/cron reads these as "*", a zone or a descriptor (a lone
		// "TZ=" field makes it panic); here they are errors.
		{name: "cron question mark", cron: "0 0 ? * MON", wantMsg: `day of month: "?" is not a value`},
		{name: "cron zone as a field", cron: "TZ=UTC 0 * * *", wantMsg: `minute: "TZ=UTC" is not a value`},
		{name: "cron descriptor as a field", cron: "@hourly * * * *", wantMsg: `minute: "@hourly" is not a value`},
		{name: "cron star with a range", cron: "*-5 * * * *", wantMsg: `minute: "*-5" is not a value`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := schedule.Parse(tt.every, tt.cron, tt.timezone, tt.start)
			if !errors.Is(err, schedule.ErrInvalid) {
				t.Fatalf("Parse(%v, %q, %q, %q) = %v, %v, want an error wrapping ErrInvalid", tt.every, tt.cron, tt.timezone, tt.start, s, err)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("Parse(%v, %q, %q, %q) error %q, want it to say %q", tt.every, tt.cron, tt.timezone, tt.start, err, tt.wantMsg)
			}
		})
	}
}

// TestScheduleNext checks ticks around midnight, month ends and the DST
// changes of Europe/Berlin (2025-03-30 02:00 CET -> 03:00 CEST and
// 2025-10-26 03:00 CEST -> 02:00 CET).
func TestScheduleNext(t *testing.T) {
	berlin := schedZone(t, "Europe/Berlin")
	fdlSched := func(freq, start map[string]int) func() (*schedule.Schedule, error) {
		return func() (*schedule.Schedule, error) { return schedule.ParseFDL(schedFDL(freq, start)) }
	}
	yaml := func(every time.Duration, cron, tz, start string) func() (*schedule.Schedule, error) {
		return func() (*schedule.Schedule, error) { return schedule.Parse(every, cron, tz, start) }
	}
	tests := []struct {
		name  string
		sched func() (*schedule.Schedule, error)
		from  time.Time
		want  []time.Time
	}{
		{
			name: "5 minutes across midnight and the year", sched: fdlSched(map[string]int{"MINUTE": 5}, nil),
			from: schedUTC(2025, 12, 31, 23, 57, 30),
			want: []time.Time{schedUTC(2026, 1, 1, 0, 0, 0), schedUTC(2026, 1, 1, 0, 5, 0)},
		},
		{
			name: "a tick time itself is not next", sched: fdlSched(map[string]int{"MINUTE": 5}, nil),
			from: schedUTC(2025, 12, 31, 23, 55, 0),
			want: []time.Time{schedUTC(2026, 1, 1, 0, 0, 0)},
		},
		{
			name: "just before a tick", sched: fdlSched(map[string]int{"MINUTE": 5}, nil),
			from: schedUTC(2025, 12, 31, 23, 59, 59).Add(999 * time.Millisecond),
			want: []time.Time{schedUTC(2026, 1, 1, 0, 0, 0)},
		},
		{
			name: "daily 23:59:59 from the tick itself", sched: fdlSched(map[string]int{"HOUR": 24}, map[string]int{"HOUR": 23, "MINUTE": 59, "SECOND": 59}),
			from: schedUTC(2025, 2, 28, 23, 59, 59),
			want: []time.Time{schedUTC(2025, 3, 1, 23, 59, 59), schedUTC(2025, 3, 2, 23, 59, 59)},
		},
		{
			name: "daily 23:59:59 a second after midnight", sched: fdlSched(map[string]int{"HOUR": 24}, map[string]int{"HOUR": 23, "MINUTE": 59, "SECOND": 59}),
			from: schedUTC(2025, 3, 1, 0, 0, 1),
			want: []time.Time{schedUTC(2025, 3, 1, 23, 59, 59)},
		},
		{
			name: "7 hours from 01:00 across midnight", sched: fdlSched(map[string]int{"HOUR": 7}, map[string]int{"HOUR": 1}),
			from: schedUTC(2025, 3, 10, 22, 30, 0),
			want: []time.Time{schedUTC(2025, 3, 11, 1, 0, 0), schedUTC(2025, 3, 11, 8, 0, 0)},
		},
		{
			// No start and a frequency that does not divide a day: a grid
			// from the Unix epoch, evenly spaced across midnight.
			name: "7 minutes across midnight", sched: fdlSched(map[string]int{"MINUTE": 7}, nil),
			from: schedUTC(2025, 6, 1, 23, 50, 0),
			want: []time.Time{schedUTC(2025, 6, 1, 23, 54, 0), schedUTC(2025, 6, 2, 0, 1, 0), schedUTC(2025, 6, 2, 0, 8, 0)},
		},
		{
			name: "cron monthly from the last day of January", sched: yaml(0, "0 0 1 * *", "", ""),
			from: schedUTC(2025, 1, 31, 12, 0, 0),
			want: []time.Time{schedUTC(2025, 2, 1, 0, 0, 0), schedUTC(2025, 3, 1, 0, 0, 0)},
		},
		{
			name: "cron weekdays from Friday at 9", sched: yaml(0, "0 9 * * MON-FRI", "", ""),
			from: schedUTC(2025, 6, 6, 9, 0, 0),
			want: []time.Time{schedUTC(2025, 6, 9, 9, 0, 0)},
		},
		{
			name: "cron 29 February", sched: yaml(0, "0 0 29 2 *", "", ""),
			from: schedUTC(2025, 1, 1, 0, 0, 0),
			want: []time.Time{schedUTC(2028, 2, 29, 0, 0, 0)},
		},
		{
			name: "cron at midnight in Berlin", sched: yaml(0, "0 0 * * *", "Europe/Berlin", ""),
			from: time.Date(2025, 6, 1, 23, 59, 0, 0, berlin),
			want: []time.Time{schedUTC(2025, 6, 1, 22, 0, 0), schedUTC(2025, 6, 2, 22, 0, 0)},
		},
		{
			name: "daily 22:00 Berlin over spring forward", sched: yaml(24*time.Hour, "", "Europe/Berlin", "22:00"),
			from: schedUTC(2025, 3, 29, 12, 0, 0),
			want: []time.Time{schedUTC(2025, 3, 29, 21, 0, 0), schedUTC(2025, 3, 30, 20, 0, 0), schedUTC(2025, 3, 31, 20, 0, 0)},
		},
		{
			name: "daily 22:00 Berlin over fall back", sched: yaml(24*time.Hour, "", "Europe/Berlin", "22:00"),
			from: schedUTC(2025, 10, 25, 12, 0, 0),
			want: []time.Time{schedUTC(2025, 10, 25, 20, 0, 0), schedUTC(2025, 10, 26, 21, 0, 0), schedUTC(2025, 10, 27, 21, 0, 0)},
		},
		{
			name: "cron 9:00 Berlin over spring forward", sched: yaml(0, "0 9 * * *", "Europe/Berlin", ""),
			from: schedUTC(2025, 3, 29, 0, 0, 0),
			want: []time.Time{schedUTC(2025, 3, 29, 8, 0, 0), schedUTC(2025, 3, 30, 7, 0, 0)},
		},
		{
			// time.Date turns 02:00 on that day into 01:00 EST: a cron
			// search that jumped there looped for ever.
			name: "cron 9:00 New York over spring forward", sched: yaml(0, "0 9 * * *", "America/New_York", ""),
			from: schedUTC(2025, 3, 8, 15, 0, 0),
			want: []time.Time{schedUTC(2025, 3, 9, 13, 0, 0), schedUTC(2025, 3, 10, 13, 0, 0)},
		},
		{
			// Havana springs forward at midnight.
			name: "cron 6:00 Havana over spring forward", sched: yaml(0, "0 6 * * *", "America/Havana", ""),
			from: schedUTC(2025, 3, 8, 12, 0, 0),
			want: []time.Time{schedUTC(2025, 3, 9, 10, 0, 0), schedUTC(2025, 3, 10, 10, 0, 0)},
		},
		{
			name: "daily 6:00 Havana over spring forward", sched: yaml(24*time.Hour, "", "America/Havana", "06:00"),
			from: schedUTC(2025, 3, 8, 12, 0, 0),
			want: []time.Time{schedUTC(2025, 3, 9, 10, 0, 0), schedUTC(2025, 3, 10, 10, 0, 0)},
		},
		{
			// Lord Howe falls back half an hour at 02:00 on Sunday 4 April
			// 2010; robfig/cron's SpecSchedule.Next skips that Sunday.
			name: "cron Sunday 6:00 Lord Howe over fall back", sched: yaml(0, "0 6 * * SUN", "Australia/Lord_Howe", ""),
			from: schedUTC(2010, 3, 31, 0, 0, 0),
			want: []time.Time{schedUTC(2010, 4, 3, 19, 30, 0), schedUTC(2010, 4, 10, 19, 30, 0)},
		},
		{
			// Hourly keeps an hour between ticks: 23 ticks on the short day.
			name: "hourly Berlin over spring forward", sched: yaml(time.Hour, "", "Europe/Berlin", ""),
			from: schedUTC(2025, 3, 29, 23, 30, 0), // 00:30 CET
			want: []time.Time{schedUTC(2025, 3, 30, 0, 0, 0), schedUTC(2025, 3, 30, 1, 0, 0), schedUTC(2025, 3, 30, 2, 0, 0)},
		},
		{
			// 15 minutes keeps 15 minutes through the repeated hour.
			name: "15 minutes Berlin over fall back", sched: yaml(15*time.Minute, "", "Europe/Berlin", ""),
			from: schedUTC(2025, 10, 26, 0, 40, 0), // 02:40 CEST
			want: []time.Time{schedUTC(2025, 10, 26, 0, 45, 0), schedUTC(2025, 10, 26, 1, 0, 0), schedUTC(2025, 10, 26, 1, 15, 0), schedUTC(2025, 10, 26, 1, 30, 0)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := tt.sched()
			if err != nil {
				t.Fatal(err)
			}
			checkSchedTicks(t, s, tt.from, tt.want)
		})
	}
}

// TestScheduleDSTHourly checks that an hourly Berlin schedule has 23 ticks
// on the spring-forward day and 25 on the fall-back day, an hour apart.
func TestScheduleDSTHourly(t *testing.T) {
	berlin := schedZone(t, "Europe/Berlin")
	s, err := schedule.Parse(time.Hour, "", "Europe/Berlin", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		day  time.Time
		want int
	}{
		{time.Date(2025, 3, 30, 0, 0, 0, 0, berlin), 23},
		{time.Date(2025, 10, 26, 0, 0, 0, 0, berlin), 25},
		{time.Date(2025, 6, 1, 0, 0, 0, 0, berlin), 24},
	} {
		end := tt.day.AddDate(0, 0, 1)
		n, prev := 0, tt.day.Add(-time.Nanosecond)
		for tick := s.Next(prev); tick.Before(end); tick = s.Next(tick) {
			if n > 0 && tick.Sub(prev) != time.Hour {
				t.Errorf("%v: tick %v is %v after the one before, want 1h", tt.day, tick, tick.Sub(prev))
			}
			n, prev = n+1, tick
		}
		if n != tt.want {
			t.Errorf("%v: %d ticks in the day, want %d", tt.day.Format(time.DateOnly), n, tt.want)
		}
	}
}

// TestScheduleFleetAgreement checks that workers computing ticks from
// different "now"s agree: Next(now) is the first tick after now of the
// sequence computed from a fixed origin, whatever now is. The windows cover
// the DST changes of Berlin, New York and Havana (which changes at
// midnight).
func TestScheduleFleetAgreement(t *testing.T) {
	type sched struct {
		name                  string
		fdl                   map[string]map[string]int
		every                 time.Duration
		cron, timezone, start string
	}
	scheds := []sched{
		{name: "FDL 5m", fdl: schedFDL(map[string]int{"MINUTE": 5}, nil)},
		{name: "FDL daily 23:59:59", fdl: schedFDL(map[string]int{"HOUR": 24}, map[string]int{"HOUR": 23, "MINUTE": 59, "SECOND": 59})},
		{name: "FDL 7h from 01:00", fdl: schedFDL(map[string]int{"HOUR": 7}, map[string]int{"HOUR": 1})},
		{name: "FDL 2 days from 03:00", fdl: schedFDL(map[string]int{"DAY": 2}, map[string]int{"HOUR": 3})},
		{name: "FDL 36h", fdl: schedFDL(map[string]int{"HOUR": 36}, nil)},
		{name: "FDL 36h from 06:00", fdl: schedFDL(map[string]int{"HOUR": 36}, map[string]int{"HOUR": 6})},
		{name: "FDL 7m", fdl: schedFDL(map[string]int{"MINUTE": 7}, nil)},
		{name: "Berlin daily 22:00", every: 24 * time.Hour, timezone: "Europe/Berlin", start: "22:00"},
		{name: "Berlin daily 02:30", every: 24 * time.Hour, timezone: "Europe/Berlin", start: "02:30"},
		{name: "Berlin 2h", every: 2 * time.Hour, timezone: "Europe/Berlin"},
		{name: "Berlin 5h from 02:30", every: 5 * time.Hour, timezone: "Europe/Berlin", start: "02:30"},
		{name: "Berlin 10m", every: 10 * time.Minute, timezone: "Europe/Berlin"},
		{name: "Berlin weekly", every: 7 * 24 * time.Hour, timezone: "Europe/Berlin", start: "09:00"},
		{name: "Berlin cron", cron: "*/20 1-3 * * *", timezone: "Europe/Berlin"},
		{name: "cron weekdays", cron: "0 9 * * MON-FRI"},
		{name: "New York cron 9:00", cron: "0 9 * * *", timezone: "America/New_York"},
		{name: "New York cron 2:30", cron: "30 2 * * *", timezone: "America/New_York"},
		{name: "New York 90m", every: 90 * time.Minute, timezone: "America/New_York"},
		{name: "Havana cron midnight", cron: "0 0 * * *", timezone: "America/Havana"},
		{name: "Havana daily midnight", every: 24 * time.Hour, timezone: "America/Havana"},
		{name: "Havana 5h from 23:30", every: 5 * time.Hour, timezone: "America/Havana", start: "23:30"},
		{name: "Havana 15m", every: 15 * time.Minute, timezone: "America/Havana"},
	}
	berlin := schedZone(t, "Europe/Berlin")
	for _, window := range []struct {
		name string
		from time.Time
	}{
		{"spring forward", time.Date(2025, 3, 28, 0, 0, 0, 0, berlin)},
		{"fall back", time.Date(2025, 10, 24, 0, 0, 0, 0, berlin)},
		{"US spring forward", time.Date(2025, 3, 7, 0, 0, 0, 0, time.UTC)},
		{"US fall back", time.Date(2025, 10, 31, 0, 0, 0, 0, time.UTC)},
	} {
		for _, sc := range scheds {
			t.Run(window.name+"/"+sc.name, func(t *testing.T) {
				var s *schedule.Schedule
				var err error
				if sc.fdl != nil {
					s, err = schedule.ParseFDL(sc.fdl)
				} else {
					s, err = schedule.Parse(sc.every, sc.cron, sc.timezone, sc.start)
				}
				if err != nil {
					t.Fatal(err)
				}
				end := window.from.Add(16 * 24 * time.Hour)
				var seq []time.Time
				for tick := s.Next(window.from); tick.Before(end); tick = s.Next(tick) {
					if len(seq) > 0 && tick.Sub(seq[len(seq)-1]) < time.Second {
						t.Fatalf("tick %v is %v after %v", tick, tick.Sub(seq[len(seq)-1]), seq[len(seq)-1])
					}
					seq = append(seq, tick)
				}
				if len(seq) < 2 {
					t.Fatalf("%d ticks in 16 days", len(seq))
				}
				// Every 17 minutes 13 seconds, and every tick, one second
				// before and the tick itself.
				var nows []time.Time
				for now := window.from; now.Before(seq[len(seq)-1]); now = now.Add(17*time.Minute + 13*time.Second) {
					nows = append(nows, now)
				}
				for _, tick := range seq[:len(seq)-1] {
					nows = append(nows, tick.Add(-time.Second), tick.Add(-time.Nanosecond), tick)
				}
				for _, now := range nows {
					i := sort.Search(len(seq), func(i int) bool { return seq[i].After(now) })
					if got := s.Next(now); !got.Equal(seq[i]) {
						t.Errorf("Next(%v) = %v, want %v (the sequence from %v)", now, got, seq[i], window.from)
					}
				}
			})
		}
	}
}

// FuzzParseFDL parses fuzzed FDL tables; for a valid one it checks
// that Next is strictly after t, that successive ticks are at least a
// second apart, and that a later "now" finds the same ticks.
func FuzzParseFDL(f *testing.F) {
	f.Add("MINUTE", 5, "", 0, "", 0, "", 0, int64(0), int64(0))
	f.Add("HOUR", 24, "", 0, "HOUR", 23, "MINUTE", 59, int64(1_000_000), int64(3600))
	f.Add("hours", 24, "", 0, "hour", 22, "minute", 0, int64(-5_000_000), int64(86_399))
	f.Add("HOUR", 0, "", 0, "", 0, "", 0, int64(0), int64(0))
	f.Add("HOUR", 7, "MINUTE", 3, "HOUR", 1, "SECOND", 7, int64(42), int64(100_000))
	f.Add("DAY", 2, "", 0, "HOUR", 3, "", 0, int64(42), int64(200_000))
	f.Add("WEEK", 1_000_000, "", 0, "", 0, "", 0, int64(0), int64(1))
	f.Add("SECOND", 1, "", 0, "", 0, "", 0, int64(7), int64(5))
	f.Add("MILLISECOND", 500, "", 0, "", 0, "", 0, int64(0), int64(0))
	f.Fuzz(func(t *testing.T, fu1 string, fv1 int, fu2 string, fv2 int, su1 string, sv1 int, su2 string, sv2 int, at, delta int64) {
		table := map[string]map[string]int{"frequency": {fu1: fv1}}
		if fu2 != "" {
			table["frequency"][fu2] = fv2
		}
		if su1 != "" {
			table["start"] = map[string]int{su1: sv1}
			if su2 != "" {
				table["start"][su2] = sv2
			}
		}
		s, err := schedule.ParseFDL(table)
		if err != nil {
			if !errors.Is(err, schedule.ErrInvalid) {
				t.Fatalf("ParseFDL(%v) error %v does not wrap ErrInvalid", table, err)
			}
			return
		}
		checkSchedProperties(t, s, at, delta)
	})
}

// schedFuzzZones are the zones FuzzParseCron runs in: no DST, Berlin's, a
// half-hour DST (Lord Howe), a 45-minute offset, DST changes at midnight
// (Havana, Santiago), and Apia, which skipped 30 December 2011.
var schedFuzzZones = []string{"", "Europe/Berlin", "Australia/Lord_Howe", "Asia/Kathmandu", "America/Havana", "America/Santiago", "Pacific/Apia"}

// FuzzParseCron parses fuzzed cron expressions in several zones; for a valid
// one it checks the properties of FuzzParseFDL.
func FuzzParseCron(f *testing.F) {
	for i, expr := range []string{
		"*/5 * * * *", "0 9 * * MON-FRI", "0 0 1 * *", "0 12 13 * FRI", "0 8 * * 0", "0 8 * * 7",
		"30 2 * * *", "0 0 29 2 *", "0 0 30 2 *", "15,45 8-12/2 * JAN,jun *", "*/0 * * * *", "0 24 * * *",
		"5/20 * * * *", "0 9-5 * * *", "1,,2 * * * *", "0 0 31 4 *",
	} {
		f.Add(expr, uint8(i), int64(i)*1_000_003, int64(i)*7_777)
	}
	f.Fuzz(func(t *testing.T, expr string, zone uint8, at, delta int64) {
		tz := schedFuzzZones[int(zone)%len(schedFuzzZones)]
		s, err := schedule.Parse(0, expr, tz, "")
		if err != nil {
			if !errors.Is(err, schedule.ErrInvalid) {
				t.Fatalf("Parse(cron %q) error %v does not wrap ErrInvalid", expr, err)
			}
			return
		}
		checkSchedProperties(t, s, at, delta)
	})
}

// checkSchedProperties checks s from a time within 1980-2100 chosen by
// at, and a later "now" delta seconds (up to 10 days) after it.
func checkSchedProperties(t *testing.T, s *schedule.Schedule, at, delta int64) {
	t.Helper()
	const lo, span = 315532800, 3786912000 - 315532800 // 1980 to 2100
	from := time.Unix(lo+schedFloorMod(at, span), schedFloorMod(delta, 1e9))
	prev := from
	var seq []time.Time
	for range 20 {
		next := s.Next(prev)
		if next.IsZero() {
			if len(seq) > 0 {
				t.Fatalf("%s: Next(%v) is zero after ticks %v", s, prev, seq)
			}
			return // a cron expression that never matches (30 February)
		}
		if !next.After(prev) {
			t.Fatalf("%s: Next(%v) = %v, not after it", s, prev, next)
		}
		if len(seq) > 0 && next.Sub(prev) < time.Second {
			t.Fatalf("%s: tick %v is %v after tick %v", s, next, next.Sub(prev), prev)
		}
		seq = append(seq, next)
		prev = next
	}
	// A worker that starts later finds the same ticks.
	later := from.Add(time.Duration(schedFloorMod(delta, 10*86400)) * time.Second)
	if !later.Before(seq[len(seq)-1]) {
		return
	}
	want := seq[0]
	for _, tick := range seq {
		if tick.After(later) {
			want = tick
			break
		}
	}
	if got := s.Next(later); !got.Equal(want) {
		t.Fatalf("%s: Next(%v) = %v, but the ticks from %v have %v: %v", s, later, got, from, want, fmt.Sprint(seq))
	}
}

func schedFloorMod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}

func TestWithOwner(t *testing.T) {
	sc, err := schedule.ParseFDL(schedFDL(map[string]int{"HOUR": 24}, nil))
	if err != nil {
		t.Fatal(err)
	}
	o := schedule.Owner{BEUUID: "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", CustomerUUID: "c_42.x"}
	owned, err := sc.WithOwner(o)
	if err != nil {
		t.Fatalf("WithOwner(%+v) = %v", o, err)
	}
	if owned.Owner() != o {
		t.Errorf("Owner() = %+v, want %+v", owned.Owner(), o)
	}
	if sc.Owner() != (schedule.Owner{}) {
		t.Errorf("WithOwner changed the schedule it was called on: Owner() = %+v", sc.Owner())
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	if owned.Next(now) != sc.Next(now) || owned.String() != sc.String() {
		t.Errorf("an owner changed the ticks: %s %v, want %s %v", owned, owned.Next(now), sc, sc.Next(now))
	}
	if none, err := sc.WithOwner(schedule.Owner{}); err != nil || none.Owner() != (schedule.Owner{}) {
		t.Errorf("WithOwner(zero) = %+v, %v; want no owner, nil", none, err)
	}

	bad := []struct {
		o    schedule.Owner
		want string
	}{
		{schedule.Owner{CustomerUUID: "c-1"}, "a customer UUID is given without a billing entity UUID"},
		{schedule.Owner{BEUUID: "be 1"}, `the billing entity UUID "be 1" has a character other than`},
		{schedule.Owner{BEUUID: "be\n1"}, `the billing entity UUID "be\n1" has a character other than`},
		{schedule.Owner{BEUUID: "bé"}, `the billing entity UUID "bé" has a character other than`},
		{schedule.Owner{BEUUID: strings.Repeat("a", 65)}, "the billing entity UUID is 65 characters, more than 64"},
		{schedule.Owner{BEUUID: "be-1", CustomerUUID: "c/1"}, `the customer UUID "c/1" has a character other than`},
	}
	for _, tt := range bad {
		_, err := sc.WithOwner(tt.o)
		if !errors.Is(err, schedule.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("WithOwner(%+v) = %v, want ErrInvalid saying %q", tt.o, err, tt.want)
		}
	}
	if _, err := sc.WithOwner(schedule.Owner{BEUUID: strings.Repeat("a", schedule.MaxUUIDLen)}); err != nil {
		t.Errorf("WithOwner(a UUID of MaxUUIDLen) = %v, want nil", err)
	}
}
