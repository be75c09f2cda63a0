package handlers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/handlers/handlerstest"
)

func TestParseResult(t *testing.T) {
	tests := []struct {
		name string
		give string
		want handlers.Result
	}{
		{name: "empty", give: "", want: handlers.Result{ExitState: handlers.Continue}},
		{name: "blank", give: " \n\t", want: handlers.Result{ExitState: handlers.Continue}},
		{name: "null", give: "null", want: handlers.Result{ExitState: handlers.Continue}},
		{name: "empty object", give: "{}", want: handlers.Result{ExitState: handlers.Continue}},
		{name: "success", give: `{"exitState":"SUCCESS"}`, want: handlers.Result{ExitState: handlers.Success}},
		{name: "continue", give: `{"exitState":"CONTINUE"}`, want: handlers.Result{ExitState: handlers.Continue}},
		{name: "lower case", give: `{"exitState":"failed"}`, want: handlers.Result{ExitState: handlers.Failed}},
		{name: "padded state", give: `{"exitState":" Success "}`, want: handlers.Result{ExitState: handlers.Success}},
		{name: "empty state", give: `{"exitState":""}`, want: handlers.Result{ExitState: handlers.Continue}},
		{name: "null state", give: `{"exitState":null}`, want: handlers.Result{ExitState: handlers.Continue}},
		{
			name: "failed with code",
			give: `{"exitState":"FAILED","errorCode":"QUOTA_EXCEEDED","errorMessage":"too many CPUs"}`,
			want: handlers.Result{ExitState: handlers.Failed, ErrorCode: "QUOTA_EXCEEDED", ErrorMessage: "too many CPUs"},
		},
		{
			name: "numeric code",
			give: `{"exitState":"FAILED","errorCode":403,"errorMessage":1.5e3}`,
			want: handlers.Result{ExitState: handlers.Failed, ErrorCode: "403", ErrorMessage: "1.5e3"},
		},
		{
			name: "modified input",
			give: `{"exitState":"SUCCESS","input":{"cpu":8,"big":12345678901234567890}}`,
			want: handlers.Result{ExitState: handlers.Success, Input: json.RawMessage(`{"cpu":8,"big":12345678901234567890}`)},
		},
		{name: "null input", give: `{"exitState":"SUCCESS","input":null}`, want: handlers.Result{ExitState: handlers.Success}},
		{name: "returnCode CONTINUE", give: `{"returnCode":"CONTINUE"}`, want: handlers.Result{ExitState: handlers.Continue}},
		{name: "null code and message", give: `{"exitState":"FAILED","errorCode":null,"errorMessage":null}`, want: handlers.Result{ExitState: handlers.Failed}},
		{name: "surrounding space", give: "\n {\"exitState\":\"SUCCESS\"} \n", want: handlers.Result{ExitState: handlers.Success}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := handlers.ParseResult([]byte(tt.give))
			if err != nil {
				t.Fatalf("ParseResult(%q) error = %v, want nil", tt.give, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseResult(%q) = %+v, want %+v", tt.give, got, tt.want)
			}
		})
	}
}

