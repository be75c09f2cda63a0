package worker

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/triggerbus/triggerbus/internal/matcher"
)

// Durable events whose functions are known to be fast run inline: on the
// consumer's goroutine, one after another in the order the server delivers
// them, instead of going to the dispatchers. The dispatchers finish events
// out of order, and on the event stream (interest retention, file storage)
// each ack ahead of an older unacked event deletes from the inside of a
// block, which the server then rewrites; run in order, the acks delete from
// the front (docs/benchmarks.md, issue 14, fifth round). The cost of running
// inline is that while an event runs, the events nats.go has fetched behind
// it (up to MaxInFlight) wait without progress signals; the rule below
// keeps that wait short and bounded:
//
//   - every function that matches the event's subject ran at least
//     inlineMinCalls times in this worker (a new function, or one reloaded,
//     goes to the dispatchers first), its recent calls (a decaying maximum,
//     callPace) took less than inlineBound, and its handler does not wait on
//     I/O ([handlers.WaitsOnIO]: webhook, exec);
//   - their timeouts add up to at most a quarter of AckWait, so that even
//     an event whose calls all overrun holds the events behind it for less
//     than that (a Go function that ignores its context is not stopped by
//     its timeout, inline or on a dispatcher);
//   - it is a first delivery on which no dead letter can be stored: a
//     redelivery reads the done records, and a dead letter waits for its
//     stream's ack, round trips the consumer should not wait on;
//   - no event run inline turned out slow within the last MaxInFlight
//     events: after one did, the consumer hands the next MaxInFlight events
//     (what it had fetched) to the dispatchers, so an event waits behind at
//     most one slow inline event.
//
// A function whose calls turn slow stops qualifying with its first slow
// call, wherever it ran, and qualifies again only after a run of fast calls
// (on the dispatchers). At inlineBound, one consumer still runs 20,000
// events a second, about what the server delivers to one consumer.

// inlineBound is how long a function's recent calls may take for its
// durable events to run inline. A variable for the tests alone.
var inlineBound = 50 * time.Microsecond

// inlineMinCalls is how many calls of a function a worker must have seen
// before its durable events run inline.
const inlineMinCalls = 8

// callPace is what the recent calls of one function took: no lock, no
// allocation, safe for concurrent calls.
type callPace struct {
	calls  atomic.Uint32 // the calls so far, counted up to inlineMinCalls
	recent atomic.Int64  // a decaying maximum of their durations, in ns
}

// note records a call that took d. The maximum loses an eighth at each call
// shorter than it: after one call of 20ms it takes about 45 calls of a few
// microseconds to go under inlineBound again, after one of 1ms (a process
// kept off the CPU on a busy machine) about 22.
func (p *callPace) note(d time.Duration) {
	if p.calls.Load() < inlineMinCalls {
		p.calls.Add(1)
	}
	for {
		old := p.recent.Load()
		v := max(int64(d), old-old>>3)
		if v == old || p.recent.CompareAndSwap(old, v) {
			return
		}
	}
}

// fast reports whether the function ran often enough, and fast enough
// lately, for its durable events to run inline.
func (p *callPace) fast() bool {
	return p.calls.Load() >= inlineMinCalls && p.recent.Load() < int64(inlineBound)
}

// inlineDurable reports whether m may run inline (see above), with the
// functions it was judged by. Only the consumer's goroutine calls it.
func (w *Worker) inlineDurable(m jetstream.Msg) (*runState, []*matcher.Entry, bool) {
	d := w.durable
	if d.handOff.Load() > 0 {
		d.handOff.Add(-1)
		return nil, nil, false
	}
	select {
	case <-w.stopping:
		return nil, nil, false // submit refuses it, and it is given back
	default:
	}
	delivered, _, ok := ackInfo(m.Reply())
	if !ok || delivered != 1 || (d.cfg.MaxDeliver > 0 && d.cfg.MaxDeliver <= 1) {
		return nil, nil, false
	}
	seen, ok := w.parsed.Get(m.Subject())
	if !ok {
		return nil, nil, false // a subject not seen yet
	}
	st := w.state.Load()
	// Every function of the subject, also for a tick or a replay that runs
	// only one of them.
	entries := st.set.Match(seen.subj.Type.Name, seen.subj.Option)
	if len(entries) == 0 {
		return nil, nil, false
	}
	var timeouts time.Duration
	for _, e := range entries {
		f := st.fns[e]
		if f == nil || f.io || !f.pace.fast() {
			return nil, nil, false
		}
		timeouts += f.timeout
	}
	return st, entries, timeouts <= d.cfg.AckWait/4
}

// runInline handles m on the calling goroutine, as a dispatcher would;
// when one of entries (those of st it was judged by) no longer qualifies
// afterwards, the events fetched behind it go to the dispatchers. It is
// not counted in finished: the grower counts what the dispatchers finish.
func (w *Worker) runInline(m jetstream.Msg, st *runState, entries []*matcher.Entry) {
	ctx, span := w.startEvent(context.Background(), job{js: m})
	w.handleDurable(ctx, m)
	if span != nil {
		span.End()
	}
	for _, e := range entries {
		if !st.fns[e].pace.fast() {
			w.durable.handOff.Store(int32(w.cfg.MaxInFlight))
			return
		}
	}
}
