// Package gcfloor keeps the garbage collector of a process whose live heap
// is small from running after every few megabytes it allocates.
//
// Go starts a collection once the heap has grown by GOGC percent (100) of
// the heap the last one left live, and at 4 MB at the least. A worker's live
// heap is a few megabytes while events pass through it at tens of megabytes
// a second, so with the defaults it collects dozens of times a second, and
// each collection marks, sweeps and refills its allocation caches again.
// A [Floor] raises GOGC after each collection so that the next one is due
// when the heap reaches the floor; a live heap of half the floor or more is
// collected as Go's default would. The floor bounds what it costs: the heap
// grows to the floor at the most, or to what GOGC 100 allows when that is
// more.
package gcfloor

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
)

// MaxPercent is the highest GOGC a Floor sets: with a live heap under a
// tenth of the floor, the next collection comes before the floor.
const MaxPercent = 1000

// What the pacer sets the next collection's heap goal from: the heap the
// last collection marked live, and the goroutine stacks and globals it
// scans (goal = live + (live + stacks + globals) * GOGC/100).
var goalMetrics = []string{"/gc/heap/live:bytes", "/gc/scan/stack:bytes", "/gc/scan/globals:bytes"}

// Env are the environment variables with which an operator sets the
// collector; a process that has either should not start a Floor.
var Env = []string{"GOGC", "GOMEMLIMIT"}

// EnvSets returns the first of [Env] the environment sets, if any.
func EnvSets() (name, value string, ok bool) {
	for _, name := range Env {
		if v := os.Getenv(name); v != "" {
			return name, v, true
		}
	}
	return "", "", false
}

// Floor adjusts GOGC after each collection; see the package comment.
type Floor struct {
	floor   uint64
	prev    int // GOGC before Start, put back by Stop
	percent atomic.Int64
	stopped atomic.Bool

	mu     sync.Mutex // one adjustment at a time (finalizers run one by one; Stop too)
	sample []metrics.Sample
}

// sentinel is the object whose finalizer runs once per collection: it is
// unreachable as soon as it is made, and its finalizer sets itself again
// on a new one.
type sentinel struct{ f *Floor }

// Start sets GOGC for floor bytes now and after every collection, until
// Stop. Only one Floor should run in a process: GOGC is the process's. With
// the collector off (GOGC negative), Start leaves it off and the Floor does
// nothing.
func Start(floor uint64) *Floor {
	f := &Floor{floor: floor}
	for _, name := range goalMetrics {
		f.sample = append(f.sample, metrics.Sample{Name: name})
	}
	f.prev = debug.SetGCPercent(100)
	if f.prev < 0 {
		debug.SetGCPercent(f.prev)
		f.percent.Store(int64(f.prev))
		f.stopped.Store(true)
		return f
	}
	f.percent.Store(100)
	f.adjust()
	f.arm()
	return f
}

// arm makes a new sentinel with the finalizer that adjusts GOGC.
func (f *Floor) arm() {
	s := &sentinel{f: f}
	runtime.SetFinalizer(s, func(s *sentinel) {
		if s.f.stopped.Load() {
			return
		}
		s.f.adjust()
		s.f.arm()
	})
}

// Percent is the GOGC the floor set last.
func (f *Floor) Percent() int { return int(f.percent.Load()) }

// Stop ends the adjustments and puts GOGC back as it was before Start.
func (f *Floor) Stop() {
	if f.stopped.Swap(true) {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	debug.SetGCPercent(f.prev)
	f.percent.Store(int64(f.prev))
}

// adjust sets GOGC for the live heap the last collection left.
func (f *Floor) adjust() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped.Load() {
		return
	}
	metrics.Read(f.sample)
	var v [3]uint64
	for i, s := range f.sample {
		if s.Value.Kind() == metrics.KindUint64 {
			v[i] = s.Value.Uint64()
		}
	}
	p := Percent(v[0], v[1]+v[2], f.floor)
	if int64(p) != f.percent.Load() {
		debug.SetGCPercent(p)
		f.percent.Store(int64(p))
	}
}

// Percent is the GOGC that sets the next collection's heap goal to floor,
// after a collection that left live bytes of heap and roots bytes of
// goroutine stacks and globals to scan: between 100 (Go's default) and
// MaxPercent.
func Percent(live, roots, floor uint64) int {
	if live == 0 || floor <= live {
		return 100
	}
	p := (floor - live) * 100 / (live + roots)
	switch {
	case p < 100:
		return 100
	case p > MaxPercent:
		return MaxPercent
	}
	return int(p)
}