func TestParseResultErrors(t *testing.T) {
	tests := []struct {
		name string
		give string
	}{
		{name: "not JSON", give: "OK"},
		{name: "truncated", give: `{"exitState":"SUCCESS"`},
		{name: "array", give: `[]`},
		{name: "string", give: `"SUCCESS"`},
		{name: "number", give: `1`},
		{name: "unknown state", give: `{"exitState":"MAYBE"}`},
		{name: "state not a string", give: `{"exitState":1}`},
		{name: "two documents", give: `{} {}`},
		{name: "unknown key", give: `{"exitState":"SUCCESS","extra":[1,2]}`},
		{name: "key in another case", give: `{"exitstate":"FAILED"}`},
		{name: "message a boolean", give: `{"exitState":"FAILED","errorMessage":true}`},
		{name: "code an object", give: `{"exitState":"FAILED","errorCode":{"x":1}}`},
		{name: "returnCode FAILED", give: `{"returnCode":"FAILED"}`},
		{name: "key twice", give: `{"exitState":"FAILED","exitState":"SUCCESS"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := handlers.ParseResult([]byte(tt.give))
			if !errors.Is(err, handlers.ErrBadResult) {
				t.Errorf("ParseResult(%q) = %+v, %v, want an error wrapping ErrBadResult", tt.give, got, err)
			}
		})
	}
}

func FuzzParseResult(f *testing.F) {
	for _, s := range []string{
		"", "null", "{}", "OK", "[]", `"x"`, `{"exitState":"failed"}`,
		`{"exitState":"FAILED","errorCode":"QUOTA_EXCEEDED","errorMessage":"too many CPUs"}`,
		`{"exitState":"FAILED","errorCode":403,"errorMessage":{"a":[1]}}`,
		`{"exitState":"SUCCESS","input":{"cpu":8,"big":12345678901234567890,"s":"<&>"}}`,
		`{"exitState":"SUCCESS","input":null}`, `{"exitState":1}`, `{"input":[1,2,3]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := handlers.ParseResult(data)
		if err != nil {
			if !errors.Is(err, handlers.ErrBadResult) {
				t.Fatalf("ParseResult(%q) error = %v, want it to wrap ErrBadResult", data, err)
			}
			return
		}
		switch r.ExitState {
		case handlers.Success, handlers.Continue, handlers.Failed:
		default:
			t.Fatalf("ParseResult(%q).ExitState = %q, want SUCCESS, CONTINUE or FAILED", data, r.ExitState)
		}
		if trimmed := bytes.TrimSpace(data); len(trimmed) > 0 && !json.Valid(trimmed) {
			t.Fatalf("ParseResult(%q) accepted a document that is not JSON", data)
		}
		if r.Input != nil && !json.Valid(r.Input) {
			t.Fatalf("ParseResult(%q).Input = %q, not JSON", data, r.Input)
		}
		// What a function returns survives being encoded and read again.
		enc, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("json.Marshal(%+v) error = %v", r, err)
		}
		r2, err := handlers.ParseResult(enc)
		if err != nil {
			t.Fatalf("ParseResult(%s) error = %v after a round trip of %q", enc, err, data)
		}
		if r2.ExitState != r.ExitState || r2.ErrorCode != r.ErrorCode || r2.ErrorMessage != r.ErrorMessage ||
			!resultSameJSON(r2.Input, r.Input) {
			t.Fatalf("round trip of %q: ParseResult(%s) = %+v, want %+v", data, enc, r2, r)
		}
	})
}

// resultSameJSON reports whether a and b are both nil or the same JSON value.
func resultSameJSON(a, b []byte) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	var va, vb any
	da, db := json.NewDecoder(bytes.NewReader(a)), json.NewDecoder(bytes.NewReader(b))
	da.UseNumber()
	db.UseNumber()
	return da.Decode(&va) == nil && db.Decode(&vb) == nil && reflect.DeepEqual(va, vb)
}

func TestResultState(t *testing.T) {
	if got := (handlers.Result{}).State(); got != handlers.Continue {
		t.Errorf("Result{}.State() = %q, want CONTINUE", got)
	}
	if got := (handlers.Result{ExitState: handlers.Failed}).State(); got != handlers.Failed {
		t.Errorf("Result{FAILED}.State() = %q, want FAILED", got)
	}
}

