package matcher

import (
	"context"

	"errors"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/schedule"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/triggerbus/triggerbus/pkg/subjects"
)

func TestBuildErrors(t *testing.T) {
	ok := Function{Ref: "first", TriggerType: "PRE_CREATE", Options: []string{"SERVER"}, Source: "a.yaml functions[0]"}
	tests := []struct {
		name    string
		give    Function
		before  []Function // registered before give
		wantErr error
		wantMsg string
	}{
		{
			name:    "empty ref",
			give:    Function{TriggerType: "PRE_AUTH", Source: "scripts/auth.lua:4"},
			wantErr: ErrEmptyRef,
			wantMsg: "function at index 0 (scripts/auth.lua:4): empty ref",
		},
		{
			name:    "duplicate ref",
			give:    Function{Ref: "first", TriggerType: "PRE_AUTH", Source: "b.lua:9"},
			before:  []Function{ok},
			wantErr: ErrDuplicateRef,
			wantMsg: `function "first" (b.lua:9): duplicate ref, also defined at a.yaml functions[0]`,
		},
		{
			name:    "unknown type",
			give:    Function{Ref: "f", TriggerType: "PRE_CRATE", Options: []string{"SERVER"}},
			wantErr: subjects.ErrUnknownType,
			wantMsg: `function "f": unknown trigger type "PRE_CRATE" (did you mean "PRE_CREATE"?)`,
		},
		{
			name:    "no type",
			give:    Function{Ref: "f"},
			wantErr: subjects.ErrUnknownType,
			wantMsg: `function "f": no trigger type`,
		},
		{
			name:    "option not a token",
			give:    Function{Ref: "f", TriggerType: "POST_USER_API_CALL", Options: []string{"create.server"}},
			wantErr: subjects.ErrInvalidToken,
			wantMsg: `POST_USER_API_CALL: invalid option: "create.server" has '.'`,
		},
		{
			name:    "option with a space",
			give:    Function{Ref: "f", TriggerType: "POST_EXCEPTION", Options: []string{"a b"}},
			wantErr: subjects.ErrInvalidToken,
			wantMsg: `POST_EXCEPTION: invalid option: "a b" has white space`,
		},
		{
			name:    "empty option",
			give:    Function{Ref: "f", TriggerType: "POST_CREATE", Options: []string{""}},
			wantErr: subjects.ErrEmptyToken,
			wantMsg: `function "f": POST_CREATE: empty option`,
		},
		{
			name:    "unknown option in a closed set",
			give:    Function{Ref: "deny_big", TriggerType: "PRE_CREATE", Options: []string{"SERVERR"}, Source: "scripts/quota.lua:3"},
			wantErr: subjects.ErrUnknownOption,
			wantMsg: `function "deny_big" (scripts/quota.lua:3): PRE_CREATE: unknown option "SERVERR" (did you mean "SERVER"?)`,
		},
		{
			name:    "unknown option without suggestion",
			give:    Function{Ref: "f", TriggerType: "POST_JOB_STATE_CHANGE", Options: []string{"EXPLODED"}},
			wantErr: subjects.ErrUnknownOption,
			wantMsg: `function "f": POST_JOB_STATE_CHANGE: unknown option "EXPLODED"`,
		},
		{
			name:    "option on an option-less type",
			give:    Function{Ref: "f", TriggerType: "PRE_AUTH", Options: []string{"SERVER"}},
			wantErr: subjects.ErrAnyRequired,
			wantMsg: `PRE_AUTH: takes no option, got "SERVER"`,
		},
		{
			name:    "ANY with other options",
			give:    Function{Ref: "f", TriggerType: "POST_CREATE", Options: []string{"SERVER", "ANY"}},
			wantErr: ErrAnyMixed,
			wantMsg: `function "f": POST_CREATE: ANY is listed with other options`,
		},
		{
			name:    "duplicate option",
			give:    Function{Ref: "f", TriggerType: "POST_CREATE", Options: []string{"SERVER", "DISK", "SERVER", "SERVER"}},
			wantErr: ErrDuplicateOption,
			wantMsg: `function "f": POST_CREATE: option "SERVER" is listed more than once`,
		},
		{
			name:    "duplicate ANY",
			give:    Function{Ref: "f", TriggerType: "PRE_AUTH", Options: []string{"ANY", "ANY"}},
			wantErr: ErrDuplicateOption,
			wantMsg: `option "ANY" is listed more than once`,
		},
		{
			name:    "no options on a type with options",
			give:    Function{Ref: "f", TriggerType: "POST_SERVER_STATE_CHANGE"},
			wantErr: ErrNoOptions,
			wantMsg: `function "f": POST_SERVER_STATE_CHANGE: no options`,
		},
		{
			name:    "failure policy on POST",
			give:    Function{Ref: "f", TriggerType: "POST_CREATE", Options: []string{"ANY"}, FailurePolicy: FailOpen},
			wantErr: ErrPreOnly,
			wantMsg: `function "f": POST_CREATE: failure policy "ignore" is a PRE setting`,
		},
		{
			name:    "mode on SCHEDULED",
			give:    Function{Ref: "f", TriggerType: "SCHEDULED", Schedule: hourly, Mode: Shadow},
			wantErr: ErrPreOnly,
			wantMsg: `function "f": SCHEDULED: mode "shadow" is a PRE setting`,
		},
		{
			name:    "unknown failure policy",
			give:    Function{Ref: "f", TriggerType: "PRE_AUTH", FailurePolicy: "Fail"},
			wantErr: ErrUnknownPolicy,
			wantMsg: `function "f": PRE_AUTH: unknown failure policy "Fail" (did you mean "fail"?)`,
		},
		{
			name:    "unknown mode",
			give:    Function{Ref: "f", TriggerType: "TAX_CALCULATION", Options: []string{"ANY"}, Mode: "dry-run"},
			wantErr: ErrUnknownMode,
			wantMsg: `function "f": TAX_CALCULATION: unknown mode "dry-run" (want "enforce" or "shadow")`,
		},
		{
			name:    "schedule on another type",
			give:    Function{Ref: "f", TriggerType: "POST_BILLING", Schedule: hourly},
			wantErr: ErrScheduleNotAllowed,
			wantMsg: `function "f": POST_BILLING: has a schedule`,
		},
		{
			name:    "SCHEDULED without a schedule",
			give:    Function{Ref: "tick", TriggerType: "SCHEDULED", Source: "scripts/tick.lua:1"},
			wantErr: ErrScheduleRequired,
			wantMsg: `function "tick" (scripts/tick.lua:1): SCHEDULED: no schedule`,
		},
		{
			name:    "negative timeout",
			give:    Function{Ref: "f", TriggerType: "PRE_AUTH", Timeout: -time.Second},
			wantErr: ErrNegativeTimeout,
			wantMsg: `function "f": negative timeout -1s`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fns := append(slices.Clone(tt.before), tt.give)
			set, err := Build(fns)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Build() error = %v, want %v", err, tt.wantErr)
			}
			if !errors.Is(err, ErrInvalidFunction) {
				t.Errorf("Build() error = %v, does not match ErrInvalidFunction", err)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("Build() error = %q, want it to contain %q", err, tt.wantMsg)
			}
			var fe *FunctionError
			if !errors.As(err, &fe) || fe.Ref != tt.give.Ref || fe.Source != tt.give.Source || fe.Index != len(tt.before) {
				t.Errorf("Build() error %v: FunctionError = %+v, want ref %q, source %q, index %d", err, fe, tt.give.Ref, tt.give.Source, len(tt.before))
			}
			if set == nil || set.Len() != len(tt.before) {
				t.Errorf("Build() set has %d entries, want %d (the valid ones)", set.Len(), len(tt.before))
			}
		})
	}
}

