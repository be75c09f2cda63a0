package worker

import (
	"sync/atomic"
	"time"
)

// How often the lane's monitor looks at the PRE queue while the worker
// runs: every preLaneTick, and every preLaneHelpTick while PRE requests
// wait for help. A PRE request the lane cannot take (it runs a slow event)
// waits one to two ticks before idle dispatchers are woken to take it;
// then, while the lane stays stuck, the woken ones take the requests that
// follow at once. The slower tick keeps the monitor's own cost small next
// to a sequence of quick requests.
const (
	preLaneTick     = time.Millisecond
	preLaneHelpTick = 250 * time.Microsecond
)

// preLaneNaps is how many ticks the monitor sees the lane idle, with the
// queue empty, before it stops ticking until the lane takes work again.
const preLaneNaps = 100

// preLane is the one dispatcher that waits on the PRE queue. It takes the
// PRE requests one after the other, as a raw NATS responder's callback does:
// a burst of requests read together is answered together, its replies
// leave in one write of the connection's flusher, and no dispatcher is woken
// for each. It takes POST and durable work too, like the other dispatchers,
// which do not wait on the PRE queue. The lane's monitor wakes them (help)
// when a request waits while the lane has not moved on for a tick (a slow
// function, or a lane the host did not schedule), or still waits a tick
// after that (a lane that cannot keep up); woken dispatchers take PRE
// requests, and wait for more while the lane stays stuck on one event.
type preLane struct {
	help   chan struct{} // unbuffered: an idle dispatcher takes PRE requests
	taken  atomic.Uint64 // events the lane has taken
	busy   atomic.Bool   // the lane handles one
	stuck  atomic.Bool   // the lane has handled the same event for a tick while PRE requests waited
	asleep atomic.Bool   // the monitor does not tick; the lane wakes it
	wake   chan struct{} // one pending wake-up of the monitor
}

func newPreLane() *preLane {
	return &preLane{help: make(chan struct{}), wake: make(chan struct{}, 1)}
}

// usesPreLane reports whether the worker runs a PRE lane: with room for it
// and one more dispatcher within MaxInFlight, which help it.
func (w *Worker) usesPreLane() bool { return w.cfg.MaxInFlight >= 2 }

// startPreLane starts the lane and its monitor; the lane is one of the
// core dispatchers.
func (w *Worker) startPreLane() {
	w.lane = newPreLane()
	w.dispatchers.Add(1)
	w.wg.Add(1)
	go w.runPreLane()
	w.inflight.Add(1)
	go w.monitorPreLane()
}

// runPreLane is the lane: a core dispatcher that also waits on the PRE
// queue. At the stop it handles what the queues still hold, as the others.
func (w *Worker) runPreLane() {
	defer w.wg.Done()
	defer w.dispatchers.Add(-1)
	for {
		var j job
		select {
		case j.msg = <-w.pre:
		case j.msg = <-w.post:
		case j = <-w.work:
		case <-w.stopping:
			w.handleQueued(w.laneRun)
			return
		}
		w.laneRun(j)
	}
}

// laneRun runs j on the lane.
func (w *Worker) laneRun(j job) {
	l := w.lane
	l.taken.Add(1)
	l.busy.Store(true)
	// After busy is set: the monitor either sees it or is seen asleep
	// here (see monitorPreLane).
	if l.asleep.Load() && l.asleep.CompareAndSwap(true, false) {
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
	w.run(j)
	l.busy.Store(false)
	l.stuck.Store(false)
}

// monitorPreLane wakes dispatchers to help the lane (see preLane) until the
// stop.
func (w *Worker) monitorPreLane() {
	defer w.inflight.Done()
	l := w.lane
	tick := time.NewTicker(preLaneTick)
	defer tick.Stop()
	last, waited, idle := l.taken.Load(), false, 0
	for {
		select {
		case <-tick.C:
		case <-w.stopping:
			return
		}
		taken, waiting := l.taken.Load(), len(w.pre)
		switch {
		case waiting > 0 && (taken == last || waited):
			if taken == last && l.busy.Load() {
				l.stuck.Store(true)
			}
			w.helpLane(waiting)
			idle = 0
		case waiting == 0 && !l.busy.Load():
			idle++
		default:
			idle = 0
		}
		if now := waiting > 0; now != waited {
			period := preLaneTick
			if now {
				period = preLaneHelpTick
			}
			tick.Reset(period)
		}
		last, waited = taken, waiting > 0
		if idle < preLaneNaps {
			continue
		}
		// Asleep first, then look again: the lane sets busy before it
		// reads asleep, so one of the two sees the other.
		idle = 0
		l.asleep.Store(true)
		if l.busy.Load() || len(w.pre) > 0 {
			if l.asleep.CompareAndSwap(true, false) {
				continue
			}
		}
		tick.Stop()
		select {
		case <-l.wake:
		case <-w.stopping:
			return
		}
		tick.Reset(preLaneTick)
		last, waited = l.taken.Load(), false
	}
}

// helpLane wakes up to n idle dispatchers to take PRE requests; when none
// is idle, it wakes the grower (see spare).
func (w *Worker) helpLane(n int) {
	for range n {
		select {
		case w.lane.help <- struct{}{}:
		default:
			w.spare()
			return
		}
	}
}

// helpPre is a dispatcher woken to help the lane: it handles PRE requests
// while some wait, and, while the lane is stuck on one, waits for more.
func (w *Worker) helpPre() {
	for {
		select {
		case m := <-w.pre:
			w.run(job{msg: m})
			continue
		default:
		}
		if !w.lane.stuck.Load() {
			return
		}
		select {
		case m := <-w.pre:
			w.run(job{msg: m})
		case <-w.stopping:
			return
		}
	}
}
