package worker

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/matcher"
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

// handle runs one message to the end: drop, POST run or PRE decision.
func (w *Worker) handle(msg *nats.Msg) {
	subj, err := w.scheme.Parse(msg.Subject)
	if err != nil {
		// Subscriptions only cover catalogue subjects, so this is an event
		// published with a bad option (e.g. ANY on a type with options).
		w.log.Warn("invalid event subject", "subject", msg.Subject, "err", err)
		if t, ok := typeOf(w.scheme, msg.Subject); ok {
			w.metrics.receivedCounter(t, otherOption).Inc()
			w.metrics.EventsDropped.WithLabelValues(t.Name, ReasonInvalid).Inc()
		}
		if msg.Reply != "" {
			w.reply(msg, &event.Decision{Code: event.CodeBadRequest, Message: cutText(err.Error(), maxReplyText)}, nil)
		}
		return
	}
	w.metrics.receivedCounter(subj.Type, subj.Option).Inc()
	if subj.Type.IsPre() {
		w.handlePre(msg, subj)
		return
	}
	w.handlePost(msg, subj)
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

// looped reports whether msg carries a Trigger-Origin to honour. A value
// that is not honoured is counted and logged, and the event runs its
// triggers.
func (w *Worker) looped(msg *nats.Msg, t *subjects.TriggerType) bool {
	return w.loopedHeader(msg.Subject, msg.Data, msg.Header, t)
}

// loopedHeader is looped for a message's subject, body and headers.
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

func (w *Worker) handlePost(msg *nats.Msg, subj subjects.Subject) {
	if w.looped(msg, subj.Type) {
		w.metrics.EventsDropped.WithLabelValues(subj.Type.Name, ReasonTriggerOriginated).Inc()
		return
	}
	st := w.state.Load()
	entries := st.set.Match(subj.Type.Name, subj.Option)
	if len(entries) == 0 {
		return
	}
	ev, err := event.Decode(msg.Data, subj, w.limits)
	if err != nil {
		w.metrics.EventsDropped.WithLabelValues(subj.Type.Name, ReasonInvalid).Inc()
		w.log.Warn("invalid event dropped", "subject", msg.Subject, "err", err)
		return
	}
	w.runPost(context.Background(), st, entries, ev)
}

// runPost runs every entry for a POST event in order and returns the first
// failure (entry and error), for durable delivery to act on.
func (w *Worker) runPost(ctx context.Context, st *runState, entries []*matcher.Entry, ev *event.Event) (failed *matcher.Entry, ferr error) {
	for _, e := range entries {
		if _, _, err := w.call(ctx, st, e, ev, e.Timeout); err != nil && failed == nil {
			failed, ferr = e, err
		}
	}
	return failed, ferr
}

// call runs one function with its timeout, metrics and logging, and returns
// its result, its outcome (an event.Outcome* value) and its error.
func (w *Worker) call(ctx context.Context, st *runState, e *matcher.Entry, ev *event.Event, timeout time.Duration) (handlers.Result, string, error) {
	fm := st.fns[e]
	h, err := handlerValue(e)
	if err != nil {
		fm.results[3].Inc()
		return handlers.Result{}, event.OutcomeError, err
	}
	stamp := callOrigin{o: w.origin, ref: e.Ref, id: ev.ID}.stamp
	cctx := handlers.WithCall(ctx, handlers.Call{
		Ref:     e.Ref,
		Origin:  w.origin.Identify(e.Ref, ev.ID),
		Stamp:   stamp,
		Bus:     &originBus{nc: w.nc, stamp: stamp},
		Logger:  w.log,
		Attempt: attemptFrom(ctx),
	})
	cancel := context.CancelFunc(func() {})
	if dl, ok := ctx.Deadline(); !ok || time.Until(dl) > timeout {
		// A timer of its own only when the function's timeout ends before
		// the caller's deadline (a PRE chain usually has the latter).
		cctx, cancel = context.WithTimeout(cctx, timeout)
	}
	w.metrics.FunctionsInFlight.Inc()
	start := time.Now()
	res, err := safeHandle(cctx, h, ev)
	if err == nil && errors.Is(cctx.Err(), context.DeadlineExceeded) {
		err = context.DeadlineExceeded
	}
	if err == nil {
		// A Go function's result is a value the kinds' parser never saw.
		err = res.Validate()
	}
	elapsed := time.Since(start)
	cancel()
	w.metrics.FunctionsInFlight.Dec()
	fm.duration.Observe(elapsed.Seconds())

	outcome := event.OutcomeContinue
	idx := 1
	switch {
	case err != nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, handlers.ErrTimeout)):
		outcome, idx = event.OutcomeTimeout, 4
	case err != nil:
		outcome, idx = event.OutcomeError, 3
	case res.State() == handlers.Failed:
		outcome, idx = event.OutcomeFailed, 2
	case res.State() == handlers.Success:
		outcome, idx = event.OutcomeSuccess, 0
	}
	fm.results[idx].Inc()
	if err != nil {
		w.log.Error("function failed", "function", e.Ref, "trigger_type", ev.TriggerType,
			"option", ev.TriggerOption, "event_id", ev.ID, "outcome", outcome, "err", err)
	} else if w.log.Enabled(ctx, -4) {
		w.log.Debug("function ran", "function", e.Ref, "event_id", ev.ID, "outcome", outcome, "duration", elapsed)
	}
	return res, outcome, err
}

// safeHandle calls h, turning a panic into an error.
func safeHandle(ctx context.Context, h handlers.Handler, ev *event.Event) (res handlers.Result, err error) {
	defer func() {
		if v := recover(); v != nil {
			res, err = handlers.Result{}, &handlers.PanicError{Value: v}
		}
	}()
	return h.Handle(ctx, ev)
}

