package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/propagation"

	"github.com/triggerbus/triggerbus/pkg/event"
)

// Handler runs one trigger function for one event. Implementations must be
// safe for concurrent use and must return once ctx is done.
type Handler interface {
	Handle(ctx context.Context, ev *event.Event) (Result, error)
}

// Func adapts a Go function to a [Handler]: the "go" handler kind.
type Func func(ctx context.Context, ev *event.Event) (Result, error)

// WaitsOnIO is implemented by a handler whose calls wait on I/O outside
// the process (an HTTP request, a program it starts) and so can take long
// whatever their recent calls took: the worker never runs the durable
// events of such a function on its consumer's goroutine (see
// docs/operations.md, "How a worker runs durable events"). The webhook
// and exec kinds implement it.
type WaitsOnIO interface {
	WaitsOnIO() bool
}

// Handle calls f.
func (f Func) Handle(ctx context.Context, ev *event.Event) (Result, error) { return f(ctx, ev) }

// ExitState is what a function says of the action, in FDL's words.
type ExitState string

// The exit states of a function.
const (
	// Success: the function did its work; the action may go on.
	Success ExitState = "SUCCESS"
	// Continue: the function did not act; the action may go on.
	Continue ExitState = "CONTINUE"
	// Failed: PRE only, the action is refused with ErrorCode and ErrorMessage.
	Failed ExitState = "FAILED"
)

// Result is what a function returns. The zero Result is CONTINUE.
type Result struct {
	ExitState    ExitState `json:"exitState,omitempty"`
	ErrorCode    string    `json:"errorCode,omitempty"`
	ErrorMessage string    `json:"errorMessage,omitempty"`
	// Input, when not nil, is the function's new input for the event (PRE
	// only): it is handed to the next function and returned to the caller.
	Input json.RawMessage `json:"input,omitempty"`
}

// State returns the exit state, CONTINUE when none was set.
func (r Result) State() ExitState {
	if r.ExitState == "" {
		return Continue
	}
	return r.ExitState
}

// Bus is how a function causes actions on NATS. The worker implements it and
// stamps every message with the Trigger-Origin of the call, bound to the
// message when the fleet signs its loop flags (see [Call.Stamp]).
type Bus interface {
	// Publish sends data to subject.
	Publish(ctx context.Context, subject string, data []byte) error
	// Request sends data to subject and waits for one reply until timeout
	// (or ctx) ends.
	Request(ctx context.Context, subject string, data []byte, timeout time.Duration) ([]byte, error)
}

// Call is what the worker tells a handler about the call it makes.
type Call struct {
	// Ref is the function's ref.
	Ref string
	// Worker is the instance name of the worker making the call (the
	// CloudEvents source of a webhook names it); "" outside a worker.
	Worker string
	// Origin is the Trigger-Origin value the call shows outside the bus: the
	// webhook header, the TRIGGER_ORIGIN of commands, simplehttp requests.
	// When the fleet signs its loop flags, this value identifies the call but
	// silences no trigger.
	Origin string
	// Stamp returns the Trigger-Origin value for one message the call sends on
	// the bus, with subject and data; with a signing fleet it is bound to that
	// subject and body. nil: Origin is stamped on messages too.
	Stamp func(subject string, data []byte) string
	// Bus sends messages for the function; nil when there is no connection.
	Bus Bus
	// Logger is the function's logger: every line carries the attributes
	// of [CallLogger] (function, event_id, trigger_type, option). The kinds
	// log a function's own lines (Lua print, trigger.log, syslog) to it.
	Logger *slog.Logger
	// Attempt is the delivery attempt of a durable event: 1 for the first
	// delivery, more when the event is delivered again (after a failure or a
	// lost worker). It is 0 when delivery is not durable (core POST, PRE).
	Attempt int
	// Propagator writes the call's trace context (the span of the call, in
	// the handler's ctx) into what the function sends out: the webhook
	// kind's request headers. nil when the worker does not trace: nothing is
	// written.
	Propagator propagation.TextMapPropagator
}

type callKey struct{}

// The attributes of a function's log lines (see [CallLogger]).
const (
	LogFunction    = "function"
	LogEventID     = "event_id"
	LogTriggerType = "trigger_type"
	LogOption      = "option"
)

// CallLogger returns l with the attributes that tell which call of which
// function wrote a line: function (ref), event_id, trigger_type and option
// (of ev). Every line a function writes, and the worker's lines about a
// call, carry them, as if added with l.With; they are added when a line is
// written (see [CallLog]), so a call that writes none pays nothing for
// them. A logger that logs nothing is returned as it is.
func CallLogger(l *slog.Logger, ref string, ev *event.Event) *slog.Logger {
	return new(CallLog).Init(l, ref, ev)
}

// WithCall returns a context carrying c. It also marks the context with
// c.Origin and c.Stamp through [event.WithOriginStamp], so that the publisher
// SDK used inside a Go function stamps Trigger-Origin too.
func WithCall(ctx context.Context, c Call) context.Context {
	return new(CallContext).Init(ctx, c)
}

// CallContext holds the context [WithCall] returns, for a worker that keeps
// it inside a larger allocation of its own (with the call's bus): Init, on
// a zero CallContext, returns the context.
type CallContext struct{ c callCtx }

