package javadate

import (
	"testing"
	"time"
)

func TestFormat(t *testing.T) {
	at := time.Date(2013, time.March, 4, 5, 6, 7, 89*int(time.Millisecond), time.UTC)
	plus := at.In(time.FixedZone("", 5*3600+30*60))
	tests := []struct {
		t       time.Time
		pattern string
		want    string
	}{
		{at, "yyyy-MM-dd HH:mm:ss", "2013-03-04 05:06:07"},
		{at, "yy/M/d H:m:s.S", "13/3/4 5:6:7.89"},
		{at, "yyyyMMddHHmmssSSS", "20130304050607089"},
		{at, "EEEE, MMMM d, yyyy h:mm a", "Monday, March 4, 2013 5:06 AM"},
		{at, "EEE MMM dd D u G", "Mon Mar 04 63 1 AD"},
		{at, "'at' HH 'o''clock' ''", "at 05 o'clock '"},
		{at, "yyyy-MM-dd'T'HH:mm:ssX z Z", "2013-03-04T05:06:07Z UTC +0000"},
		{plus, "HH:mm X XX XXX z Z", "10:36 +05 +0530 +05:30 GMT+05:30 +0530"},
		{at.Add(12 * time.Hour), "K k h a", "5 17 5 PM"},
		{time.Date(2013, 1, 1, 0, 0, 0, 0, time.UTC), "K k h a", "0 24 12 AM"},
	}
	for _, tt := range tests {
		pat, err := Compile(tt.pattern)
		if err != nil {
			t.Fatalf("Compile(%q) error = %v", tt.pattern, err)
		}
		if got := pat.Format(tt.t); got != tt.want {
			t.Errorf("format(%v, %q) = %q, want %q", tt.t, tt.pattern, got, tt.want)
		}
	}
}

func TestParse(t *testing.T) {
	now := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		s, pattern string
		want       time.Time
	}{
		{"2013-03-04 05:06:07", "yyyy-MM-dd HH:mm:ss", time.Date(2013, 3, 4, 5, 6, 7, 0, time.UTC)},
		{"20130304050607089", "yyyyMMddHHmmssSSS", time.Date(2013, 3, 4, 5, 6, 7, 89e6, time.UTC)},
		{"4 march 13", "d MMMM yy", time.Date(2013, 3, 4, 0, 0, 0, 0, time.UTC)},
		{"Mon, 4 Mar 2013", "EEE, d MMM yyyy", time.Date(2013, 3, 4, 0, 0, 0, 0, time.UTC)},
		{"1/2/99", "d/M/yy", time.Date(1999, 2, 1, 0, 0, 0, 0, time.UTC)},
		{"12:30 PM", "hh:mm a", time.Date(1970, 1, 1, 12, 30, 0, 0, time.UTC)},
		{"12:30 AM", "hh:mm a", time.Date(1970, 1, 1, 0, 30, 0, 0, time.UTC)},
		{"2013-03-04T05:06:07+05:30", "yyyy-MM-dd'T'HH:mm:ssXXX", time.Date(2013, 3, 4, 5, 6, 7, 0, time.FixedZone("", 19800))},
		{"2013-03-04 05:06 GMT-2", "yyyy-MM-dd HH:mm z", time.Date(2013, 3, 4, 7, 6, 0, 0, time.UTC)},
		{"2013-03-04 05:06 Z", "yyyy-MM-dd HH:mm Z", time.Date(2013, 3, 4, 5, 6, 0, 0, time.UTC)},
		{"2013-02-30", "yyyy-MM-dd", time.Date(2013, 3, 2, 0, 0, 0, 0, time.UTC)},
		{"2013 060", "yyyy DDD", time.Date(2013, 3, 1, 0, 0, 0, 0, time.UTC)},
		{"2013-03-04  ", "yyyy-MM-dd", time.Date(2013, 3, 4, 0, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		pat, err := Compile(tt.pattern)
		if err != nil {
			t.Fatalf("Compile(%q) error = %v", tt.pattern, err)
		}
		got, err := pat.Parse(tt.s, time.UTC, now)
		if err != nil || !got.Equal(tt.want) {
			t.Errorf("parse(%q, %q) = %v, %v; want %v", tt.s, tt.pattern, got, err, tt.want)
		}
	}
}

func TestErrors(t *testing.T) {
	for _, p := range []string{"yyyy-ww", "'open", "yyyy Q"} {
		if _, err := Compile(p); err == nil {
			t.Errorf("Compile(%q) error = nil", p)
		}
	}
	tests := []struct{ s, pattern string }{
		{"2013-03", "yyyy-MM-dd"},
		{"2013-03-04x", "yyyy-MM-dd"},
		{"13-Foo-04", "yy-MMM-dd"},
		{"x", "HH"},
		{"05 XM", "hh a"},
		{"05:00 +99", "HH:mm Z"},
	}
	for _, tt := range tests {
		pat, err := Compile(tt.pattern)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := pat.Parse(tt.s, time.UTC, time.Now()); err == nil {
			t.Errorf("parse(%q, %q) = %v, want an error", tt.s, tt.pattern, got)
		}
	}
}
