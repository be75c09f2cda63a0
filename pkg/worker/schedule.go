package worker

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// ErrBadSchedule is wrapped by every schedule parsing error.
var ErrBadSchedule = errors.New("worker: bad schedule")

// Schedule says when a SCHEDULED function runs: at a fixed frequency
// anchored to a time of day (FDL tables, YAML every/start), or by a cron
// expression. Tick times are a pure function of the schedule, so every
// worker of a fleet computes the same ones. A Schedule is immutable.
type Schedule struct {
	every  time.Duration
	anchor time.Duration // offset from local midnight of the first tick of a day
	cron   *cronSpec
	loc    *time.Location
	text   string
}

// String describes the schedule.
func (s *Schedule) String() string { return s.text }

// Frequency is the schedule's period; for a cron schedule, the gap between
// the next two ticks after t.
func (s *Schedule) Frequency(t time.Time) time.Duration {
	if s.cron == nil {
		return s.every
	}
	a := s.Next(t)
	return s.Next(a).Sub(a)
}

// day is the length of a day without a DST change.
const day = 24 * time.Hour

// Next returns the first tick strictly after t. The ticks of a frequency
// (every) schedule are:
//   - for a whole number n of days: the start time of day (wall clock in the
//     schedule's zone, so it keeps its hour across DST changes) on every n-th
//     day, days counted from 1970-01-01;
//   - under a day, with a start or dividing a day: each day, the start time
//     and every multiple of the frequency before and after it that falls in
//     that day (local midnight to local midnight); the first tick of a day
//     does not depend on the day before;
//   - otherwise (under a day without a start, e.g. every 7m, or over a day
//     and not whole days): a fixed grid from the Unix epoch plus the start,
//     evenly spaced across midnight.
//
// The ticks are a set that does not depend on t, so every worker of a fleet
// computes the same ones whenever it starts.
func (s *Schedule) Next(t time.Time) time.Time {
	switch {
	case s.cron != nil:
		return s.cron.next(t.In(s.loc))
	case s.every%day == 0:
		return s.nextDays(t)
	case s.every < day && (s.anchor != 0 || day%s.every == 0):
		return s.nextInDay(t)
	}
	return nextOnGrid(time.Unix(0, 0).Add(s.anchor), s.every, t).In(s.loc)
}

// nextDays is Next for a frequency of whole days.
func (s *Schedule) nextDays(t time.Time) time.Time {
	n := int64(s.every / day)
	y, m, d := t.In(s.loc).Date()
	// From the grid day before the last one on or before t's day: with DST,
	// a start time can be an instant of the next day.
	d -= int(floorMod(floorDiv(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix(), 86400), n) + n)
	for {
		if next := s.startOf(y, m, d); next.After(t) {
			return next
		}
		d += int(n)
	}
}

// nextInDay is Next for a frequency under a day laid out afresh each day:
// day y-m-d has the ticks of its grid from its midnight to the next.
func (s *Schedule) nextInDay(t time.Time) time.Time {
	y, m, d := t.In(s.loc).Date()
	d-- // t can be before its day's midnight as time.Date gives it, in a DST change
	from := t
	// A day at least as long as the frequency has a tick, so this ends after
	// two or three days; the bound only guards against a broken zone.
	for range 8 {
		start := time.Date(y, m, d, 0, 0, 0, 0, s.loc)
		if from.Before(start) {
			from = start.Add(-time.Nanosecond) // the day's first tick may be at midnight
		}
		next := nextOnGrid(s.startOf(y, m, d), s.every, from)
		if next.Before(time.Date(y, m, d+1, 0, 0, 0, 0, s.loc)) {
			return next.In(s.loc)
		}
		d++
	}
	return nextOnGrid(s.startOf(y, m, d), s.every, t).In(s.loc)
}

// startOf is the start time of day y-m-d in the schedule's zone. A start in
// a DST gap or a repeated hour is the one instant time.Date gives for it
// (which one depends on the zone's side of UTC).
func (s *Schedule) startOf(y int, m time.Month, d int) time.Time {
	return time.Date(y, m, d, 0, 0, int(s.anchor/time.Second), 0, s.loc)
}

