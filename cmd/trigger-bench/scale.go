package main

import (
	"context"
	"fmt"

	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/subjects"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// fillers returns n functions none of which matches PRE_CREATE.SERVER, the
// event of the PRE scenarios: they go round every trigger type but
// SCHEDULED (which needs a schedule and durable delivery), with the type's
// known options in turn (never SERVER for PRE_CREATE, never ANY on a type
// with options) or, for open option sets, one of 500 made-up method names.
func fillers(n int) []worker.Function {
	var pool []*subjects.TriggerType
	for _, t := range subjects.Types() {
		if t.Name != "SCHEDULED" {
			pool = append(pool, t)
		}
	}
	known := make(map[string][]string, len(pool))
	for _, t := range pool {
		for _, o := range t.KnownOptions() {
			if o == subjects.Any || (t.Name == "PRE_CREATE" && o == benchOption) {
				continue
			}
			known[t.Name] = append(known[t.Name], o)
		}
	}
	noop := handlers.Func(func(context.Context, *event.Event) (handlers.Result, error) { return handlers.Result{}, nil })
	fns := make([]worker.Function, 0, n)
	for i := 0; len(fns) < n; i++ {
		t := pool[i%len(pool)]
		round := i / len(pool)
		f := worker.Function{Ref: fmt.Sprintf("filler_%05d", i), TriggerType: t.Name, Priority: i%7 - 3, Handler: noop}
		ks := known[t.Name]
		switch {
		case !t.OptionKind.HasOptions():
			// ANY: the type's only subject.
		case t.OptionKind.Closed() || (len(ks) > 0 && round%2 == 0):
			f.Options = []string{ks[round%len(ks)]}
		default:
			f.Options = []string{fmt.Sprintf("benchMethod%d", round%500)}
		}
		fns = append(fns, f)
	}
	return fns
}
