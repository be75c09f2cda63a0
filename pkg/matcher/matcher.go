package matcher

import "sync/atomic"

// Matcher holds the current [Set] and lets it be replaced (on a config
// reload) while events are being matched. It is safe for concurrent use.
//
// Load once per event and match against that Set, so that the event sees one
// consistent set of functions even when a Swap happens meanwhile:
//
//	set := m.Load()
//	for _, e := range set.Match(typ, option) { ... }
//
// The zero Matcher holds no Set: Load returns nil, which behaves as an empty
// set.
type Matcher struct {
	set atomic.Pointer[Set]
}

// New returns a Matcher holding s; nil s means an empty set.
func New(s *Set) *Matcher {
	m := &Matcher{}
	m.Swap(s)
	return m
}

// Load returns the current Set.
func (m *Matcher) Load() *Set { return m.set.Load() }

// Swap makes s the current Set (nil means an empty set) and returns the one it
// replaces. Events already matched against the old Set keep it.
func (m *Matcher) Swap(s *Set) (old *Set) {
	if s == nil {
		s = empty
	}
	return m.set.Swap(s)
}
