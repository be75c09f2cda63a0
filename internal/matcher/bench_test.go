package matcher

import (
	"fmt"
	"testing"

	"github.com/triggerbus/triggerbus/pkg/subjects"
)

// benchFunctions returns n registrations spread over every trigger type and
// many options: one POST_CREATE.SERVER function, one POST_USER_API_CALL ANY
// function and one PRE_DELETE.SERVER function first, then generated ones in
// which every fifth function of a type with options is registered for ANY.
// No generated function is for PRE_DELETE, and none names the option
// "neverNamed", so that PRE_DELETE.VDC is a miss and
// POST_USER_API_CALL.neverNamed an ANY-only hit.
func benchFunctions(n int) []Function {
	fns := []Function{
		{Ref: "lit", TriggerType: "POST_CREATE", Options: []string{"SERVER"}},
		{Ref: "any", TriggerType: "POST_USER_API_CALL", Options: []string{subjects.Any}},
		{Ref: "del", TriggerType: "PRE_DELETE", Options: []string{"SERVER"}},
	}
	var pool []*subjects.TriggerType
	for _, t := range subjects.Types() {
		if t.Name != "PRE_DELETE" {
			pool = append(pool, t)
		}
	}
	for i := 0; len(fns) < n; i++ {
		t := pool[i%len(pool)]
		round := i / len(pool)
		f := Function{
			Ref:         fmt.Sprintf("f%05d", i),
			TriggerType: t.Name,
			Priority:    i%7 - 3,
			Schedule:    scheduleFor(t.Name),
		}
		switch known := t.KnownOptions(); {
		case !t.OptionKind.HasOptions():
		case round%5 == 4:
			f.Options = []string{subjects.Any}
		case len(known) > 0 && known[round%len(known)] != subjects.Any:
			f.Options = []string{known[round%len(known)], fmt.Sprintf("opt%d", round%40)}
			if t.OptionKind.Closed() {
				f.Options = f.Options[:1]
			}
		default:
			f.Options = []string{fmt.Sprintf("opt%d", round%40)}
			if t.OptionKind.Closed() {
				f.Options = []string{"SERVER"}
			}
		}
		fns = append(fns, f)
	}
	return fns[:n]
}

func benchSet(tb testing.TB, n int) *Set {
	tb.Helper()
	set, err := Build(benchFunctions(n))
	if err != nil {
		tb.Fatalf("Build() error = %v", err)
	}
	if set.Len() != n {
		tb.Fatalf("Build() has %d entries, want %d", set.Len(), n)
	}
	return set
}

func BenchmarkMatch(b *testing.B) {
	cases := []struct {
		name, typ, option string
		wantHit           bool
	}{
		{"literal", "POST_CREATE", "SERVER", true},
		{"any", "POST_USER_API_CALL", "neverNamed", true},
		{"miss", "PRE_DELETE", "VDC", false},
	}
	for _, n := range []int{10, 1000, 10000} {
		set := benchSet(b, n)
		for _, c := range cases {
			if set.Wants(c.typ, c.option) != c.wantHit {
				b.Fatalf("n=%d: Wants(%q, %q) = %v", n, c.typ, c.option, !c.wantHit)
			}
			b.Run(fmt.Sprintf("n=%d/%s", n, c.name), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					set.Match(c.typ, c.option)
				}
				b.ReportMetric(float64(len(set.Match(c.typ, c.option))), "matched")
			})
		}
	}
}

func BenchmarkBuild(b *testing.B) {
	for _, n := range []int{10, 1000, 10000} {
		fns := benchFunctions(n)
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Build(fns); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
