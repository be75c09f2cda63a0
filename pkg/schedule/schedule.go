package schedule

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ErrInvalid is wrapped by every error of [Parse] and [ParseFDL].
var ErrInvalid = errors.New("schedule: invalid")

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
	owner  Owner
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

// Parse reads a schedule of the YAML config: every (a duration,
// optionally anchored at start "HH:MM[:SS]") or cron (five fields), with an
// optional IANA timezone (default UTC).
func Parse(every time.Duration, cron, timezone, start string) (*Schedule, error) {
	loc := time.UTC
	if timezone == "Local" {
		// Workers of one fleet may run in different zones; ticks must agree.
		return nil, fmt.Errorf("%w: timezone Local depends on each worker's machine; name an IANA zone", ErrInvalid)
	}
	if timezone != "" {
		l, err := time.LoadLocation(timezone)
		if err != nil {
			return nil, fmt.Errorf("%w: timezone %q: %w", ErrInvalid, timezone, err)
		}
		loc = l
	}
	switch {
	case every != 0 && cron != "":
		return nil, fmt.Errorf("%w: set every or cron, not both", ErrInvalid)
	case cron != "":
		if start != "" {
			return nil, fmt.Errorf("%w: start goes with every, not cron", ErrInvalid)
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
	return nil, fmt.Errorf("%w: set every or cron", ErrInvalid)
}

func newEvery(every, anchor time.Duration, loc *time.Location, text string) (*Schedule, error) {
	if every < time.Second {
		return nil, fmt.Errorf("%w: frequency %s is under a second", ErrInvalid, every)
	}
	if every%time.Second != 0 {
		return nil, fmt.Errorf("%w: frequency %s is not whole seconds", ErrInvalid, every)
	}
	return &Schedule{every: every, anchor: anchor, loc: loc, text: text}, nil
}

func parseTimeOfDay(s string) (time.Duration, error) {
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return 0, fmt.Errorf("%w: start %q is not HH:MM or HH:MM:SS", ErrInvalid, s)
	}
	limits := []int{23, 59, 59}
	units := []time.Duration{time.Hour, time.Minute, time.Second}
	var d time.Duration
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > limits[i] {
			return 0, fmt.Errorf("%w: start %q is not HH:MM or HH:MM:SS", ErrInvalid, s)
		}
		d += time.Duration(n) * units[i]
	}
	return d, nil
}
