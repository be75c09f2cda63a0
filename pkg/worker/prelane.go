package worker

import (
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// How often the lane's monitor looks at the PRE queue while it ticks: every
// preLaneTick, and every preLaneHelpTick while PRE requests wait for help.
// A PRE request the lane cannot take (it runs a slow event) waits one to
// two ticks before idle dispatchers are woken to take it; then, while the
// lane stays stuck, the woken ones take the requests that follow at once.
// A lane takes them when it starts (tests set them before).
var (
	preLaneTick     = time.Millisecond
	preLaneHelpTick = 250 * time.Microsecond
)

// preLaneNaps is how many ticks the monitor sees the queue empty, and the
// lane neither on one event nor on work no watchdog guards, before it
// stops ticking until the lane or a watchdog wakes it.
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
//
// The monitor does not tick while the lane answers PRE requests with a
// deadline one at a time: such a request has a watchdog (see
// [Worker.handlePre]), whose timer, for a request on the lane, is set a
// tick ahead first, so a request that holds the lane longer than a tick has
// the monitor look at once (due) and tick while the lane stays on it; the
// request's deadline is then watched as before. The lane wakes the monitor
// when it takes work no watchdog guards (POST and durable events; a PRE
// request found without a deadline once its event is read, see unguard),
// or a request while others wait (a backlog). A lane the host did not
// schedule is seen while it handles an event (the watchdog's timer runs on
// the wall clock), as a slow function is; while the monitor sleeps, an idle
// lane is only made runnable by the request that arrives, as after the
// naps before.
type preLane struct {
	help   chan struct{}            // unbuffered: an idle dispatcher takes PRE requests
	taken  atomic.Uint64            // events the lane has taken
	opened atomic.Uint64            // events the lane has taken that no watchdog guards
	busy   atomic.Bool              // the lane handles one
	on     atomic.Pointer[nats.Msg] // the PRE request with a deadline the lane handles, if any
	open   atomic.Bool              // the lane handles one that no watchdog guards
	stuck  atomic.Bool              // the lane has handled the same event for a tick while PRE requests waited
	asleep atomic.Bool              // the monitor does not tick; the lane or a watchdog wakes it
	wake   chan struct{}            // one pending wake-up of the monitor by the lane
	due    chan struct{}            // one pending look asked by a watchdog (a request ran a tick)
	looks  atomic.Uint64            // how often the monitor looked at the queue

	tick, helpTick time.Duration // preLaneTick and preLaneHelpTick
}

func newPreLane() *preLane {
	l := &preLane{
		help: make(chan struct{}), wake: make(chan struct{}, 1), due: make(chan struct{}, 1),
		tick: preLaneTick, helpTick: preLaneHelpTick,
	}
	l.asleep.Store(true)
	return l
}

// signal leaves one pending wake-up on c.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
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
		guarded := false
		select {
		case j.msg = <-w.pre:
			// A request with a deadline has a watchdog (handlePre); one
			// without is said so once its event is read (unguard).
			guarded = true
		case j.msg = <-w.post:
		case j = <-w.work:
		case <-w.stopping:
			w.handleQueued(w.run)
			return
		}
		w.laneRun(j, guarded)
	}
}

// laneRun runs j on the lane; guarded says that a watchdog watches it.
func (w *Worker) laneRun(j job, guarded bool) {
	l := w.lane
	l.taken.Add(1)
	l.busy.Store(true)
	if guarded {
		l.on.Store(j.msg)
	} else {
		l.opened.Add(1)
		l.open.Store(true)
	}
	// After busy and open are set: the monitor either sees them or is
	// seen asleep here (see monitorPreLane).
	if (!guarded || len(w.pre) > 0) && l.asleep.Load() && l.asleep.CompareAndSwap(true, false) {
		signal(l.wake)
	}
	w.run(j)
	if guarded {
		l.on.Store(nil)
	}
	l.busy.Store(false)
	l.open.Store(false)
	l.stuck.Store(false)
}

// unguard tells the lane that msg, the PRE request it took as guarded,
// has no deadline (neither Trigger-Deadline nor the event's deadline), so
// no watchdog watches it: the lane counts it as open and wakes the monitor,
// as for work taken open. A request the lane is not on (a helper's) is
// left alone. Until then the lane has only read the event, bounded by its
// size, and the monitor still sees a backlog.
func (l *preLane) unguard(msg *nats.Msg) {
	if l == nil || l.on.Load() != msg {
		return
	}
	l.on.Store(nil)
	l.opened.Add(1)
	l.open.Store(true)
	if l.asleep.Load() && l.asleep.CompareAndSwap(true, false) {
		signal(l.wake)
	}
}

// look asks the monitor to look at the queue now: a PRE request has held
// the lane for a tick, or run to its deadline.
func (l *preLane) look() { signal(l.due) }

// monitorPreLane wakes dispatchers to help the lane (see preLane) until the
// stop.
func (w *Worker) monitorPreLane() {
	defer w.inflight.Done()
	l := w.lane
	tick := time.NewTicker(l.tick)
	tick.Stop()
	defer tick.Stop()
	var last, opened uint64
	waited, idle := false, 0
	for {
		now := false // a watchdog asked to look now
		if l.asleep.Load() {
			select {
			case <-l.wake:
			case <-l.due:
				now = true
				l.asleep.Store(false)
			case <-w.stopping:
				return
			}
			tick.Reset(l.tick)
			last, opened, waited, idle = l.taken.Load(), l.opened.Load(), false, 0
		}
		if !now {
			select {
			case <-tick.C:
			case <-l.due:
				now = true
			case <-w.stopping:
				return
			}
		}
		l.looks.Add(1)
		taken, waiting := l.taken.Load(), len(w.pre)
		// On the lane, the slow request is the one it handles now.
		onOne := l.busy.Load() && (taken == last || now)
		switch {
		case waiting > 0 && (taken == last || waited || now):
			if onOne {
				l.stuck.Store(true)
			}
			w.helpLane(waiting)
			idle = 0
		case waiting == 0 && !onOne && !l.open.Load() && l.opened.Load() == opened:
			idle++
		default:
			idle = 0
		}
		if wait := waiting > 0; wait != waited {
			period := l.tick
			if wait {
				period = l.helpTick
			}
			tick.Reset(period)
		}
		last, waited, opened = taken, waiting > 0, l.opened.Load()
		if idle < preLaneNaps {
			continue
		}
		// Asleep first, then look again: the lane sets open before it
		// reads asleep, so one of the two sees the other.
		idle = 0
		l.asleep.Store(true)
		if l.open.Load() || len(w.pre) > 0 {
			if l.asleep.CompareAndSwap(true, false) {
				continue
			}
		}
		tick.Stop()
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