// nextOnGrid returns the first base + k*every (k any integer) strictly after
// t; base and every are whole seconds.
func nextOnGrid(base time.Time, every time.Duration, t time.Time) time.Time {
	b, e := base.Unix(), int64(every/time.Second)
	return time.Unix(b+(floorDiv(t.Unix()-b, e)+1)*e, 0)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func floorMod(a, b int64) int64 { return a - floorDiv(a, b)*b }

// FDL units of a schedule table, singular; plurals and any case are accepted.
var fdlUnits = map[string]time.Duration{
	"SECOND": time.Second,
	"MINUTE": time.Minute,
	"HOUR":   time.Hour,
	"DAY":    24 * time.Hour,
	"WEEK":   7 * 24 * time.Hour,
}

// normUnit maps "hours", "Hour" and "HOUR" to "HOUR".
func normUnit(k string) (string, bool) {
	u := strings.ToUpper(strings.TrimSpace(k))
	if _, ok := fdlUnits[u]; ok {
		return u, true
	}
	if s, ok := strings.CutSuffix(u, "S"); ok {
		if _, ok := fdlUnits[s]; ok {
			return s, true
		}
	}
	return u, false
}

// ParseFDLSchedule reads an FDL schedule table: {frequency = {MINUTE = 5}}
// or {start = {HOUR = 23, MINUTE = 59, SECOND = 59}, frequency = {HOUR = 24}}.
// Keys are case-insensitive, units singular or plural. Start is a time of day
// in UTC.
func ParseFDLSchedule(table map[string]map[string]int) (*Schedule, error) {
	var freq, start map[string]int
	seen := map[string]bool{}
	for k, v := range table {
		key := strings.ToLower(k)
		if seen[key] {
			// Map order would pick one of them at random on each worker.
			return nil, fmt.Errorf("%w: %s is given twice", ErrBadSchedule, key)
		}
		seen[key] = true
		switch key {
		case "frequency":
			freq = v
		case "start":
			start = v
		default:
			return nil, fmt.Errorf("%w: unknown key %q (want frequency and start)", ErrBadSchedule, k)
		}
	}
	if len(freq) == 0 {
		return nil, fmt.Errorf("%w: no frequency", ErrBadSchedule)
	}
	every, err := sumUnits(freq, "frequency", false)
	if err != nil {
		return nil, err
	}
	anchor, err := sumUnits(start, "start", true)
	if err != nil {
		return nil, err
	}
	if anchor >= 24*time.Hour {
		return nil, fmt.Errorf("%w: start %s is not a time of day", ErrBadSchedule, anchor)
	}
	return newEvery(every, anchor, time.UTC, fdlText(freq, start))
}

func sumUnits(m map[string]int, what string, timeOfDay bool) (time.Duration, error) {
	var total time.Duration
	seen := map[string]bool{}
	for k, v := range m {
		u, ok := normUnit(k)
		if !ok {
			return 0, fmt.Errorf("%w: %s: unknown unit %q (want SECOND, MINUTE, HOUR, DAY or WEEK)", ErrBadSchedule, what, k)
		}
		if seen[u] {
			return 0, fmt.Errorf("%w: %s: %s is given twice", ErrBadSchedule, what, u)
		}
		seen[u] = true
		if timeOfDay && (u == "DAY" || u == "WEEK") {
			return 0, fmt.Errorf("%w: start takes HOUR, MINUTE and SECOND, not %s", ErrBadSchedule, k)
		}
		// The second test keeps the sum from overflowing a Duration.
		if v < 0 || v > 1_000_000 || time.Duration(v) > (math.MaxInt64-total)/fdlUnits[u] {
			return 0, fmt.Errorf("%w: %s: %s = %d is out of range", ErrBadSchedule, what, k, v)
		}
		total += time.Duration(v) * fdlUnits[u]
	}
	return total, nil
}

func fdlText(freq, start map[string]int) string {
	var b strings.Builder
	b.WriteString("every")
	for _, u := range []string{"WEEK", "DAY", "HOUR", "MINUTE", "SECOND"} {
		for k, v := range freq {
			if n, _ := normUnit(k); n == u && v != 0 {
				unit := strings.ToLower(u)
				if v != 1 {
					unit += "s"
				}
				fmt.Fprintf(&b, " %d %s", v, unit)
			}
		}
	}
	if len(start) > 0 {
		var h, m, s int
		for k, v := range start {
			switch n, _ := normUnit(k); n {
			case "HOUR":
				h = v
			case "MINUTE":
				m = v
			case "SECOND":
				s = v
			}
		}
		fmt.Fprintf(&b, " from %02d:%02d:%02d UTC", h, m, s)
	}
	return b.String()
}

// ParseSchedule reads a schedule of the YAML config: every (a duration,
// optionally anchored at start "HH:MM[:SS]") or cron (five fields), with an
// optional IANA timezone (default UTC).
func ParseSchedule(every time.Duration, cron, timezone, start string) (*Schedule, error) {
	loc := time.UTC
	if timezone == "Local" {
		// Workers of one fleet may run in different zones; ticks must agree.
		return nil, fmt.Errorf("%w: timezone Local depends on each worker's machine; name an IANA zone", ErrBadSchedule)
	}
	if timezone != "" {
		l, err := time.LoadLocation(timezone)
		if err != nil {
			return nil, fmt.Errorf("%w: timezone %q: %w", ErrBadSchedule, timezone, err)
		}
		loc = l
	}
	switch {
	case every != 0 && cron != "":
		return nil, fmt.Errorf("%w: set every or cron, not both", ErrBadSchedule)
	case cron != "":
		if start != "" {
			return nil, fmt.Errorf("%w: start goes with every, not cron", ErrBadSchedule)
		}
		c, err := parseCron(cron)
		if err != nil {
			return nil, err
		}
		return &Schedule{cron: c, loc: loc, text: "cron " + cron + " " + loc.String()}, nil
	case every != 0:
		var anchor time.Duration
		if start != "" {
			a, err := parseTimeOfDay(start)
			if err != nil {
				return nil, err
			}
			anchor = a
		}
		text := "every " + every.String()
		if start != "" {
			text += " from " + start + " " + loc.String()
		}
		return newEvery(every, anchor, loc, text)
	}
	return nil, fmt.Errorf("%w: set every or cron", ErrBadSchedule)
}

func newEvery(every, anchor time.Duration, loc *time.Location, text string) (*Schedule, error) {
	if every < time.Second {
		return nil, fmt.Errorf("%w: frequency %s is under a second", ErrBadSchedule, every)
	}
	if every%time.Second != 0 {
		return nil, fmt.Errorf("%w: frequency %s is not whole seconds", ErrBadSchedule, every)
	}
	return &Schedule{every: every, anchor: anchor, loc: loc, text: text}, nil
}

func parseTimeOfDay(s string) (time.Duration, error) {
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return 0, fmt.Errorf("%w: start %q is not HH:MM or HH:MM:SS", ErrBadSchedule, s)
	}
	limits := []int{23, 59, 59}
	units := []time.Duration{time.Hour, time.Minute, time.Second}
	var d time.Duration
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > limits[i] {
			return 0, fmt.Errorf("%w: start %q is not HH:MM or HH:MM:SS", ErrBadSchedule, s)
		}
		d += time.Duration(n) * units[i]
	}
	return d, nil
}

