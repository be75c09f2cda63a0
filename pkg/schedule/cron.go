package schedule

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// cronSpec is a parsed five-field cron expression: minute, hour, day of
// month, month, day of week. Each field is a bit set of allowed values.
//
// github.com/robfig/cron/v3 reads the fields; this file adds what it reads
// differently from Vixie cron, whose rules schedules keep: 7 is Sunday as
// well as 0, a step is at most the field's largest value, empty list items,
// "?", "*-5" and zone or descriptor prefixes are errors, and a day field is
// unrestricted only when it is "*" or starts with "*/" (robfig counts "*/2"
// as restricted and "*,5" as not). next is not robfig's
// SpecSchedule.Next: around a DST change that one can skip a matching day
// (it skips Sunday 4 April 2010 in Australia/Lord_Howe for "0 6 * * SUN";
// TestScheduleNext pins the day), so next walks the wall clock as before.
type cronSpec struct {
	minute, hour, dom, month, dow uint64
	domStar, dowStar              bool
}

// cronField is one field of a cron expression and the robfig/cron parser
// that reads it alone.
type cronField struct {
	name   string
	hi     int // the largest value, for steps
	parser cron.Parser
	pick   func(*cron.SpecSchedule) uint64
}

var cronFields = [5]cronField{
	{"minute", 59, cron.NewParser(cron.Minute), func(s *cron.SpecSchedule) uint64 { return s.Minute }},
	{"hour", 23, cron.NewParser(cron.Hour), func(s *cron.SpecSchedule) uint64 { return s.Hour }},
	{"day of month", 31, cron.NewParser(cron.Dom), func(s *cron.SpecSchedule) uint64 { return s.Dom }},
	{"month", 12, cron.NewParser(cron.Month), func(s *cron.SpecSchedule) uint64 { return s.Month }},
	{"day of week", 7, cron.NewParser(cron.Dow), func(s *cron.SpecSchedule) uint64 { return s.Dow }},
}

// robfigStar is the bit robfig/cron sets in a field written "*"; the bit
// sets here hold values only.
const robfigStar = 1 << 63

func parseCron(expr string) (*cronSpec, error) {
	fields := strings.Fields(expr)
	if len(fields) != 5 {
		return nil, fmt.Errorf("%w: cron %q has %d fields, want 5 (minute hour day-of-month month day-of-week)", ErrInvalid, expr, len(fields))
	}
	var sets [5]uint64
	for i, f := range cronFields {
		set, err := f.parse(fields[i])
		if err != nil {
			return nil, fmt.Errorf("%w: cron %q: %s: %w", ErrInvalid, expr, f.name, err)
		}
		sets[i] = set
	}
	star := func(s string) bool { return s == "*" || strings.HasPrefix(s, "*/") }
	return &cronSpec{
		minute: sets[0], hour: sets[1], dom: sets[2], month: sets[3], dow: sets[4],
		domStar: star(fields[2]), dowStar: star(fields[4]),
	}, nil
}

// parse reads one field: comma-separated parts, each a value, a range or
// "*", optionally with a step.
func (f cronField) parse(s string) (uint64, error) {
	var extra uint64
	parts := strings.Split(s, ",")
	for i, part := range parts {
		rng, stepText, hasStep := strings.Cut(part, "/")
		if hasStep {
			// robfig takes any step; a step past the largest value is a typo.
			if n, err := strconv.Atoi(stepText); err != nil || n <= 0 || n > f.hi {
				return 0, fmt.Errorf("bad step %q", stepText)
			}
		}
		// robfig/cron also reads "?" as "*", "*-5" as "*", and a leading
		// "TZ=" or "@" as a zone or a descriptor; here they are not values.
		// robfig/cron also skips empty parts.
		if rng == "" || strings.ContainsAny(part, "?=@") || (strings.HasPrefix(rng, "*") && rng != "*") {
			return 0, fmt.Errorf("%q is not a value", rng)
		}
		if f.hi == 7 && rng != "*" {
			p, sunday, err := f.sundayAsSeven(rng, stepText, hasStep)
			if err != nil {
				return 0, err
			}
			parts[i] = p
			if sunday {
				extra |= 1
			}
		}
	}
	spec, err := f.parser.Parse(strings.Join(parts, ","))
	if err != nil {
		return 0, err
	}
	return (f.pick(spec.(*cron.SpecSchedule)) | extra) &^ robfigStar, nil
}

// sundayAsSeven rewrites a day-of-week part for robfig/cron, which counts
// 0-6: a part that reaches 7 stops at 6, and Sunday is added when its steps
// land on 7.
func (f cronField) sundayAsSeven(rng, stepText string, hasStep bool) (string, bool, error) {
	lo, hi, isRange := strings.Cut(rng, "-")
	if !isRange {
		hi = lo
	}
	if n, err := strconv.Atoi(hi); err != nil || n != 7 {
		return rng + stepSuffix(stepText, hasStep), false, nil
	}
	first := 7
	if n, err := strconv.Atoi(lo); isRange && (err != nil || n != 7) {
		spec, err := f.parser.Parse(lo)
		if err != nil {
			return "", false, err
		}
		first = bits.TrailingZeros64(f.pick(spec.(*cron.SpecSchedule)) &^ robfigStar)
	}
	step := 1
	if hasStep {
		step, _ = strconv.Atoi(stepText) // checked by parse
	}
	sunday := (7-first)%step == 0
	if first == 7 {
		return "0", true, nil // "7" and "7/n" are Sunday alone
	}
	return lo + "-6" + stepSuffix(stepText, hasStep), sunday, nil
}

func stepSuffix(stepText string, hasStep bool) string {
	if hasStep {
		return "/" + stepText
	}
	return ""
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