func TestBuildSuggestionIsReachable(t *testing.T) {
	_, err := Build([]Function{{Ref: "deny_big", TriggerType: "PRE_CREATE", Options: []string{"SERVERR"}}})
	var oe *subjects.OptionError
	if !errors.As(err, &oe) || oe.Suggestion != "SERVER" {
		t.Fatalf("Build() error = %v, want a *subjects.OptionError suggesting SERVER, got %+v", err, oe)
	}
}

// TestBuildReportsAllAndKeepsValid checks that Build reports every problem of
// every function, in order, and serves the valid functions.
func TestBuildReportsAllAndKeepsValid(t *testing.T) {
	fns := []Function{
		{Ref: "good1", TriggerType: "PRE_CREATE", Options: []string{"SERVER"}},
		{Ref: "bad1", TriggerType: "PRE_CREATE", Options: []string{"SERVERR", "DISKK"}, Timeout: -1, Source: "x.lua:1"},
		{Ref: "good2", TriggerType: "POST_CREATE", Options: []string{"ANY"}},
		{Ref: "good1", TriggerType: "PRE_AUTH", Source: "y.lua:2"},
		{TriggerType: "NOPE"},
	}
	set, err := Build(fns)
	if err == nil {
		t.Fatal("Build() error = nil, want problems")
	}
	var got []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var fe *FunctionError
		if !errors.As(e, &fe) {
			t.Fatalf("joined error %v is not a *FunctionError", e)
		}
		got = append(got, fe.Error())
	}
	want := []string{
		`function "bad1" (x.lua:1): negative timeout -1ns`,
		`function "bad1" (x.lua:1): PRE_CREATE: unknown option "SERVERR" (did you mean "SERVER"?)`,
		`function "bad1" (x.lua:1): PRE_CREATE: unknown option "DISKK" (did you mean "DISK"?)`,
		`function "good1" (y.lua:2): duplicate ref, also defined at index 0`,
		`function at index 4: empty ref`,
		`function at index 4: unknown trigger type "NOPE"`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("Build() errors =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got, want := refs(set.Entries()), []string{"good2", "good1"}; !slices.Equal(got, want) {
		t.Errorf("Build() entries = %v, want %v", got, want)
	}
}

