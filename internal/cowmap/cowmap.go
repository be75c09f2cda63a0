// Package cowmap is a map read on every event without a lock: a writer
// replaces it whole (copy on write), which suits maps that stop growing once
// the traffic has been seen (one entry a subject, a label set, a type and
// option).
package cowmap

import (
	"maps"
	"sync"
	"sync/atomic"
)

// Map is a copy-on-write map. The zero value is empty and ready.
type Map[K comparable, V any] struct {
	mu sync.Mutex // serialises writers
	m  atomic.Pointer[map[K]V]
}

// Get returns the value of k, if any.
func (c *Map[K, V]) Get(k K) (V, bool) {
	if m := c.m.Load(); m != nil {
		v, ok := (*m)[k]
		return v, ok
	}
	var zero V
	return zero, false
}

// GetOrAdd returns the value of k, adding make()'s when k has none.
func (c *Map[K, V]) GetOrAdd(k K, make func() V) V {
	if v, ok := c.Get(k); ok {
		return v
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.locked()[k]; ok {
		return v
	}
	v := make()
	c.store(k, v)
	return v
}

// Add gives k the value v unless k has one or the map holds limit entries.
func (c *Map[K, V]) Add(k K, v V, limit int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cur := c.locked()
	if _, ok := cur[k]; ok || len(cur) >= limit {
		return
	}
	c.store(k, v)
}

// locked returns the current map; c.mu is held.
func (c *Map[K, V]) locked() map[K]V {
	if m := c.m.Load(); m != nil {
		return *m
	}
	return nil
}

// store replaces the map with a copy that has k set to v; c.mu is held.
func (c *Map[K, V]) store(k K, v V) {
	next := maps.Clone(c.locked())
	if next == nil {
		next = map[K]V{}
	}
	next[k] = v
	c.m.Store(&next)
}