func TestChainOrder(t *testing.T) {
	var trace []string
	mw := func(name string) handlers.Middleware {
		return func(next handlers.Handler) handlers.Handler {
			return handlers.Func(func(ctx context.Context, ev *event.Event) (handlers.Result, error) {
				trace = append(trace, name+" in")
				res, err := next.Handle(ctx, ev)
				trace = append(trace, name+" out")
				return res, err
			})
		}
	}
	h := handlers.Chain(handlers.Func(func(context.Context, *event.Event) (handlers.Result, error) {
		trace = append(trace, "handler")
		return handlers.Result{ExitState: handlers.Success}, nil
	}), mw("a"), mw("b"), mw("c"))
	res, err := h.Handle(t.Context(), &event.Event{})
	if err != nil || res.State() != handlers.Success {
		t.Fatalf("Handle() = %+v, %v, want SUCCESS, nil", res, err)
	}
	want := []string{"a in", "b in", "c in", "handler", "c out", "b out", "a out"}
	if !reflect.DeepEqual(trace, want) {
		t.Errorf("calls = %q, want %q", trace, want)
	}

	if got := handlers.Chain(nil); got != nil {
		t.Errorf("Chain(nil) = %v, want nil", got)
	}
}

func TestRecover(t *testing.T) {
	h := handlers.Chain(handlers.Func(func(context.Context, *event.Event) (handlers.Result, error) {
		panic("boom")
	}), handlers.Recover())
	res, err := h.Handle(t.Context(), &event.Event{})
	var pe *handlers.PanicError
	if !errors.As(err, &pe) {
		t.Fatalf("Handle() error = %v, want a *PanicError", err)
	}
	if pe.Value != "boom" {
		t.Errorf("PanicError.Value = %v, want boom", pe.Value)
	}
	if !bytes.Contains(pe.Stack, []byte("TestRecover")) {
		t.Errorf("PanicError.Stack does not show where the panic was:\n%s", pe.Stack)
	}
	if !strings.Contains(err.Error(), "boom") {
		t.Errorf("Error() = %q, want it to hold the panic value", err)
	}
	if !reflect.DeepEqual(res, handlers.Result{}) {
		t.Errorf("Handle() = %+v, want the zero Result", res)
	}

	// Without a panic the result passes through.
	want := handlers.Result{ExitState: handlers.Failed, ErrorCode: "X"}
	h = handlers.Chain(handlers.Func(func(context.Context, *event.Event) (handlers.Result, error) {
		return want, nil
	}), handlers.Recover())
	if res, err := h.Handle(t.Context(), &event.Event{}); err != nil || !reflect.DeepEqual(res, want) {
		t.Errorf("Handle() = %+v, %v, want %+v, nil", res, err, want)
	}
}

func TestTimeout(t *testing.T) {
	errOwn := errors.New("own error")
	// block waits for the end of the call's context, then answers anyway.
	block := func(res handlers.Result, err error) handlers.Func {
		return func(ctx context.Context, _ *event.Event) (handlers.Result, error) {
			<-ctx.Done()
			return res, err
		}
	}
	tests := []struct {
		name      string
		d         time.Duration
		h         handlers.Func
		want      handlers.Result
		wantErrs  []error
		wantNotIs []error
	}{
		{
			name: "in time",
			d:    time.Minute,
			h: func(context.Context, *event.Event) (handlers.Result, error) {
				return handlers.Result{ExitState: handlers.Success}, nil
			},
			want: handlers.Result{ExitState: handlers.Success},
		},
		{
			name:      "error in time",
			d:         time.Minute,
			h:         func(context.Context, *event.Event) (handlers.Result, error) { return handlers.Result{}, errOwn },
			wantErrs:  []error{errOwn},
			wantNotIs: []error{handlers.ErrTimeout},
		},
		{
			name:     "late answer does not count",
			d:        10 * time.Millisecond,
			h:        block(handlers.Result{ExitState: handlers.Success}, nil),
			wantErrs: []error{handlers.ErrTimeout, context.DeadlineExceeded},
		},
		{
			name: "ctx error",
			d:    10 * time.Millisecond,
			h: func(ctx context.Context, _ *event.Event) (handlers.Result, error) {
				<-ctx.Done()
				return handlers.Result{}, ctx.Err()
			},
			wantErrs: []error{handlers.ErrTimeout, context.DeadlineExceeded},
		},
		{
			name:     "own error after the deadline",
			d:        10 * time.Millisecond,
			h:        block(handlers.Result{}, errOwn),
			wantErrs: []error{handlers.ErrTimeout, errOwn},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := handlers.Chain(tt.h, handlers.Timeout(tt.d)).Handle(t.Context(), &event.Event{})
			for _, want := range tt.wantErrs {
				if !errors.Is(err, want) {
					t.Errorf("Handle() error = %v, want it to wrap %v", err, want)
				}
			}
			for _, not := range tt.wantNotIs {
				if errors.Is(err, not) {
					t.Errorf("Handle() error = %v, want it not to wrap %v", err, not)
				}
			}
			if len(tt.wantErrs) == 0 && err != nil {
				t.Errorf("Handle() error = %v, want nil", err)
			}
			if !reflect.DeepEqual(res, tt.want) {
				t.Errorf("Handle() = %+v, want %+v", res, tt.want)
			}
		})
	}
}