func TestBuildDefaults(t *testing.T) {
	opts := []string{"SERVER", "DISK"}
	handler := handlers.Func(func(context.Context, *event.Event) (handlers.Result, error) { return handlers.Result{}, nil })
	set, err := Build([]Function{
		{Ref: "pre", TriggerType: "PRE_CREATE", Options: opts, Handler: handler},
		{Ref: "pre_set", TriggerType: "PRE_AUTH", FailurePolicy: FailOpen, Mode: Shadow, Timeout: time.Second},
		{Ref: "post", TriggerType: "POST_BILLING"},
		{Ref: "tick", TriggerType: "SCHEDULED", Schedule: hourly, Options: []string{"ANY"}},
	})
	if err != nil {
		t.Fatalf("Build() error = %v", err)
	}
	opts[0] = "CHANGED" // the set keeps its own copy
	byRef := map[string]*Entry{}
	for _, e := range set.Entries() {
		byRef[e.Ref] = e
	}
	tests := []struct {
		ref     string
		policy  FailurePolicy
		mode    Mode
		timeout time.Duration
		options []string
		isAny   bool
	}{
		{"pre", FailClosed, Enforce, DefaultTimeout, []string{"DISK", "SERVER"}, false},
		{"pre_set", FailOpen, Shadow, time.Second, []string{"ANY"}, true},
		{"post", "", "", DefaultTimeout, []string{"ANY"}, true},
		{"tick", "", "", DefaultTimeout, []string{"ANY"}, true},
	}
	for _, tt := range tests {
		e := byRef[tt.ref]
		if e == nil {
			t.Fatalf("entry %q missing", tt.ref)
		}
		if e.FailurePolicy != tt.policy || e.Mode != tt.mode || e.Timeout != tt.timeout ||
			!slices.Equal(e.Options, tt.options) || e.Any != tt.isAny || e.Type.Name != e.TriggerType {
			t.Errorf("entry %q = %+v, want policy %q mode %q timeout %v options %v any %v",
				tt.ref, e, tt.policy, tt.mode, tt.timeout, tt.options, tt.isAny)
		}
	}
	if byRef["pre"].Handler == nil || byRef["tick"].Schedule != hourly {
		t.Errorf("entries pre and tick = %+v, %+v, want the handler and the schedule kept", byRef["pre"], byRef["tick"])
	}
}