// Init returns the context of [WithCall](ctx, call), held in cc. cc must be
// a zero CallContext, and is initialized once.
func (cc *CallContext) Init(ctx context.Context, call Call) context.Context {
	c := &cc.c
	c.Context, c.call = ctx, call
	if call.Origin != "" || call.Stamp != nil {
		c.Context = c.origin.Init(ctx, call.Origin, call.Stamp)
	}
	return c
}

// callCtx carries a [Call]: one allocation, where context.WithValue would
// box the Call in a second, with the origin context under it
// ([event.WithOriginStamp]'s). It also holds the storage of the first
// [Timeout] deadline made under it (see withLazyDeadline), so that a call's
// context and its deadline are one allocation.
type callCtx struct {
	context.Context
	call   Call
	origin event.OriginContext

	lazy      lazyDeadline
	lazyTaken atomic.Bool
}

func (c *callCtx) Value(key any) any {
	if _, ok := key.(callKey); ok {
		return &c.call
	}
	return c.Context.Value(key)
}

// CallFrom returns the call of ctx; ok is false outside a worker's call.
func CallFrom(ctx context.Context) (c Call, ok bool) {
	if p, isCall := ctx.Value(callKey{}).(*Call); isCall {
		c, ok = *p, true
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, ok
}

// ErrInvalidConfig is wrapped by the errors of the handler constructors when
// their config is not valid.
var ErrInvalidConfig = errors.New("handlers: invalid config")

// ErrTimeout is wrapped by the error of a function that ran out of time.
var ErrTimeout = errors.New("handlers: timeout")

// IsTimeout reports whether err means a call ran out of time: it wraps
// [ErrTimeout] or context.DeadlineExceeded. It is the one timeout test: the
// kinds ask it of their context's error to wrap ErrTimeout, [Timeout] of a
// late call's, and [Outcome] of a call's error.
func IsTimeout(err error) bool {
	return errors.Is(err, ErrTimeout) || errors.Is(err, context.DeadlineExceeded)
}

// Outcome says how a call that returned res and err ended, as an
// event.Outcome* value: TIMEOUT for an error that [IsTimeout], ERROR for
// another error, else the result's exit state.
func Outcome(res Result, err error) string {
	switch {
	case err != nil && IsTimeout(err):
		return event.OutcomeTimeout
	case err != nil:
		return event.OutcomeError
	case res.State() == Failed:
		return event.OutcomeFailed
	case res.State() == Success:
		return event.OutcomeSuccess
	}
	return event.OutcomeContinue
}

// PanicError is a panic in a handler, recovered by [Recover].
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("handlers: panic: %v", e.Value) }

// Middleware wraps a handler with behaviour every kind shares.
type Middleware func(Handler) Handler

// Chain wraps h in mws; the first middleware is the outermost.
func Chain(h Handler, mws ...Middleware) Handler {
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}
	return h
}

// Recover turns a panic in the handler into a *[PanicError].
func Recover() Middleware {
	return func(next Handler) Handler {
		return Func(func(ctx context.Context, ev *event.Event) (res Result, err error) {
			defer func() {
				if v := recover(); v != nil {
					res, err = Result{}, &PanicError{Value: v, Stack: debug.Stack()}
				}
			}()
			return next.Handle(ctx, ev)
		})
	}
}

// Timeout gives each call at most d (d <= 0: no limit of its own; the
// caller's deadline still holds). A call that ends after its deadline has
// passed returns an error wrapping [ErrTimeout], whatever it returned: its
// answer came too late to count.
func Timeout(d time.Duration) Middleware {
	return func(next Handler) Handler {
		return Func(func(ctx context.Context, ev *event.Event) (Result, error) {
			res, _, err := TimeoutCall(ctx, next, ev, d, time.Now())
			return res, err
		})
	}
}

// TimeoutCall is one call of Timeout(d)(h), begun at start (a clock reading
// the caller made just before), and also returns when it ended, read once
// after h returned: a caller that measures its calls reads the clock twice
// per call in all. The end is start plus the time since on the monotonic
// clock (the wall clock is not read again: half the cost of time.Now), so
// end.Sub(start) is the call's duration even if the wall clock was set
// meanwhile.
func TimeoutCall(ctx context.Context, h Handler, ev *event.Event, d time.Duration, start time.Time) (Result, time.Time, error) {
	var lazy *lazyDeadline
	if dl, ok := ctx.Deadline(); d > 0 && (!ok || dl.Sub(start) > d) {
		// A deadline of its own only when d ends before the caller's (a PRE
		// chain usually has the latter); its timer starts only if the
		// function waits on the context.
		lazy = withLazyDeadline(ctx, start.Add(d))
		defer lazy.release()
		ctx = lazy
	}
	res, err := h.Handle(ctx, ev)
	end := start.Add(time.Since(start))
	var cerr error
	if lazy != nil {
		cerr = lazy.errAt(end)
	} else {
		cerr = ctx.Err()
	}
	if IsTimeout(cerr) {
		if err == nil {
			err = context.DeadlineExceeded
		}
		if !errors.Is(err, ErrTimeout) {
			err = fmt.Errorf("%w: %w", ErrTimeout, err)
		}
		return Result{}, end, err
	}
	return res, end, err
}
