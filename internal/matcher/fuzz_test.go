package matcher

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/triggerbus/triggerbus/pkg/subjects"
)

// parseSpec turns a compact registration list into functions, for fuzzing:
// entries separated by ';', each TYPE=OPTION,OPTION@PRIORITY (options and
// priority optional). Function i gets ref f<i>; SCHEDULED ones get a schedule.
func parseSpec(spec string) []Function {
	var fns []Function
	for i, item := range strings.Split(spec, ";") {
		typ, rest, _ := strings.Cut(item, "=")
		opts, prio, _ := strings.Cut(rest, "@")
		f := Function{Ref: "f" + strconv.Itoa(i), TriggerType: typ, Schedule: scheduleFor(typ)}
		if opts != "" {
			f.Options = strings.Split(opts, ",")
		}
		f.Priority, _ = strconv.Atoi(prio)
		fns = append(fns, f)
	}
	return fns
}

// FuzzMatch checks Match and Subscriptions against nats-server's subject
// matching: an entry is returned by Match for an event subject iff one of its
// subjects matches the event subject, and a subscription matches the event
// subject iff Match returns something.
func FuzzMatch(f *testing.F) {
	specs := []string{
		"POST_CREATE=ANY;POST_CREATE=SERVER,DISK@-5;POST_CREATE=SERVER@3;PRE_AUTH@1;PRE_AUTH=ANY@1",
		"PRE_CREATE=SERVERR;PRE_CREATE=SERVER,ANY;PRE_CREATE=DISK,DISK;SCHEDULED;POST_BILLING",
		"POST_USER_API_CALL=createServer,deleteResource;PRE_USER_API_CALL=ANY@-9000;TAX_CALCULATION=GB",
		"POST_JOB_STATE_CHANGE=FAILED,SUCCESSFUL;PRE_JOB_STATE_CHANGE=ANY;POST_EXCEPTION=a.b;POST_EXCEPTION=x y",
		"PRE_SERVER_STATE_CHANGE=RUNNING@2;POST_SERVER_STATE_CHANGE;PRE_CRATE=SERVER;=;@",
	}
	events := []struct{ typ, option string }{
		{"POST_CREATE", "SERVER"}, {"POST_CREATE", "VDC"}, {"POST_CREATE", "ANY"}, {"PRE_AUTH", "ANY"},
		{"PRE_CREATE", "DISK"}, {"POST_USER_API_CALL", "createServer"}, {"POST_JOB_STATE_CHANGE", "FAILED"},
		{"NOT_A_TYPE", "SERVER"}, {"POST_CREATE", "*"}, {"POST_CREATE", ">"},
	}
	for i, spec := range specs {
		for j, ev := range events {
			prefix := "trigger"
			if (i+j)%3 == 0 {
				prefix = "fco.eu1.trigger"
			}
			f.Add(spec, prefix, ev.typ, ev.option)
		}
	}
	f.Fuzz(func(t *testing.T, spec, prefix, evType, evOption string) {
		fns := parseSpec(spec)
		set, err := Build(fns)
		if err != nil && !errors.Is(err, ErrInvalidFunction) {
			t.Fatalf("Build() error %v does not match ErrInvalidFunction", err)
		}
		// Every function is either in the set or reported.
		reported := map[int]bool{}
		if err != nil {
			for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
				var fe *FunctionError
				if !errors.As(e, &fe) {
					t.Fatalf("Build() error %v is not a *FunctionError", e)
				}
				reported[fe.Index] = true
			}
		}
		inSet := map[string]bool{}
		for _, e := range set.Entries() {
			inSet[e.Ref] = true
		}
		for i, fn := range fns {
			if inSet[fn.Ref] == reported[i] {
				t.Fatalf("function %d (%+v): in set %v, reported %v", i, fn, inSet[fn.Ref], reported[i])
			}
		}

		scheme, err := subjects.NewScheme(prefix)
		if err != nil {
			return
		}
		pre, post := set.Subscriptions(scheme)
		subs := append(slices.Clone(pre), post...)
		checkMinimal(t, pre)
		checkMinimal(t, post)

		if strings.Contains(evType, ".") || strings.Contains(evOption, ".") {
			return
		}
		subject := prefix + "." + evType + "." + evOption
		if !server.IsValidPublishSubject(subject) {
			return
		}
		got := set.Match(evType, evOption)
		if set.Wants(evType, evOption) != (len(got) > 0) {
			t.Fatalf("Wants(%q, %q) disagrees with Match", evType, evOption)
		}
		if !slices.IsSortedFunc(got, byOrder) {
			t.Fatalf("Match(%q, %q) = %v, not in order", evType, evOption, refs(got))
		}
		matched := map[string]bool{}
		for _, e := range got {
			if matched[e.Ref] {
				t.Fatalf("Match(%q, %q) = %v, has %s twice", evType, evOption, refs(got), e.Ref)
			}
			matched[e.Ref] = true
		}
		for _, e := range set.Entries() {
			want := slices.ContainsFunc(set.Subjects(e, scheme), func(p string) bool {
				return server.SubjectMatchesFilter(subject, p)
			})
			if matched[e.Ref] != want {
				t.Fatalf("Match(%q, %q) has %s = %v, nats-server says %v (subjects %q)",
					evType, evOption, e.Ref, matched[e.Ref], want, set.Subjects(e, scheme))
			}
		}
		bySub := slices.ContainsFunc(subs, func(p string) bool { return server.SubjectMatchesFilter(subject, p) })
		if bySub != (len(got) > 0) {
			t.Fatalf("subject %q: subscribed %v (%q), but Match has %d entries", subject, bySub, subs, len(got))
		}
		if len(got) > 0 {
			wantIn := post
			if got[0].Type.IsPre() {
				wantIn = pre
			}
			if !slices.ContainsFunc(wantIn, func(p string) bool { return server.SubjectMatchesFilter(subject, p) }) {
				t.Fatalf("subject %q of a %s type is not served by the %s list", subject, got[0].Type.Phase, got[0].Type.Phase)
			}
		}
	})
}

// checkMinimal checks that subs is sorted, has no duplicate, and that no
// subject in it is covered by another one.
func checkMinimal(t *testing.T, subs []string) {
	t.Helper()
	for i, s := range subs {
		if !server.IsValidSubject(s) {
			t.Fatalf("subscription %q is not a valid subject", s)
		}
		if i > 0 && subs[i-1] >= s {
			t.Fatalf("subscriptions %q not sorted or not unique", subs)
		}
		for _, o := range subs {
			if o != s && server.SubjectMatchesFilter(s, o) {
				t.Fatalf("subscriptions %q: %q is covered by %q", subs, s, o)
			}
		}
	}
}

func TestParseSpec(t *testing.T) {
	got := parseSpec("POST_CREATE=SERVER,DISK@-5;SCHEDULED")
	want := []Function{
		{Ref: "f0", TriggerType: "POST_CREATE", Options: []string{"SERVER", "DISK"}, Priority: -5},
		{Ref: "f1", TriggerType: "SCHEDULED", Schedule: hourly},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("parseSpec() = %+v, want %+v", got, want)
	}
}