func TestMatch(t *testing.T) {
	fns := []Function{
		{Ref: "c_any", TriggerType: "POST_CREATE", Options: []string{"ANY"}, Priority: 0},
		{Ref: "b_server", TriggerType: "POST_CREATE", Options: []string{"SERVER", "DISK"}, Priority: 0},
		{Ref: "a_server", TriggerType: "POST_CREATE", Options: []string{"SERVER"}, Priority: 0},
		{Ref: "z_first", TriggerType: "POST_CREATE", Options: []string{"SERVER"}, Priority: -9000},
		{Ref: "late_any", TriggerType: "POST_CREATE", Options: []string{"ANY"}, Priority: 100},
		{Ref: "early_any", TriggerType: "POST_CREATE", Options: []string{"ANY"}, Priority: -8000},
		{Ref: "disk_only", TriggerType: "PRE_CREATE", Options: []string{"DISK"}, Priority: 5},
		{Ref: "auth2", TriggerType: "PRE_AUTH", Priority: 2},
		{Ref: "auth1", TriggerType: "PRE_AUTH", Priority: 1},
		{Ref: "api", TriggerType: "POST_USER_API_CALL", Options: []string{"createServer"}},
	}
	set, err := Build(fns)
	if err != nil {
		t.Fatalf("Build() error = %v", err)
	}
	tests := []struct {
		typ, option string
		want        []string
	}{
		{"POST_CREATE", "SERVER", []string{"z_first", "early_any", "a_server", "b_server", "c_any", "late_any"}},
		{"POST_CREATE", "DISK", []string{"early_any", "b_server", "c_any", "late_any"}},
		{"POST_CREATE", "VDC", []string{"early_any", "c_any", "late_any"}},
		{"POST_CREATE", "ANY", []string{"early_any", "c_any", "late_any"}},
		{"PRE_CREATE", "DISK", []string{"disk_only"}},
		{"PRE_CREATE", "SERVER", nil},
		{"PRE_AUTH", "ANY", []string{"auth1", "auth2"}},
		{"POST_USER_API_CALL", "createServer", []string{"api"}},
		{"POST_USER_API_CALL", "createserver", nil},
		{"POST_DELETE", "SERVER", nil},
		{"NOT_A_TYPE", "SERVER", nil},
		{"", "", nil},
	}
	for _, tt := range tests {
		got := set.Match(tt.typ, tt.option)
		if !slices.Equal(refs(got), tt.want) {
			t.Errorf("Match(%q, %q) = %v, want %v", tt.typ, tt.option, refs(got), tt.want)
		}
		if set.Wants(tt.typ, tt.option) != (len(tt.want) > 0) {
			t.Errorf("Wants(%q, %q) = %v, want %v", tt.typ, tt.option, !(len(tt.want) > 0), len(tt.want) > 0)
		}
		if cap(got) != len(got) {
			t.Errorf("Match(%q, %q): cap %d > len %d, an append by the caller would write into the set", tt.typ, tt.option, cap(got), len(got))
		}
	}
}

func TestEntries(t *testing.T) {
	set, err := Build([]Function{
		{Ref: "b", TriggerType: "PRE_CREATE", Options: []string{"SERVER"}, Priority: 1},
		{Ref: "a", TriggerType: "PRE_CREATE", Options: []string{"DISK"}, Priority: 1},
		{Ref: "z", TriggerType: "PRE_CREATE", Options: []string{"ANY"}, Priority: -1},
		{Ref: "y", TriggerType: "POST_CREATE", Options: []string{"ANY"}, Priority: 9},
		{Ref: "x", TriggerType: "PRE_AUTH"},
	})
	if err != nil {
		t.Fatalf("Build() error = %v", err)
	}
	if got, want := refs(set.Entries()), []string{"y", "x", "z", "a", "b"}; !slices.Equal(got, want) {
		t.Errorf("Entries() = %v, want %v", got, want)
	}
	if set.Len() != 5 {
		t.Errorf("Len() = %d, want 5", set.Len())
	}
	set.Entries()[0] = nil // the slice is the caller's
	if set.Entries()[0] == nil {
		t.Error("Entries() returned the set's own slice")
	}
}

func TestSubscriptions(t *testing.T) {
	tests := []struct {
		name     string
		prefix   string
		give     []Function
		wantPre  []string
		wantPost []string
	}{
		{
			name:   "empty",
			prefix: "trigger",
		},
		{
			name:   "ANY subsumes specifics",
			prefix: "trigger",
			give: []Function{
				{Ref: "a", TriggerType: "POST_CREATE", Options: []string{"SERVER", "DISK"}},
				{Ref: "b", TriggerType: "POST_CREATE", Options: []string{"ANY"}},
				{Ref: "c", TriggerType: "POST_CREATE", Options: []string{"VDC"}},
			},
			wantPost: []string{"trigger.POST_CREATE.*"},
		},
		{
			name:   "one literal per option, deduplicated",
			prefix: "trigger",
			give: []Function{
				{Ref: "a", TriggerType: "PRE_CREATE", Options: []string{"SERVER", "DISK"}},
				{Ref: "b", TriggerType: "PRE_CREATE", Options: []string{"SERVER"}},
				{Ref: "c", TriggerType: "PRE_DELETE", Options: []string{"SERVER"}},
			},
			wantPre: []string{"trigger.PRE_CREATE.DISK", "trigger.PRE_CREATE.SERVER", "trigger.PRE_DELETE.SERVER"},
		},
		{
			name:   "PRE and POST split, SCHEDULED with POST",
			prefix: "trigger",
			give: []Function{
				{Ref: "auth", TriggerType: "PRE_AUTH"},
				{Ref: "tax", TriggerType: "TAX_CALCULATION", Options: []string{"GB"}},
				{Ref: "tick", TriggerType: "SCHEDULED", Schedule: hourly},
				{Ref: "job", TriggerType: "POST_JOB_STATE_CHANGE", Options: []string{"FAILED", "SUCCESSFUL"}},
			},
			wantPre:  []string{"trigger.PRE_AUTH.*", "trigger.TAX_CALCULATION.GB"},
			wantPost: []string{"trigger.POST_JOB_STATE_CHANGE.FAILED", "trigger.POST_JOB_STATE_CHANGE.SUCCESSFUL", "trigger.SCHEDULED.*"},
		},
		{
			name:   "multi-token prefix",
			prefix: "fco.eu1.trigger",
			give: []Function{
				{Ref: "a", TriggerType: "PRE_CREATE", Options: []string{"ANY"}},
				{Ref: "b", TriggerType: "POST_USER_API_CALL", Options: []string{"createServer"}},
			},
			wantPre:  []string{"fco.eu1.trigger.PRE_CREATE.*"},
			wantPost: []string{"fco.eu1.trigger.POST_USER_API_CALL.createServer"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			scheme := mustScheme(t, tt.prefix)
			set, err := Build(tt.give)
			if err != nil {
				t.Fatalf("Build() error = %v", err)
			}
			pre, post := set.Subscriptions(scheme)
			if !slices.Equal(pre, tt.wantPre) || !slices.Equal(post, tt.wantPost) {
				t.Errorf("Subscriptions(%q) = %q, %q, want %q, %q", tt.prefix, pre, post, tt.wantPre, tt.wantPost)
			}
		})
	}
}