// cronSpec is a parsed five-field cron expression: minute, hour, day of
// month, month, day of week. Each field is a bit set of allowed values.
type cronSpec struct {
	minute, hour, dom, month, dow uint64
	domStar, dowStar              bool
}

var cronMonths = map[string]int{"JAN": 1, "FEB": 2, "MAR": 3, "APR": 4, "MAY": 5, "JUN": 6,
	"JUL": 7, "AUG": 8, "SEP": 9, "OCT": 10, "NOV": 11, "DEC": 12}
var cronDays = map[string]int{"SUN": 0, "MON": 1, "TUE": 2, "WED": 3, "THU": 4, "FRI": 5, "SAT": 6}

func parseCron(expr string) (*cronSpec, error) {
	fields := strings.Fields(expr)
	if len(fields) != 5 {
		return nil, fmt.Errorf("%w: cron %q has %d fields, want 5 (minute hour day-of-month month day-of-week)", ErrBadSchedule, expr, len(fields))
	}
	var c cronSpec
	var err error
	type field struct {
		dst      *uint64
		lo, hi   int
		names    map[string]int
		name     string
		starFlag *bool
	}
	specs := []field{
		{&c.minute, 0, 59, nil, "minute", nil},
		{&c.hour, 0, 23, nil, "hour", nil},
		{&c.dom, 1, 31, nil, "day of month", &c.domStar},
		{&c.month, 1, 12, cronMonths, "month", nil},
		{&c.dow, 0, 7, cronDays, "day of week", &c.dowStar},
	}
	for i, f := range specs {
		var star bool
		*f.dst, star, err = parseCronField(fields[i], f.lo, f.hi, f.names)
		if err != nil {
			return nil, fmt.Errorf("%w: cron %q: %s: %w", ErrBadSchedule, expr, f.name, err)
		}
		if f.starFlag != nil {
			*f.starFlag = star
		}
	}
	if c.dow&(1<<7) != 0 { // 7 is Sunday too
		c.dow |= 1
	}
	return &c, nil
}

