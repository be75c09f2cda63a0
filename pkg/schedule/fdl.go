package schedule

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// fdlUnits are the units of an FDL schedule table, singular; [Unit] also
// takes plurals and any case.
var fdlUnits = map[string]time.Duration{
	"SECOND": time.Second,
	"MINUTE": time.Minute,
	"HOUR":   time.Hour,
	"DAY":    24 * time.Hour,
	"WEEK":   7 * 24 * time.Hour,
}

// Unit reads a unit of an FDL schedule table: it maps "hours", "Hour" and
// "HOUR" to "HOUR". It reports false for a word that is not a unit.
func Unit(k string) (string, bool) {
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

// ParseFDL reads an FDL schedule table: {frequency = {MINUTE = 5}}
// or {start = {HOUR = 23, MINUTE = 59, SECOND = 59}, frequency = {HOUR = 24}}.
// Keys are case-insensitive, units singular or plural. Start is a time of day
// in UTC.
func ParseFDL(table map[string]map[string]int) (*Schedule, error) {
	var freq, start map[string]int
	seen := map[string]bool{}
	for k, v := range table {
		key := strings.ToLower(k)
		if seen[key] {
			// Map order would pick one of them at random on each worker.
			return nil, fmt.Errorf("%w: %s is given twice", ErrInvalid, key)
		}
		seen[key] = true
		switch key {
		case "frequency":
			freq = v
		case "start":
			start = v
		default:
			return nil, fmt.Errorf("%w: unknown key %q (want frequency and start)", ErrInvalid, k)
		}
	}
	if len(freq) == 0 {
		return nil, fmt.Errorf("%w: no frequency", ErrInvalid)
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
		return nil, fmt.Errorf("%w: start %s is not a time of day", ErrInvalid, anchor)
	}
	return newEvery(every, anchor, time.UTC, fdlText(freq, start))
}

func sumUnits(m map[string]int, what string, timeOfDay bool) (time.Duration, error) {
	var total time.Duration
	seen := map[string]bool{}
	for k, v := range m {
		u, ok := Unit(k)
		if !ok {
			return 0, fmt.Errorf("%w: %s: unknown unit %q (want SECOND, MINUTE, HOUR, DAY or WEEK)", ErrInvalid, what, k)
		}
		if seen[u] {
			return 0, fmt.Errorf("%w: %s: %s is given twice", ErrInvalid, what, u)
		}
		seen[u] = true
		if timeOfDay && (u == "DAY" || u == "WEEK") {
			return 0, fmt.Errorf("%w: start takes HOUR, MINUTE and SECOND, not %s", ErrInvalid, k)
		}
		// The second test keeps the sum from overflowing a Duration.
		if v < 0 || v > 1_000_000 || time.Duration(v) > (math.MaxInt64-total)/fdlUnits[u] {
			return 0, fmt.Errorf("%w: %s: %s = %d is out of range", ErrInvalid, what, k, v)
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
			if n, _ := Unit(k); n == u && v != 0 {
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
			switch n, _ := Unit(k); n {
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