func TestSubjects(t *testing.T) {
	scheme := mustScheme(t, "fco.eu1.trigger")
	set, err := Build([]Function{
		{Ref: "a", TriggerType: "PRE_CREATE", Options: []string{"SERVER", "DISK"}},
		{Ref: "b", TriggerType: "PRE_AUTH"},
	})
	if err != nil {
		t.Fatalf("Build() error = %v", err)
	}
	want := map[string][]string{
		"a": {"fco.eu1.trigger.PRE_CREATE.DISK", "fco.eu1.trigger.PRE_CREATE.SERVER"},
		"b": {"fco.eu1.trigger.PRE_AUTH.*"},
	}
	for _, e := range set.Entries() {
		if got := set.Subjects(e, scheme); !slices.Equal(got, want[e.Ref]) {
			t.Errorf("Subjects(%s) = %q, want %q", e.Ref, got, want[e.Ref])
		}
	}
}

func TestNilSet(t *testing.T) {
	var s *Set
	pre, post := s.Subscriptions(mustScheme(t, "trigger"))
	if s.Match("PRE_AUTH", "ANY") != nil || s.Wants("PRE_AUTH", "ANY") || s.Len() != 0 || s.Entries() != nil || pre != nil || post != nil {
		t.Error("a nil *Set does not behave as an empty set")
	}
}

func TestMatchNoAlloc(t *testing.T) {
	set := benchSet(t, 1000)
	tests := []struct{ typ, option string }{
		{"POST_CREATE", "SERVER"},            // literal hit
		{"POST_USER_API_CALL", "neverNamed"}, // ANY-only hit
		{"PRE_DELETE", "VDC"},                // miss
		{"NOT_A_TYPE", "X"},                  // unknown type
	}
	for _, tt := range tests {
		if n := testing.AllocsPerRun(100, func() { set.Match(tt.typ, tt.option) }); n != 0 {
			t.Errorf("Match(%q, %q) allocates %v times, want 0", tt.typ, tt.option, n)
		}
		if n := testing.AllocsPerRun(100, func() { set.Wants(tt.typ, tt.option) }); n != 0 {
			t.Errorf("Wants(%q, %q) allocates %v times, want 0", tt.typ, tt.option, n)
		}
	}
}

func refs(es []*Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Ref)
	}
	return out
}

func mustScheme(t testing.TB, prefix string) subjects.Scheme {
	t.Helper()
	s, err := subjects.NewScheme(prefix)
	if err != nil {
		t.Fatalf("NewScheme(%q) error = %v", prefix, err)
	}
	return s
}

// hourly is the schedule of the SCHEDULED functions of the tests.
var hourly = func() *schedule.Schedule {
	s, err := schedule.Parse(time.Hour, "", "", "")
	if err != nil {
		panic(err)
	}
	return s
}()

// scheduleFor returns a schedule for a SCHEDULED type, nil for another.
func scheduleFor(typ string) *schedule.Schedule {
	if typ == scheduledType {
		return hourly
	}
	return nil
}
