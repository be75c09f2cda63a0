package matcher

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/triggerbus/triggerbus/pkg/subjects"
)

// Entry is a validated registration. Entries are built by [Build] and shared
// by every caller of a [Set]: they must not be modified.
type Entry struct {
	// Function is the registration with its defaults applied: Timeout is set,
	// FailurePolicy and Mode are set on PRE types, and Options is either
	// [subjects.Any] alone or the named options, sorted.
	Function
	// Type is the catalogue entry of Function.TriggerType.
	Type *subjects.TriggerType
	// Any says the function is registered for ANY: it runs for every option
	// of its type.
	Any bool
}

// Set is a compiled index of registrations. It is immutable and safe for
// concurrent use. Build one with [Build]; a nil *Set behaves as an empty set.
type Set struct {
	entries []*Entry
	types   map[string]*typeIndex
}

// typeIndex holds the precomputed Match results of one trigger type.
type typeIndex struct {
	typ *subjects.TriggerType
	// any is the type's ANY registrations in order: the result for an option
	// nobody named.
	any []*Entry
	// byOption is, for each option named by a registration, the
	// registrations naming it merged in order with any.
	byOption map[string][]*Entry
}

// Build validates fns and compiles the valid ones into a Set.
//
// Build always returns a usable Set, even when it also returns an error: the
// Set holds every function that passed validation and leaves out every one
// that did not, so that a worker can serve the valid functions while it
// reports the others. The error joins (errors.Join) one *[FunctionError] per
// problem found, in the order of fns; a function may have several. Of
// functions sharing a ref, the first keeps it and each later one is reported
// as a duplicate and left out.
//
// Build does not keep fns; each [Entry] holds a copy of its Function (the
// Handler and Schedule are shared).
func Build(fns []Function) (*Set, error) {
	var errs []error
	entries := make([]*Entry, 0, len(fns))
	first := make(map[string]int, len(fns)) // ref -> index of its first definition
	for i, f := range fns {
		e, problems := entry(f)
		if f.Ref != "" {
			if j, dup := first[f.Ref]; dup {
				where := fns[j].Source
				if where == "" {
					where = fmt.Sprintf("index %d", j)
				}
				dupErr := newProblem(ErrDuplicateRef, "duplicate ref, also defined at %s", where)
				problems = append([]error{dupErr}, problems...)
			} else {
				first[f.Ref] = i
			}
		}
		for _, p := range problems {
			errs = append(errs, &FunctionError{Ref: f.Ref, Index: i, Source: f.Source, Err: p})
		}
		if len(problems) == 0 {
			entries = append(entries, e)
		}
	}
	return compile(entries), errors.Join(errs...)
}

// compile indexes validated entries.
func compile(entries []*Entry) *Set {
	slices.SortFunc(entries, func(a, b *Entry) int {
		return cmp.Or(strings.Compare(a.Type.Name, b.Type.Name), byOrder(a, b))
	})
	s := &Set{entries: slices.Clip(entries), types: make(map[string]*typeIndex)}
	for rest := entries; len(rest) > 0; {
		n := 1
		for n < len(rest) && rest[n].Type == rest[0].Type {
			n++
		}
		s.types[rest[0].Type.Name] = indexType(rest[:n])
		rest = rest[n:]
	}
	return s
}

// indexType indexes the entries of one type, given in order.
func indexType(entries []*Entry) *typeIndex {
	ti := &typeIndex{typ: entries[0].Type}
	specific := make(map[string][]*Entry)
	for _, e := range entries {
		if e.Any {
			ti.any = append(ti.any, e)
			continue
		}
		for _, o := range e.Options {
			specific[o] = append(specific[o], e)
		}
	}
	ti.any = slices.Clip(ti.any)
	if len(specific) > 0 {
		ti.byOption = make(map[string][]*Entry, len(specific))
		for o, l := range specific {
			ti.byOption[o] = merge(l, ti.any)
		}
	}
	return ti
}

// merge merges two lists in order into a new one whose capacity is its
// length, so that an append by a caller of Match cannot write into it.
func merge(a, b []*Entry) []*Entry {
	out := make([]*Entry, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		if byOrder(a[0], b[0]) <= 0 {
			out, a = append(out, a[0]), a[1:]
		} else {
			out, b = append(out, b[0]), b[1:]
		}
	}
	out = append(out, a...)
	return append(out, b...)
}

// byOrder is the order functions run in: ascending priority, ties by ref.
func byOrder(a, b *Entry) int {
	return cmp.Or(cmp.Compare(a.Priority, b.Priority), strings.Compare(a.Ref, b.Ref))
}

// Match returns the functions to run for an event of triggerType with option,
// in the order they run: ascending priority, ties by ref. Functions registered
// for ANY match every option. It returns nil when no function matches.
//
// The returned slice is shared and must not be modified. Match does not
// allocate, and its cost does not grow with the number of registrations.
func (s *Set) Match(triggerType, option string) []*Entry {
	if s == nil {
		return nil
	}
	ti := s.types[triggerType]
	if ti == nil {
		return nil
	}
	if l, ok := ti.byOption[option]; ok {
		return l
	}
	return ti.any
}

// Wants reports whether any function matches an event of triggerType with
// option: len(s.Match(triggerType, option)) > 0. It does not allocate.
func (s *Set) Wants(triggerType, option string) bool {
	return len(s.Match(triggerType, option)) > 0
}

// Entries returns every entry of the set sorted by trigger type name, then in
// the order they run (priority, then ref). The slice is the caller's; the
// entries are shared and must not be modified.
func (s *Set) Entries() []*Entry {
	if s == nil {
		return nil
	}
	return slices.Clone(s.entries)
}

// Len returns the number of entries in the set.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.entries)
}

// Subscriptions returns the minimal set of subjects under scheme that serve
// every entry of the set, split by phase: PRE types in pre (request-reply),
// POST types and SCHEDULED in post. A type with an ANY registration gets only
// its wildcard <prefix>.<TYPE>.*, any other type one literal subject per
// option registered for it. Both lists are sorted; either is nil when empty.
func (s *Set) Subscriptions(scheme subjects.Scheme) (pre, post []string) {
	if s == nil {
		return nil, nil
	}
	for name, ti := range s.types {
		list := &post
		if ti.typ.IsPre() {
			list = &pre
		}
		if len(ti.any) > 0 {
			*list = append(*list, scheme.Pattern(name, subjects.Any))
			continue
		}
		for o := range ti.byOption {
			*list = append(*list, scheme.Pattern(name, o))
		}
	}
	slices.Sort(pre)
	slices.Sort(post)
	return pre, post
}

// Subjects returns the subjects under scheme that deliver events to e: the
// type's wildcard for an ANY entry, else one literal subject per option, in
// the order of e.Options. It is for showing where a function listens (the
// check command); the worker subscribes to [Set.Subscriptions].
func (s *Set) Subjects(e *Entry, scheme subjects.Scheme) []string {
	if e == nil {
		return nil
	}
	if e.Any {
		return []string{scheme.Pattern(e.Type.Name, subjects.Any)}
	}
	out := make([]string, len(e.Options))
	for i, o := range e.Options {
		out[i] = scheme.Pattern(e.Type.Name, o)
	}
	return out
}