func TestTimeoutDeadline(t *testing.T) {
	deadline := func(ctx context.Context, _ *event.Event) (handlers.Result, error) {
		if d, ok := ctx.Deadline(); ok {
			return handlers.Result{ErrorMessage: time.Until(d).Round(time.Hour).String()}, nil
		}
		return handlers.Result{ErrorMessage: "none"}, nil
	}
	tests := []struct {
		name string
		d    time.Duration
		want string
	}{
		{name: "zero adds no deadline", d: 0, want: "none"},
		{name: "negative adds no deadline", d: -time.Second, want: "none"},
		{name: "positive sets the deadline", d: 3 * time.Hour, want: "3h0m0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := handlers.Chain(handlers.Func(deadline), handlers.Timeout(tt.d)).Handle(t.Context(), &event.Event{})
			if err != nil || res.ErrorMessage != tt.want {
				t.Errorf("Timeout(%v): deadline seen = %q, %v, want %q", tt.d, res.ErrorMessage, err, tt.want)
			}
		})
	}

	// The caller's shorter deadline wins, and counts as a timeout.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	h := handlers.Chain(handlers.Func(func(ctx context.Context, _ *event.Event) (handlers.Result, error) {
		<-ctx.Done()
		return handlers.Result{}, ctx.Err()
	}), handlers.Timeout(time.Hour))
	if _, err := h.Handle(ctx, &event.Event{}); !errors.Is(err, handlers.ErrTimeout) {
		t.Errorf("Handle() with the caller's deadline: error = %v, want ErrTimeout", err)
	}

	// A cancelled call is not a timeout.
	ctx, cancel = context.WithCancel(t.Context())
	cancel()
	if _, err := h.Handle(ctx, &event.Event{}); !errors.Is(err, context.Canceled) || errors.Is(err, handlers.ErrTimeout) {
		t.Errorf("Handle() cancelled: error = %v, want context.Canceled and not ErrTimeout", err)
	}

	// An error that already says timeout is not wrapped twice.
	h = handlers.Chain(handlers.Func(func(ctx context.Context, _ *event.Event) (handlers.Result, error) {
		<-ctx.Done()
		return handlers.Result{}, fmt.Errorf("%w: own", handlers.ErrTimeout)
	}), handlers.Timeout(10*time.Millisecond))
	_, err := h.Handle(t.Context(), &event.Event{})
	if n := strings.Count(err.Error(), handlers.ErrTimeout.Error()); n != 1 {
		t.Errorf("Handle() error = %q, want %q once", err, handlers.ErrTimeout)
	}
}

func TestCall(t *testing.T) {
	c, ok := handlers.CallFrom(t.Context())
	if ok || c.Logger == nil {
		t.Errorf("CallFrom(no call) = %+v, %v, want a discarding logger and false", c, ok)
	}
	ctx := handlers.WithCall(t.Context(), handlers.Call{Ref: "f", Origin: "f/01ID"})
	c, ok = handlers.CallFrom(ctx)
	if !ok || c.Ref != "f" || c.Origin != "f/01ID" {
		t.Errorf("CallFrom() = %+v, %v, want ref f, origin f/01ID", c, ok)
	}
	if o, ok := event.OriginFrom(ctx); !ok || o != "f/01ID" {
		t.Errorf("event.OriginFrom(WithCall) = %q, %v, want f/01ID, true", o, ok)
	}
	if o, ok := event.OriginFor(ctx, "s", nil); !ok || o != "f/01ID" {
		t.Errorf("event.OriginFor(WithCall without Stamp) = %q, %v, want f/01ID, true", o, ok)
	}
}