// handlePre answers a PRE request with exactly one decision.
func (w *Worker) handlePre(msg *nats.Msg, subj subjects.Subject) {
	if msg.Reply == "" {
		w.metrics.EventsDropped.WithLabelValues(subj.Type.Name, ReasonInvalid).Inc()
		w.log.Warn("PRE event published without a reply subject, dropped", "subject", msg.Subject)
		return
	}
	if w.looped(msg, subj.Type) {
		w.metrics.EventsDropped.WithLabelValues(subj.Type.Name, ReasonTriggerOriginated).Inc()
		w.reply(msg, &event.Decision{ID: msg.Header.Get(subjects.HeaderMsgID), Allowed: true, Code: event.CodeTriggerOriginated}, subj.Type)
		return
	}
	deadline, hasDeadline := time.Time{}, false
	if v := msg.Header.Get(subjects.HeaderDeadline); v != "" {
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			w.reply(msg, &event.Decision{Code: event.CodeBadRequest, Message: "Trigger-Deadline is not Unix milliseconds: " + strconv.Quote(cutText(v, maxQuotedText))}, subj.Type)
			return
		}
		deadline, hasDeadline = time.UnixMilli(ms), true
		if time.Until(deadline) <= minReplyMargin {
			w.metrics.EventsDropped.WithLabelValues(subj.Type.Name, ReasonExpired).Inc()
			w.reply(msg, &event.Decision{ID: msg.Header.Get(subjects.HeaderMsgID), Code: event.CodeExpired, Message: "the request's deadline had passed when it reached the worker"}, subj.Type)
			return
		}
	}
	st := w.state.Load()
	entries := st.set.Match(subj.Type.Name, subj.Option)
	if len(entries) == 0 {
		w.reply(msg, &event.Decision{Allowed: true, Code: event.CodeNoTrigger}, subj.Type)
		return
	}
	ev, err := event.Decode(msg.Data, subj, w.limits)
	if err != nil {
		w.metrics.EventsDropped.WithLabelValues(subj.Type.Name, ReasonInvalid).Inc()
		w.reply(msg, &event.Decision{ID: msg.Header.Get(subjects.HeaderMsgID), Code: event.CodeBadRequest, Message: cutText(err.Error(), maxReplyText)}, subj.Type)
		return
	}
	if !hasDeadline {
		w.decide(context.Background(), msg, subj.Type, st, entries, ev, nil)
		return
	}
	// A watchdog answers at the deadline if a function overruns it, so the
	// caller always gets its decision in time; the chain's own answer is then
	// discarded.
	var once sync.Once
	var current atomic.Pointer[progress]
	ctx, cancel := context.WithDeadline(context.Background(), deadline.Add(-replyMargin(time.Until(deadline))))
	defer cancel()
	w.inflight.Add(1)
	stopWatch := context.AfterFunc(ctx, func() {
		defer w.inflight.Done()
		once.Do(func() {
			d := &event.Decision{ID: ev.ID, Code: event.CodeTimeout, Message: "the request's deadline passed while functions ran"}
			if p := current.Load(); p != nil {
				d.Function = p.ref
				d.Message = "function " + p.ref + " did not finish before the request's deadline"
				d.Functions = p.done
			}
			w.reply(msg, d, subj.Type)
		})
	})
	w.decide(ctx, msg, subj.Type, st, entries, ev, func(d *event.Decision, p *progress) bool {
		if p != nil {
			current.Store(p)
			return true
		}
		answered := false
		once.Do(func() {
			answered = true
			w.reply(msg, d, subj.Type)
		})
		return answered
	})
	if stopWatch() {
		w.inflight.Done()
	}
}

// progress is how far a PRE chain got: the function running and the
// results of those before it.
type progress struct {
	ref  string
	done []event.FunctionResult
}

// decide runs the PRE chain and answers. With a guard, the answer goes
// through it (see handlePre); guard(nil, p) announces the function about to
// run, with the results so far.
func (w *Worker) decide(ctx context.Context, msg *nats.Msg, t *subjects.TriggerType, st *runState, entries []*matcher.Entry, ev *event.Event, guard func(*event.Decision, *progress) bool) {
	d := &event.Decision{ID: ev.ID, Allowed: true, Functions: make([]event.FunctionResult, 0, len(entries))}
	input := ev.Input
	for _, e := range entries {
		timeout := e.Timeout
		if dl, ok := ctx.Deadline(); ok {
			timeout = min(timeout, time.Until(dl))
		}
		if guard != nil {
			guard(nil, &progress{ref: e.Ref, done: slices.Clone(d.Functions)})
		}
		call := *ev
		call.Input = input
		start := time.Now()
		res, outcome, err := w.call(ctx, st, e, &call, timeout)
		fr := event.FunctionResult{Ref: e.Ref, Result: outcome, Ms: float64(time.Since(start).Microseconds()) / 1000}
		if err != nil {
			fr.Error = err.Error()
		}
		if e.Mode == matcher.Shadow {
			fr.Shadow = true
			d.Functions = append(d.Functions, fr)
			continue
		}
		d.Functions = append(d.Functions, fr)
		if err != nil {
			// A bad result is an answer that cannot be read, not a
			// failure to answer: it refuses whatever the policy.
			if e.FailurePolicy == matcher.FailOpen && !errors.Is(err, handlers.ErrBadResult) {
				st.fns[e].failOpen.Inc()
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
	if guard != nil {
		guard(d, nil)
		return
	}
	w.reply(msg, d, t)
}
