package worker

import (
	"context"
	"errors"
	"log/slog"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/triggerbus/triggerbus/internal/matcher"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/subjects"
)

// The margin kept free before a PRE deadline for the reply to travel and
// for timers that fire late on a busy host: a tenth of the time left,
// between minReplyMargin and maxReplyMargin (see replyMargin). A request
// with less than minReplyMargin left is expired.
const (
	minReplyMargin = 2 * time.Millisecond
	maxReplyMargin = 50 * time.Millisecond
)

// replyMargin returns the margin for a request with left to its deadline.
func replyMargin(left time.Duration) time.Duration {
	return min(max(left/10, minReplyMargin), maxReplyMargin)
}

// handle runs one message to the end: drop, POST run or PRE decision. ctx
// carries the event's span when the worker traces (trace.go).
func (w *Worker) handle(ctx context.Context, msg *nats.Msg) {
	// A core message's data is its own (nats.go copies each payload), and
	// only the decision log reads it after the functions.
	in := inbound{subject: msg.Subject, data: msg.Data, header: msg.Header, shared: true, span: w.eventSpan(ctx)}
	if msg.Reply != "" {
		in.start = time.Now()
	}
	if !w.parse(&in) {
		if msg.Reply != "" {
			w.reply(ctx, msg, in.start, &event.Decision{ID: requestID(msg.Header), Code: event.CodeBadRequest, Message: cutText(in.err.Error(), maxReplyText)}, nil)
		}
		return
	}
	in.framed = true
	if in.subj.Type.IsPre() {
		in.shared = w.dlog == nil
		w.handlePre(ctx, msg, &in)
		return
	}
	if w.admit(&in, nil) == admitted {
		w.runPost(ctx, in.st, in.entries, in.ev, in.frame)
	}
}

// typeOf finds the trigger type of a subject that did not parse.
func typeOf(s subjects.Scheme, subject string) (*subjects.TriggerType, bool) {
	rest := subject[min(len(s.Prefix())+1, len(subject)):]
	for i := 0; i < len(rest); i++ {
		if rest[i] == '.' {
			rest = rest[:i]
			break
		}
	}
	t, err := subjects.Lookup(rest)
	return t, err == nil
}

// loopedHeader reports whether an event (subject, body and headers) carries
// a Trigger-Origin to honour. A value that is not honoured is counted and
// logged, and the event runs its triggers.
func (w *Worker) loopedHeader(subject string, data []byte, h nats.Header, t *subjects.TriggerType) bool {
	if h == nil {
		return false
	}
	v := h.Get(subjects.HeaderOrigin)
	if v == "" {
		return false
	}
	err := w.origin.Verify(subject, data, v)
	if err == nil {
		w.log.Debug("event carries a Trigger-Origin that verifies, dropped", "subject", subject, "trigger_type", t.Name, "reason", ReasonTriggerOriginated)
		return true
	}
	w.metrics.OriginRejected.WithLabelValues(t.Name).Inc()
	if errors.Is(err, ErrOriginExternal) {
		w.log.Warn("Trigger-Origin was given outside the bus and silences nothing, running triggers", "subject", subject, "trigger_type", t.Name)
	} else {
		w.log.Warn("Trigger-Origin does not verify, running triggers", "subject", subject, "trigger_type", t.Name, "err", err)
	}
	return false
}

// runPost runs every entry for a POST event in order and returns the first
// failure (entry and error). The first call runs in fr when it is not nil
// (the frame allocated with the event, see eventFrame).
func (w *Worker) runPost(ctx context.Context, st *runState, entries []*matcher.Entry, ev *event.Event, fr *callFrame) (failed *matcher.Entry, ferr error) {
	for _, e := range entries {
		if _, _, _, err := w.callIn(ctx, fr, st, e, ev, 0); err != nil && failed == nil {
			failed, ferr = e, err
		}
		fr = nil // a frame serves one call
	}
	return failed, ferr
}

// function is how a worker runs one registered function: its call path and
// its metric series, built once per function set.
type function struct {
	*fnMetrics
	inFlight prometheus.Gauge
	h        handlers.Handler
	timeout  time.Duration
	pace     callPace // what its recent calls took, for durable events run inline (inline.go)
	io       bool     // h waits on I/O (handlers.WaitsOnIO): never run inline
}