// TestCallStamp: with a Stamp, messages sent under the call's context (the
// publisher SDK reads event.OriginFor) get a value for their own subject and
// body, while OriginFrom, what is shown outside the bus, stays Origin.
func TestCallStamp(t *testing.T) {
	stamp := func(subject string, data []byte) string { return "f/01ID/" + subject + "/" + string(data) }
	ctx := handlers.WithCall(t.Context(), handlers.Call{Ref: "f", Origin: "f/01ID/ext", Stamp: stamp})
	if o, ok := event.OriginFor(ctx, "trigger.POST_CREATE.SERVER", []byte("x")); !ok || o != "f/01ID/trigger.POST_CREATE.SERVER/x" {
		t.Errorf("event.OriginFor = %q, %v, want the stamp for the message", o, ok)
	}
	if o, ok := event.OriginFrom(ctx); !ok || o != "f/01ID/ext" {
		t.Errorf("event.OriginFrom = %q, %v, want f/01ID/ext, true", o, ok)
	}
	if _, ok := event.OriginFor(t.Context(), "s", nil); ok {
		t.Error("event.OriginFor(no call) is ok, want false")
	}
}

func TestFuncConformance(t *testing.T) {
	handlerstest.Run(t, handlerstest.Kind{
		Name: "go",
		Continue: func(*testing.T) handlers.Handler {
			return handlers.Func(func(context.Context, *event.Event) (handlers.Result, error) {
				return handlers.Result{}, nil
			})
		},
		Fail: func(*testing.T) handlers.Handler {
			return handlers.Func(func(context.Context, *event.Event) (handlers.Result, error) {
				return handlers.Result{ExitState: handlers.Failed, ErrorCode: "QUOTA_EXCEEDED", ErrorMessage: "too many CPUs"}, nil
			})
		},
		Modify: func(*testing.T) handlers.Handler {
			return handlers.Func(func(_ context.Context, ev *event.Event) (handlers.Result, error) {
				input, err := handlerstest.ModifyInput(ev.Input)
				if err != nil {
					return handlers.Result{}, err
				}
				return handlers.Result{ExitState: handlers.Success, Input: input}, nil
			})
		},
		Hang: func(*testing.T) handlers.Handler {
			return handlers.Func(func(ctx context.Context, _ *event.Event) (handlers.Result, error) {
				<-ctx.Done()
				return handlers.Result{}, ctx.Err()
			})
		},
		Error: func(*testing.T) handlers.Handler {
			return handlers.Func(func(context.Context, *event.Event) (handlers.Result, error) {
				return handlers.Result{}, errors.New("go func failed")
			})
		},
	})
}

func TestResultValidate(t *testing.T) {
	good := []handlers.Result{
		{}, {ExitState: handlers.Success}, {ExitState: handlers.Continue},
		{ExitState: handlers.Failed, ErrorCode: "X", ErrorMessage: "y"},
		{ExitState: handlers.Success, Input: json.RawMessage(`{"cpu":8}`)},
	}
	for _, r := range good {
		if err := r.Validate(); err != nil {
			t.Errorf("%+v.Validate() = %v, want nil", r, err)
		}
	}
	bad := []struct {
		give handlers.Result
		want string
	}{
		{handlers.Result{ExitState: "failed"}, `unknown exitState "failed"`},
		{handlers.Result{ExitState: "FAIL"}, `unknown exitState "FAIL"`},
		{handlers.Result{ExitState: handlers.Success, Input: json.RawMessage(`{"cpu":`)}, "input is not one JSON value"},
		{handlers.Result{Input: json.RawMessage(`{} {}`)}, "input is not one JSON value"},
	}
	for _, tt := range bad {
		err := tt.give.Validate()
		if !errors.Is(err, handlers.ErrBadResult) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v.Validate() = %v, want an error wrapping ErrBadResult with %q", tt.give, err, tt.want)
		}
	}
}

