package gcfloor

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestPercent(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		name               string
		live, roots, floor uint64
		want               int
	}{
		{"no heap read yet", 0, 0, 16 * mib, 100},
		{"no floor", 4 * mib, 0, 0, 100},
		{"live above the floor", 20 * mib, mib, 16 * mib, 100},
		{"live at half the floor", 8 * mib, 0, 16 * mib, 100},
		{"live at half the floor, with roots", 7 * mib, 2 * mib, 16 * mib, 100},
		{"small live heap", 4 * mib, 0, 16 * mib, 300},
		{"small live heap and roots", 4 * mib, mib, 16 * mib, 240},
		{"tiny live heap", 512 << 10, 0, 16 * mib, MaxPercent},
	} {
		if got := Percent(c.live, c.roots, c.floor); got != c.want {
			t.Errorf("%s: Percent(%d, %d, %d) = %d, want %d", c.name, c.live, c.roots, c.floor, got, c.want)
		}
	}
}

// TestPercentReachesFloor: the goal the pacer computes from the percent is
// the floor, give or take the rounding, while the percent is in range.
func TestPercentReachesFloor(t *testing.T) {
	const floor = 64 << 20
	for live := uint64(6 << 20); live < floor/2; live += 1 << 20 {
		roots := uint64(300 << 10)
		p := uint64(Percent(live, roots, floor))
		goal := live + (live+roots)*p/100
		if goal > floor || floor-goal > (live+roots)/100+1 {
			t.Errorf("live %d: percent %d gives goal %d, floor %d", live, p, goal, floor)
		}
	}
}

// TestFloorSetsGOGC: with a live heap far under the floor, the floor
// raises GOGC after a collection, and Stop puts back what was there.
func TestFloorSetsGOGC(t *testing.T) {
	before := debug.SetGCPercent(100)
	defer debug.SetGCPercent(before)
	debug.SetGCPercent(120)

	f := Start(1 << 30) // far over this test's heap: MaxPercent
	deadline := time.Now().Add(10 * time.Second)
	for f.Percent() != MaxPercent {
		if time.Now().After(deadline) {
			t.Fatalf("GOGC is %d after 10s of collections, want %d", f.Percent(), MaxPercent)
		}
		runtime.GC()
		time.Sleep(time.Millisecond)
	}
	if got := debug.SetGCPercent(MaxPercent); got != MaxPercent {
		t.Errorf("the runtime's GOGC is %d, want %d", got, MaxPercent)
	}
	f.Stop()
	if got := debug.SetGCPercent(120); got != 120 {
		t.Errorf("GOGC after Stop = %d, want 120 (as before Start)", got)
	}
	if f.Percent() != 120 {
		t.Errorf("Percent after Stop = %d, want 120", f.Percent())
	}
	// After Stop, collections leave GOGC alone.
	debug.SetGCPercent(150)
	for range 3 {
		runtime.GC()
		time.Sleep(time.Millisecond)
	}
	runtime.GC()
	if got := debug.SetGCPercent(120); got != 150 {
		t.Errorf("GOGC after collections after Stop = %d, want 150", got)
	}
}

// TestFloorFollowsLiveHeap: a live heap larger than half the floor gets Go's
// default, so the floor never makes the heap grow beyond what GOGC 100
// would.
func TestFloorFollowsLiveHeap(t *testing.T) {
	before := debug.SetGCPercent(100)
	defer debug.SetGCPercent(before)

	live := make([]byte, 8<<20) // with the rest of the test's heap, over half the floor
	f := Start(12 << 20)
	defer f.Stop()
	deadline := time.Now().Add(10 * time.Second)
	for f.Percent() != 100 {
		if time.Now().After(deadline) {
			t.Fatalf("GOGC is %d with a live heap over half the floor, want 100", f.Percent())
		}
		runtime.GC()
		time.Sleep(time.Millisecond)
	}
	runtime.KeepAlive(live)
}

// TestFloorLeavesCollectorOff: a process whose collector is off keeps it
// off.
func TestFloorLeavesCollectorOff(t *testing.T) {
	before := debug.SetGCPercent(-1)
	defer debug.SetGCPercent(before)

	f := Start(1 << 30)
	if got := debug.SetGCPercent(-1); got != -1 {
		t.Fatalf("GOGC after Start = %d, want -1 (off)", got)
	}
	if f.Percent() != -1 {
		t.Errorf("Percent = %d, want -1", f.Percent())
	}
	runtime.GC()
	time.Sleep(10 * time.Millisecond)
	if got := debug.SetGCPercent(-1); got != -1 {
		t.Errorf("GOGC after a collection = %d, want -1 (off)", got)
	}
	f.Stop()
	if got := debug.SetGCPercent(-1); got != -1 {
		t.Errorf("GOGC after Stop = %d, want -1 (off)", got)
	}
}