// function builds the call path of e: [function.invoke] around
// [handlers.Timeout] (the function's timeout; a caller's earlier deadline, a
// PRE request's, holds too) around the handler.
func (w *Worker) function(e *matcher.Entry) *function {
	io, ok := e.Handler.(handlers.WaitsOnIO)
	return &function{
		fnMetrics: w.metrics.function(e.Ref, e.Type.Name),
		inFlight:  w.metrics.FunctionsInFlight,
		h:         e.Handler,
		timeout:   e.Timeout,
		io:        ok && io.WaitsOnIO(),
	}
}

// invoke runs the call path, outermost first, in one frame: the metrics
// (the call counts in flight until it returns, a runaway Lua script until it
// stops; then its duration is observed and its outcome counted by name),
// the result check (a Go function's result is validated as the kinds'
// parser would), and the recovery of a panic (as [handlers.Recover]: a
// *[handlers.PanicError] with its stack), then f.h. A panic is an error even
// after the deadline, and a result the call gives after it does not count.
func (f *function) invoke(ctx context.Context, ev *event.Event) (handlers.Result, string, time.Duration, error) {
	f.inFlight.Inc()
	start := time.Now()
	res, end, err := f.recovered(ctx, ev, start)
	if err == nil {
		err = res.Validate()
	}
	elapsed := end.Sub(start)
	f.inFlight.Dec()
	f.observe(elapsed)
	f.pace.note(elapsed)
	outcome := handlers.Outcome(res, err)
	f.countResult(outcome)
	return res, outcome, elapsed, err
}