func parseCronField(s string, lo, hi int, names map[string]int) (uint64, bool, error) {
	var set uint64
	star := s == "*" || strings.HasPrefix(s, "*/")
	for part := range strings.SplitSeq(s, ",") {
		rng, stepText, hasStep := strings.Cut(part, "/")
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepText)
			if err != nil || n <= 0 || n > hi {
				return 0, false, fmt.Errorf("bad step %q", stepText)
			}
			step = n
		}
		a, b := lo, hi
		if rng != "*" {
			first, last, isRange := strings.Cut(rng, "-")
			var err error
			if a, err = cronValue(first, lo, hi, names); err != nil {
				return 0, false, err
			}
			b = a
			if isRange {
				if b, err = cronValue(last, lo, hi, names); err != nil {
					return 0, false, err
				}
				if b < a {
					return 0, false, fmt.Errorf("range %q runs backwards", rng)
				}
			} else if hasStep {
				b = hi
			}
		}
		for v := a; v <= b; v += step {
			set |= 1 << uint(v)
		}
	}
	return set, star, nil
}

func cronValue(s string, lo, hi int, names map[string]int) (int, error) {
	if v, ok := names[strings.ToUpper(s)]; ok {
		return v, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	if n < lo || n > hi {
		return 0, fmt.Errorf("%d is outside %d-%d", n, lo, hi)
	}
	return n, nil
}

// next returns the first minute strictly after t that matches, in t's
// location. It gives up after five years (an impossible date such as 30
// February) and returns the zero time.
func (c *cronSpec) next(t time.Time) time.Time {
	loc := t.Location()
	t = t.Truncate(time.Minute).Add(time.Minute)
	limit := t.AddDate(5, 0, 0)
	for t.Before(limit) {
		if c.month&(1<<uint(t.Month())) == 0 {
			t = forward(t, time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, loc))
			continue
		}
		if !c.dayMatches(t) {
			t = forward(t, time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, loc))
			continue
		}
		if c.hour&(1<<uint(t.Hour())) == 0 {
			t = forward(t, time.Date(t.Year(), t.Month(), t.Day(), t.Hour()+1, 0, 0, 0, loc))
			continue
		}
		if c.minute&(1<<uint(t.Minute())) == 0 {
			t = t.Add(time.Minute)
			continue
		}
		return t
	}
	return time.Time{}
}

// forward returns to when it is after t, else the minute after t. A wall
// clock time in a DST gap is an instant before the gap in zones west of UTC
// (time.Date gives 02:00 on the day New York springs forward as 01:00 EST),
// and jumping there would never end.
func forward(t, to time.Time) time.Time {
	if to.After(t) {
		return to
	}
	return t.Add(time.Minute)
}

// dayMatches applies cron's rule: when both day fields are restricted, a
// day matching either runs.
func (c *cronSpec) dayMatches(t time.Time) bool {
	dom := c.dom&(1<<uint(t.Day())) != 0
	dow := c.dow&(1<<uint(t.Weekday())) != 0
	switch {
	case c.domStar && c.dowStar:
		return true
	case c.domStar:
		return dow
	case c.dowStar:
		return dom
	}
	return dom || dow
}