func TestOutcome(t *testing.T) {
	errOwn := errors.New("own error")
	tests := []struct {
		name string
		res  handlers.Result
		err  error
		want string
	}{
		{name: "zero result", want: event.OutcomeContinue},
		{name: "success", res: handlers.Result{ExitState: handlers.Success}, want: event.OutcomeSuccess},
		{name: "failed", res: handlers.Result{ExitState: handlers.Failed}, want: event.OutcomeFailed},
		{name: "error", res: handlers.Result{ExitState: handlers.Success}, err: errOwn, want: event.OutcomeError},
		{name: "ErrTimeout", err: fmt.Errorf("%w: exec", handlers.ErrTimeout), want: event.OutcomeTimeout},
		{name: "deadline", err: fmt.Errorf("call: %w", context.DeadlineExceeded), want: event.OutcomeTimeout},
		{name: "cancelled", err: context.Canceled, want: event.OutcomeError},
		{name: "panic", err: &handlers.PanicError{Value: "boom"}, want: event.OutcomeError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := handlers.Outcome(tt.res, tt.err); got != tt.want {
				t.Errorf("Outcome(%+v, %v) = %q, want %q", tt.res, tt.err, got, tt.want)
			}
			if got, want := handlers.IsTimeout(tt.err), tt.want == event.OutcomeTimeout; got != want {
				t.Errorf("IsTimeout(%v) = %v, want %v", tt.err, got, want)
			}
		})
	}
}

// TestTimeoutUnderEarlierDeadline: under a caller's deadline earlier than
// its own, Timeout keeps the caller's and a late answer still does not count.
func TestTimeoutUnderEarlierDeadline(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	want, _ := ctx.Deadline()
	h := handlers.Chain(handlers.Func(func(ctx context.Context, _ *event.Event) (handlers.Result, error) {
		if got, _ := ctx.Deadline(); !got.Equal(want) {
			return handlers.Result{}, fmt.Errorf("deadline %v, want the caller's %v", got, want)
		}
		<-ctx.Done()
		return handlers.Result{ExitState: handlers.Success}, nil
	}), handlers.Timeout(time.Hour))
	res, err := h.Handle(ctx, &event.Event{})
	if !errors.Is(err, handlers.ErrTimeout) || !reflect.DeepEqual(res, handlers.Result{}) {
		t.Errorf("Handle() = %+v, %v, want a zero result and ErrTimeout", res, err)
	}
}

// TestCallLogger: the lines of a call carry the function, the event id,
// the trigger type and the option; a discarding logger stays as it is.
func TestCallLogger(t *testing.T) {
	var buf bytes.Buffer
	ev := &event.Event{ID: "01JDQ7Z6W3S6K4V0Q5H3YB3M8C", TriggerType: "POST_CREATE", TriggerOption: "SERVER"}
	handlers.CallLogger(slog.New(slog.NewJSONHandler(&buf, nil)), "notify", ev).Info("hello", "n", 1)
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("log line %q: %v", buf.String(), err)
	}
	want := map[string]any{
		handlers.LogFunction: "notify", handlers.LogEventID: ev.ID,
		handlers.LogTriggerType: "POST_CREATE", handlers.LogOption: "SERVER", "n": float64(1),
	}
	for k, v := range want {
		if rec[k] != v {
			t.Errorf("log line %s: %s = %v, want %v", buf.String(), k, rec[k], v)
		}
	}
	discard := slog.New(slog.DiscardHandler)
	if got := handlers.CallLogger(discard, "notify", ev); got != discard {
		t.Error("CallLogger(a discarding logger) made a new logger")
	}
}