// recovered is f.h within its timeout ([handlers.TimeoutCall], begun at
// start), with a panic turned into a *handlers.PanicError; end is when it
// returned.
func (f *function) recovered(ctx context.Context, ev *event.Event, start time.Time) (res handlers.Result, end time.Time, err error) {
	defer func() {
		if v := recover(); v != nil {
			res, end, err = handlers.Result{}, time.Now(), &handlers.PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return handlers.TimeoutCall(ctx, f.h, ev, f.timeout, start)
}

// callFrame is what a call allocates: its context (with the origin under
// it), its bus, its logger and the bytes of its unsigned Trigger-Origin
// value, in one allocation.
type callFrame struct {
	ctx    handlers.CallContext
	bus    originBus
	log    handlers.CallLog
	origin [originInline]byte
}

// eventFrame is a core POST event and the frame of its first call, in one
// allocation (see [Worker.decode]).
type eventFrame struct {
	ev event.Event
	fr callFrame
}

// originInline is the room in a callFrame for an unsigned Trigger-Origin
// value (<ref>/<event id>): a 37-byte ref with a 26-character id fits; a
// longer value is allocated.
const originInline = 64

// call runs one function through its call path with the [handlers.Call] of
// this event (attempt is the delivery attempt of a durable event, 0 for
// others), logs a failure, and returns its result, its outcome (an
// event.Outcome* value), how long it ran and its error.
func (w *Worker) call(ctx context.Context, st *runState, e *matcher.Entry, ev *event.Event, attempt int) (handlers.Result, string, time.Duration, error) {
	return w.callIn(ctx, nil, st, e, ev, attempt)
}

// callIn is call in fr, a zero frame no other call used, or in a frame of
// its own when fr is nil.
func (w *Worker) callIn(ctx context.Context, fr *callFrame, st *runState, e *matcher.Entry, ev *event.Event, attempt int) (handlers.Result, string, time.Duration, error) {
	f := st.fns[e]
	ctx, span := w.startFunction(ctx, e.Ref, attempt)
	if fr == nil {
		fr = &callFrame{}
	}
	origin := w.origin.identifyIn(fr.origin[:], e.Ref, ev.ID)
	// Unsigned, a message's value is the call's: no stamp function needed.
	var stamp func(subject string, data []byte) string
	if w.origin.Signed() {
		stamp = callOrigin{o: w.origin, ref: e.Ref, id: ev.ID}.stamp
	}
	log := fr.log.Init(w.log, e.Ref, ev)
	fr.bus = originBus{nc: w.nc, value: origin, stamp: stamp, prop: w.prop}
	var bus handlers.Bus = &fr.bus
	if w.bus != nil {
		bus = w.bus
	}
	cctx := fr.ctx.Init(ctx, handlers.Call{
		Ref:        e.Ref,
		Worker:     w.cfg.Instance,
		Origin:     origin,
		Stamp:      stamp,
		Bus:        bus,
		Logger:     log,
		Attempt:    attempt,
		Propagator: w.prop,
	})
	res, outcome, elapsed, err := f.invoke(cctx, ev)
	if span != nil {
		endFunction(span, outcome, err)
	}
	if err != nil {
		args := []any{"outcome", outcome, "err", err}
		if pe := (*handlers.PanicError)(nil); errors.As(err, &pe) {
			args = append(args, "stack", string(pe.Stack))
		}
		log.Error("function failed", args...)
	} else if w.log.Enabled(ctx, slog.LevelDebug) {
		log.Debug("function ran", "outcome", outcome, "duration", elapsed)
	}
	return res, outcome, elapsed, err
}

// handlePre answers a PRE request with exactly one decision.
func (w *Worker) handlePre(ctx context.Context, msg *nats.Msg, in *inbound) {
	t, start := in.subj.Type, in.start
	if msg.Reply == "" {
		w.metrics.EventsDropped.WithLabelValues(t.Name, ReasonInvalid).Inc()
		w.log.Warn("PRE event published without a reply subject, dropped", "subject", msg.Subject)
		return
	}
	deadline, hasDeadline := time.Time{}, false
	// The deadline is read after the loop guard: a request that loops is
	// allowed whatever its deadline.
	readDeadline := func() bool {
		v := msg.Header.Get(subjects.HeaderDeadline)
		if v == "" {
			return true
		}
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			w.reply(ctx, msg, start, &event.Decision{ID: requestID(msg.Header), Code: event.CodeBadRequest, Message: "Trigger-Deadline is not Unix milliseconds: " + strconv.Quote(cutText(v, maxQuotedText))}, t)
			return false
		}
		deadline, hasDeadline = time.UnixMilli(ms), true
		// Measured from when the request was taken up, a few microseconds
		// ago: no clock read of its own.
		if deadline.Sub(start) <= minReplyMargin {
			w.metrics.EventsDropped.WithLabelValues(t.Name, ReasonExpired).Inc()
			w.reply(ctx, msg, start, &event.Decision{ID: requestID(msg.Header), Code: event.CodeExpired, Message: "the request's deadline had passed when it reached the worker"}, t)
			return false
		}
		return true
	}
	switch w.admit(in, readDeadline) {
	case looped:
		w.reply(ctx, msg, start, &event.Decision{ID: requestID(msg.Header), Allowed: true, Code: event.CodeTriggerOriginated}, t)
		return
	case gated:
		return
	case unmatched:
		w.reply(ctx, msg, start, &event.Decision{Allowed: true, Code: event.CodeNoTrigger}, t)
		return
	case invalid:
		w.reply(ctx, msg, start, &event.Decision{ID: requestID(msg.Header), Code: event.CodeBadRequest, Message: cutText(in.err.Error(), maxReplyText)}, t)
		return
	}
	st, entries, ev, fr := in.st, in.entries, in.ev, in.frame
	if ev.Deadline != 0 {
		// The event's deadline, as the SDK sends it; with a
		// Trigger-Deadline too, the earlier of the two counts.
		if d := time.UnixMilli(ev.Deadline); !hasDeadline || d.Before(deadline) {
			deadline, hasDeadline = d, true
		}
		if deadline.Sub(start) <= minReplyMargin {
			w.metrics.EventsDropped.WithLabelValues(t.Name, ReasonExpired).Inc()
			w.reply(ctx, msg, start, &event.Decision{ID: ev.ID, Code: event.CodeExpired, Message: "the request's deadline had passed when it reached the worker"}, t)
			return
		}
	}
	if !hasDeadline {
		w.lane.unguard(msg)
		w.decide(ctx, msg, start, t, st, entries, ev, fr, nil)
		return
	}
	// A watchdog answers at the deadline if a function overruns it, so the
	// caller always gets its decision in time; the chain's own answer is then
	// discarded. The chain's context ends at the same time; its timer starts
	// only if a function waits on it.
	now := time.Now()
	end := deadline.Add(-replyMargin(deadline.Sub(now)))
	dctx, release := handlers.WithLazyDeadline(ctx, end)
	defer release()
	wd := w.newPreWatch(ctx, msg, start, t, ev.ID, st.rev)
	w.inflight.Add(1)
	wd.arm(now, end)
	w.decide(dctx, msg, start, t, st, entries, ev, fr, func(d *event.Decision, p progress) bool {
		if d == nil {
			wd.announce(p)
			return true
		}
		answered := false
		wd.once.Do(func() {
			answered = true
			w.reply(dctx, msg, start, d, t)
		})
		return answered
	})
	wd.finished.Store(true)
	if wd.timer.Stop() {
		w.inflight.Done()
		if wd.early.CompareAndSwap(true, false) {
			wd.release() // the early look's, which will not run
		}
		wd.release() // fire's, which will not run
	}
	wd.release()
}

// preWatch is the watchdog of a PRE request with a deadline: fire answers
// TIMEOUT unless the chain answered first (once orders the two).
//
// A watchdog and its timer are reused from preWatches: a request takes one
// and arms its timer again (time.AfterFunc's timer and the method value it
// calls are made once), so a PRE request with a deadline allocates no
// watchdog. It goes back when both sides are done with it: at once when the
// request stops the timer before it fires, else when the last of the
// request and fire releases it (refs).
type preWatch struct {
	w       *Worker
	ctx     context.Context // the event's: its span, when the worker traces
	msg     *nats.Msg
	start   time.Time
	t       *subjects.TriggerType
	id      string
	rev     uint64
	once    sync.Once
	current atomic.Pointer[progress] // the function running, and the results before it
	first   progress                 // where current points for the chain's first function

	timer *time.Timer  // calls fire; made on the first arm
	refs  atomic.Int32 // holders while the timer may have fired: the request and fire

	// On the PRE lane, the timer is first set a tick ahead (early, which
	// holds a ref of its own): when a request holds the lane that long,
	// fire asks the lane's monitor to look and, unless the request has
	// finished, sets the timer again for end.
	early    atomic.Bool
	end      time.Time
	finished atomic.Bool // the request is done with the watchdog
}

// preWatches holds idle watchdogs (see preWatch).
var preWatches sync.Pool

// newPreWatch returns an idle watchdog for a request.
func (w *Worker) newPreWatch(ctx context.Context, msg *nats.Msg, start time.Time, t *subjects.TriggerType, id string, rev uint64) *preWatch {
	p, _ := preWatches.Get().(*preWatch)
	if p == nil {
		p = &preWatch{}
	}
	p.w, p.ctx, p.msg, p.start, p.t, p.id, p.rev = w, ctx, msg, start, t, id, rev
	p.refs.Store(2)
	return p
}

// arm starts the watchdog's timer at now: fire answers at end unless it is
// stopped; for a request on the PRE lane, it first looks a tick ahead (see
// early).
func (p *preWatch) arm(now, end time.Time) {
	d := end.Sub(now)
	if l := p.w.lane; l != nil && d > l.tick && l.on.Load() == p.msg {
		p.end, d = end, l.tick
		p.refs.Add(1)
		p.early.Store(true)
	}
	if p.timer == nil {
		// Made stopped, then set: fire reads the field.
		p.timer = time.AfterFunc(time.Hour, p.fire)
		p.timer.Stop()
	}
	p.timer.Reset(d)
}

// announce records p, the function about to run, for fire. The first
// function's record is the watchdog's own: fire cannot have read it yet.
func (p *preWatch) announce(pr progress) {
	at := &p.first
	if p.current.Load() != nil {
		at = new(progress)
	}
	*at = pr
	p.current.Store(at)
}

// release drops one holder of a watchdog whose timer fired; the last puts
// it back.
func (p *preWatch) release() {
	if p.refs.Add(-1) == 0 {
		p.recycle()
	}
}

// recycle clears a watchdog nobody holds and puts it back in preWatches.
func (p *preWatch) recycle() {
	timer := p.timer
	*p = preWatch{timer: timer}
	preWatches.Put(p)
}

func (p *preWatch) fire() {
	w := p.w
	if w.lane != nil {
		// A request has run a tick, or to its deadline: a lane on it
		// leaves the requests behind it waiting.
		w.lane.look()
	}
	if p.early.CompareAndSwap(true, false) {
		if !p.finished.Load() {
			p.timer.Reset(time.Until(p.end))
			// A request that finished meanwhile may have found the timer
			// fired and left the watchdog to it: whoever stops the timer
			// set for end does what its fire would have done.
			if p.finished.Load() && p.timer.Stop() {
				w.inflight.Done()
				p.release()
			}
			p.release()
			return
		}
		p.release()
	}
	defer w.inflight.Done()
	defer p.release()
	p.once.Do(func() {
		d := &event.Decision{ID: p.id, Code: event.CodeTimeout, Message: "the request's deadline passed while functions ran", Revision: p.rev}
		if cur := p.current.Load(); cur != nil {
			d.Function = cur.ref
			d.Message = "function " + cur.ref + " did not finish before the request's deadline"
			d.Functions = cur.done
		}
		p.w.reply(p.ctx, p.msg, p.start, d, p.t)
	})
}

// progress is how far a PRE chain got: the function running and the
// results of those before it.
type progress struct {
	ref  string
	done []event.FunctionResult
}

// decide runs the PRE chain and answers. With a guard, the answer goes
// through it (see handlePre); guard(nil, p) announces the function about to
// run, with the results so far. fr, when not nil, is the frame of the first
// call (see chainIn).
func (w *Worker) decide(ctx context.Context, msg *nats.Msg, start time.Time, t *subjects.TriggerType, st *runState, entries []*matcher.Entry, ev *event.Event, fr *callFrame, guard func(*event.Decision, progress) bool) {
	// Without a decision log nothing holds the decision once it is sent
	// (or discarded after the watchdog's): its storage is reused.
	pooled := w.dlog == nil
	var cd *chainDecision
	if pooled {
		cd, _ = chainDecisions.Get().(*chainDecision)
	}
	if cd == nil {
		cd = &chainDecision{}
	}
	d := w.chainIn(ctx, cd, st, entries, ev, fr, guard)
	if guard != nil {
		guard(d, progress{})
	} else {
		w.reply(ctx, msg, start, d, t)
	}
	if pooled {
		*cd = chainDecision{}
		chainDecisions.Put(cd)
	}
}

// chainDecision is a PRE decision with room for the results of a short
// chain: one allocation for both.
type chainDecision struct {
	d   event.Decision
	fns [2]event.FunctionResult
}

// chainDecisions holds the idle storage of decisions (see decide).
var chainDecisions sync.Pool

// newChainDecision returns an allowing decision of event id at revision rev,
// in cd, with room for the results of n functions.
func newChainDecision(cd *chainDecision, id string, rev uint64, n int) *event.Decision {
	var fns []event.FunctionResult
	if n <= len(cd.fns) {
		fns = cd.fns[:0:n]
	} else {
		fns = make([]event.FunctionResult, 0, n)
	}
	cd.d = event.Decision{ID: id, Allowed: true, Functions: fns, Revision: rev}
	return &cd.d
}

// chain runs the PRE functions of entries in order on ev and returns the
// decision; guard(nil, p), when given, announces each function about to run.
func (w *Worker) chain(ctx context.Context, st *runState, entries []*matcher.Entry, ev *event.Event, guard func(*event.Decision, progress) bool) *event.Decision {
	return w.chainIn(ctx, &chainDecision{}, st, entries, ev, nil, guard)
}

// chainIn is chain with the decision's storage given, and fr, when not
// nil, a zero frame no other call used (allocated with the event) for the
// first call. The last function runs on ev itself, which nothing reads
// after it; each one before it on its own copy.
func (w *Worker) chainIn(ctx context.Context, cd *chainDecision, st *runState, entries []*matcher.Entry, ev *event.Event, fr *callFrame, guard func(*event.Decision, progress) bool) *event.Decision {
	d := newChainDecision(cd, ev.ID, st.rev, len(entries))
	input := ev.Input
	for i, e := range entries {
		if guard != nil {
			guard(nil, progress{ref: e.Ref, done: slices.Clone(d.Functions)})
		}
		call := ev
		if i < len(entries)-1 {
			c := *ev
			call = &c
		}
		call.Input = input
		res, outcome, elapsed, err := w.callIn(ctx, fr, st, e, call, 0)
		fr = nil // used once
		r := event.FunctionResult{Ref: e.Ref, Result: outcome, Ms: float64(elapsed.Microseconds()) / 1000}
		if err != nil {
			r.Error = err.Error()
		}
		if e.Mode == Shadow {
			r.Shadow = true
			d.Functions = append(d.Functions, r)
			continue
		}
		d.Functions = append(d.Functions, r)
		if err != nil {
			// A bad result is an answer that cannot be read, not a
			// failure to answer: it refuses whatever the policy.
			if e.FailurePolicy == FailOpen && !errors.Is(err, handlers.ErrBadResult) {
				st.fns[e].failOpenCounter().Inc()
				continue
			}
			d.Allowed, d.Function, d.Message = false, e.Ref, err.Error()
			d.Code = event.CodeHandlerError
			if outcome == event.OutcomeTimeout {
				d.Code = event.CodeTimeout
				d.Message = "function " + e.Ref + " timed out"
			}
			break
		}
		if res.State() == handlers.Failed {
			d.Allowed, d.Function = false, e.Ref
			d.Code, d.Message = res.ErrorCode, res.ErrorMessage
			if d.Code == "" {
				d.Code = event.CodeFailed
			}
			break
		}
		if res.Input != nil {
			input, d.Modified = res.Input, true
		}
	}
	if d.Modified {
		d.Input = input
	}
	return d
}
