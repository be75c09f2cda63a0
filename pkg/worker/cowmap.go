package worker

import (
	"maps"
	"sync"
	"sync/atomic"
)

// cowMap is a map read on every event without a lock: a writer replaces it
// whole (copy on write), which suits maps that stop growing once the
// traffic has been seen (one entry a subject or a label set). The zero
// value is empty and ready.
type cowMap[K comparable, V any] struct {
	mu sync.Mutex // serialises writers
	m  atomic.Pointer[map[K]V]
}

// get returns the value of k, if any.
func (c *cowMap[K, V]) get(k K) (V, bool) {
	if m := c.m.Load(); m != nil {
		v, ok := (*m)[k]
		return v, ok
	}
	var zero V
	return zero, false
}

// getOrAdd returns the value of k, adding make()'s when k has none.
func (c *cowMap[K, V]) getOrAdd(k K, make func() V) V {
	if v, ok := c.get(k); ok {
		return v
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var cur map[K]V
	if m := c.m.Load(); m != nil {
		cur = *m
	}
	if v, ok := cur[k]; ok {
		return v
	}
	v := make()
	next := maps.Clone(cur)
	if next == nil {
		next = map[K]V{}
	}
	next[k] = v
	c.m.Store(&next)
	return v
}
