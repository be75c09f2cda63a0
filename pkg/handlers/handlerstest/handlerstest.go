package handlerstest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
)

// Kind makes handlers of one kind that behave in the standard ways the suite
// checks. Each function is called with the (sub)test that uses the handler,
// and registers with t.Cleanup whatever it has to release (servers, files).
// A handler with a Close() error method is closed by the suite too, after its
// last call, so its Close must be idempotent.
type Kind struct {
	// Name names the kind in failure messages.
	Name string
	// Continue returns a handler that returns CONTINUE (or nothing).
	Continue func(t *testing.T) handlers.Handler
	// Fail returns a handler that returns FAILED with errorCode
	// "QUOTA_EXCEEDED" and errorMessage "too many CPUs".
	Fail func(t *testing.T) handlers.Handler
	// Modify returns a handler that returns SUCCESS with input = the event's
	// input with "cpu" doubled and "tagged": true added, other fields
	// untouched.
	Modify func(t *testing.T) handlers.Handler
	// Hang returns a handler that never returns on its own (it sleeps or
	// loops, and, for a kind that runs processes, starts a background child
	// too); it must stop when its context is done.
	Hang func(t *testing.T) handlers.Handler
	// Error returns a handler that fails with an error (a non-zero exit, an
	// HTTP 500, a Lua error(...)).
	Error func(t *testing.T) handlers.Handler
	// Returns returns a handler that returns the result document doc, a
	// JSON object, in the kind's own form: a command prints it, a webhook
	// answers it with status 200, a Lua function returns it as a table
	// (null as trigger.null). The suite checks that every kind reads the
	// same documents the same way: the same keys in the same case, the
	// same types, the same errors. It is nil for the go kind only, whose
	// results are Go values checked by [handlers.Result.Validate].
	Returns func(t *testing.T, doc string) handlers.Handler
}

// Bounds of the suite. They are correctness bounds, not speed tests: a
// handler that honours its context is far inside them on any machine.
const (
	hangTimeout = 300 * time.Millisecond
	returnBound = 5 * time.Second
	concurrency = 20
)

// eventInput is the input of the events the suite sends: nested objects,
// an array, null, a fractional number and one too big for int64 or float64.
const eventInput = `{"cpu":4,"ram":8192,"name":"web-1","tags":["a","b"],"meta":{"x":null,"y":1.5},"big":12345678901234567890}`

// wantModified is eventInput as Modify must return it.
const wantModified = `{"cpu":8,"ram":8192,"name":"web-1","tags":["a","b"],"meta":{"x":null,"y":1.5},"big":12345678901234567890,"tagged":true}`

// Run checks the handlers of k, in subtests of t. It checks goroutines
// against a snapshot taken when its last subtest starts, so it must not run
// in parallel with other tests: don't call it from a test that calls
// t.Parallel.
func Run(t *testing.T, k Kind) {
	t.Helper()
	ctors := map[string]func(*testing.T) handlers.Handler{
		"Continue": k.Continue, "Fail": k.Fail, "Modify": k.Modify, "Hang": k.Hang, "Error": k.Error,
	}
	for _, name := range []string{"Continue", "Fail", "Modify", "Hang", "Error"} {
		if ctors[name] == nil {
			t.Fatalf("handlerstest: kind %q has no %s", k.Name, name)
		}
	}
	s := &suite{kind: k}

	t.Run("Continue", func(t *testing.T) {
		h := s.make(t, k.Continue)
		res, err := h.Handle(newCtx(t), newEvent())
		s.checkContinue(t, res, err)
	})
	t.Run("Fail", func(t *testing.T) {
		h := s.make(t, k.Fail)
		res, err := h.Handle(newCtx(t), newEvent())
		s.checkFail(t, res, err)
	})
	t.Run("Modify", func(t *testing.T) {
		h := s.make(t, k.Modify)
		res, err := h.Handle(newCtx(t), newEvent())
		s.checkModify(t, res, err)
	})
	t.Run("Error", func(t *testing.T) {
		h := s.make(t, k.Error)
		res, err := h.Handle(newCtx(t), newEvent())
		s.checkError(t, res, err)
	})
	t.Run("Timeout", func(t *testing.T) {
		h := handlers.Chain(s.make(t, k.Hang), handlers.Timeout(hangTimeout))
		s.checkTimeout(t, h)
	})
	t.Run("Cancel", func(t *testing.T) {
		h := s.make(t, k.Hang)
		t.Run("Before", func(t *testing.T) {
			ctx, cancel := context.WithCancel(newCtx(t))
			cancel()
			s.checkCancelled(t, h, ctx)
		})
		t.Run("During", func(t *testing.T) {
			ctx, cancel := context.WithCancel(newCtx(t))
			stop := time.AfterFunc(hangTimeout, cancel)
			defer stop.Stop()
			s.checkCancelled(t, h, ctx)
		})
	})
	t.Run("Middleware", func(t *testing.T) {
		wrap := func(h handlers.Handler, d time.Duration) handlers.Handler {
			return handlers.Chain(h, handlers.Recover(), handlers.Timeout(d))
		}
		ctx := newCtx(t)
		res, err := wrap(s.make(t, k.Continue), time.Minute).Handle(ctx, newEvent())
		s.checkContinue(t, res, err)
		res, err = wrap(s.make(t, k.Fail), time.Minute).Handle(ctx, newEvent())
		s.checkFail(t, res, err)
		res, err = wrap(s.make(t, k.Modify), time.Minute).Handle(ctx, newEvent())
		s.checkModify(t, res, err)
		res, err = wrap(s.make(t, k.Error), time.Minute).Handle(ctx, newEvent())
		s.checkError(t, res, err)
		s.checkTimeout(t, wrap(s.make(t, k.Hang), hangTimeout))
	})
	t.Run("Results", func(t *testing.T) {
		if k.Returns == nil {
			t.Skipf("%s: no Returns: the kind's results are Go values", k.Name)
		}
		s.results(t)
	})
	t.Run("Concurrent", func(t *testing.T) {
		s.concurrent(t)
	})
	t.Run("NoGoroutineLeft", func(t *testing.T) {
		// Registered first, so it runs last: after the kind's cleanups
		// have closed what the handlers below use.
		base := goleak.IgnoreCurrent()
		t.Cleanup(func() { goleak.VerifyNone(t, base) })
		s.concurrent(t)
		ctx, cancel := context.WithCancel(newCtx(t))
		stop := time.AfterFunc(hangTimeout, cancel)
		defer stop.Stop()
		s.checkCancelled(t, s.make(t, k.Hang), ctx)
	})
}

type suite struct{ kind Kind }

// make returns a handler of ctor, closed when t ends if it can be.
func (s *suite) make(t *testing.T, ctor func(*testing.T) handlers.Handler) handlers.Handler {
	t.Helper()
	h := ctor(t)
	if h == nil {
		t.Fatalf("%s: the kind made a nil handler", s.kind.Name)
	}
	if c, ok := h.(interface{ Close() error }); ok {
		t.Cleanup(func() {
			if err := c.Close(); err != nil {
				t.Errorf("%s: Close() = %v, want nil", s.kind.Name, err)
			}
		})
	}
	return h
}

// concurrent makes one handler of each behaviour and calls them all at once,
// concurrency calls in all, each checked.
func (s *suite) concurrent(t *testing.T) {
	t.Helper()
	k := s.kind
	type check struct {
		h     handlers.Handler
		check func(t *testing.T, res handlers.Result, err error)
	}
	checks := []check{
		{s.make(t, k.Continue), s.checkContinue},
		{s.make(t, k.Fail), s.checkFail},
		{s.make(t, k.Modify), s.checkModify},
		{s.make(t, k.Error), s.checkError},
		{handlers.Chain(s.make(t, k.Hang), handlers.Timeout(hangTimeout)), s.checkTimeoutErr},
	}
	ctx := newCtx(t)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range concurrency {
		c := checks[i%len(checks)]
		wg.Go(func() {
			<-start
			res, err := c.h.Handle(ctx, newEvent())
			c.check(t, res, err)
		})
	}
	close(start)
	waitWithin(t, s.kind.Name+": concurrent calls", 4*returnBound, wg.Wait)
}

// resultsAccepted are result documents every kind reads, and how.
var resultsAccepted = []struct {
	name string
	doc  string
	want handlers.Result
}{
	{"empty", `{}`, handlers.Result{ExitState: handlers.Continue}},
	{"failed", `{"exitState":"FAILED","errorCode":"QUOTA_EXCEEDED","errorMessage":"too many CPUs"}`,
		handlers.Result{ExitState: handlers.Failed, ErrorCode: "QUOTA_EXCEEDED", ErrorMessage: "too many CPUs"}},
	{"state in any case", `{"exitState":"failed"}`, handlers.Result{ExitState: handlers.Failed}},
	{"state padded", `{"exitState":" Success "}`, handlers.Result{ExitState: handlers.Success}},
	{"state null", `{"exitState":null}`, handlers.Result{ExitState: handlers.Continue}},
	{"code a number", `{"exitState":"FAILED","errorCode":403}`, handlers.Result{ExitState: handlers.Failed, ErrorCode: "403"}},
	{"code null", `{"exitState":"FAILED","errorCode":null,"errorMessage":"m"}`, handlers.Result{ExitState: handlers.Failed, ErrorMessage: "m"}},
	{"returnCode CONTINUE", `{"returnCode":"CONTINUE"}`, handlers.Result{ExitState: handlers.Continue}},
	{"input null", `{"exitState":"SUCCESS","input":null}`, handlers.Result{ExitState: handlers.Success}},
	{"input", `{"exitState":"SUCCESS","input":{"cpu":2,"tags":["a"]}}`,
		handlers.Result{ExitState: handlers.Success, Input: json.RawMessage(`{"cpu":2,"tags":["a"]}`)}},
}

// resultsRefused are result documents every kind refuses with an error
// wrapping handlers.ErrBadResult that names key.
var resultsRefused = []struct {
	name string
	doc  string
	key  string
}{
	{"exitState in lower case", `{"exitstate":"FAILED"}`, "exitstate"},
	{"exitState in upper case", `{"EXITSTATE":"FAILED"}`, "EXITSTATE"},
	{"errorCode in another case", `{"exitState":"FAILED","errorcode":"QUOTA_EXCEEDED"}`, "errorcode"},
	{"unknown key", `{"exitState":"SUCCESS","extra":1}`, "extra"},
	{"exitState a number", `{"exitState":1}`, "exitState"},
	{"exitState a boolean", `{"exitState":true}`, "exitState"},
	{"exitState an object", `{"exitState":{"FAILED":true}}`, "exitState"},
	{"exitState a list", `{"exitState":["FAILED"]}`, "exitState"},
	{"exitState unknown", `{"exitState":"MAYBE"}`, "exitState"},
	{"errorCode an object", `{"exitState":"FAILED","errorCode":{"a":1}}`, "errorCode"},
	{"errorMessage a list", `{"exitState":"SUCCESS","errorMessage":["m"]}`, "errorMessage"},
	{"errorCode a boolean", `{"exitState":"CONTINUE","errorCode":false}`, "errorCode"},
	{"returnCode not CONTINUE", `{"returnCode":"FAILED"}`, "returnCode"},
	{"action-function keys", `{"returnCode":"SUCCESSFUL","errorString":"x"}`, "errorString"},
}

// results checks that the kind reads result documents by the rules every
// kind shares.
func (s *suite) results(t *testing.T) {
	t.Helper()
	for _, tt := range resultsAccepted {
		t.Run("Accepted/"+tt.name, func(t *testing.T) {
			res, err := s.make(t, func(t *testing.T) handlers.Handler { return s.kind.Returns(t, tt.doc) }).Handle(newCtx(t), newEvent())
			if err != nil {
				t.Fatalf("%s: result %s: Handle() error = %v, want %s", s.kind.Name, tt.doc, err, show(tt.want))
			}
			if !reflect.DeepEqual(res, tt.want) {
				t.Errorf("%s: result %s: Handle() = %s, want %s", s.kind.Name, tt.doc, show(res), show(tt.want))
			}
		})
	}
	for _, tt := range resultsRefused {
		t.Run("Refused/"+tt.name, func(t *testing.T) {
			res, err := s.make(t, func(t *testing.T) handlers.Handler { return s.kind.Returns(t, tt.doc) }).Handle(newCtx(t), newEvent())
			if !errors.Is(err, handlers.ErrBadResult) {
				t.Fatalf("%s: result %s: Handle() = %s, %v, want an error wrapping handlers.ErrBadResult", s.kind.Name, tt.doc, show(res), err)
			}
			if !strings.Contains(err.Error(), tt.key) {
				t.Errorf("%s: result %s: Handle() error = %q, want it to name %s", s.kind.Name, tt.doc, err, tt.key)
			}
			if !isZero(res) {
				t.Errorf("%s: result %s: Handle() = %s with error %v, want the zero Result", s.kind.Name, tt.doc, show(res), err)
			}
		})
	}
}

func (s *suite) checkContinue(t *testing.T, res handlers.Result, err error) {
	t.Helper()
	if err != nil {
		t.Errorf("%s: Continue: Handle() error = %v, want nil", s.kind.Name, err)
		return
	}
	if res.State() != handlers.Continue || res.Input != nil || res.ErrorCode != "" || res.ErrorMessage != "" {
		t.Errorf("%s: Continue: Handle() = %s, want CONTINUE and nothing else", s.kind.Name, show(res))
	}
}

func (s *suite) checkFail(t *testing.T, res handlers.Result, err error) {
	t.Helper()
	if err != nil {
		t.Errorf("%s: Fail: Handle() error = %v, want nil", s.kind.Name, err)
		return
	}
	if res.State() != handlers.Failed || res.ErrorCode != "QUOTA_EXCEEDED" || res.ErrorMessage != "too many CPUs" {
		t.Errorf("%s: Fail: Handle() = %s, want FAILED QUOTA_EXCEEDED %q", s.kind.Name, show(res), "too many CPUs")
	}
}

func (s *suite) checkModify(t *testing.T, res handlers.Result, err error) {
	t.Helper()
	if err != nil {
		t.Errorf("%s: Modify: Handle() error = %v, want nil", s.kind.Name, err)
		return
	}
	if res.State() != handlers.Success {
		t.Errorf("%s: Modify: Handle() = %s, want SUCCESS", s.kind.Name, show(res))
	}
	if res.Input == nil {
		t.Errorf("%s: Modify: result has no input, want %s", s.kind.Name, wantModified)
		return
	}
	if diff := jsonDiff(res.Input, []byte(wantModified)); diff != "" {
		t.Errorf("%s: Modify: input = %s, want %s: %s", s.kind.Name, res.Input, wantModified, diff)
	}
}

func (s *suite) checkError(t *testing.T, res handlers.Result, err error) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: Error: Handle() error = nil (result %s), want an error", s.kind.Name, show(res))
		return
	}
	if errors.Is(err, handlers.ErrTimeout) {
		t.Errorf("%s: Error: Handle() error = %v, want an error that is not a timeout", s.kind.Name, err)
	}
	if !isZero(res) {
		t.Errorf("%s: Error: Handle() = %s with error %v, want the zero Result", s.kind.Name, show(res), err)
	}
}

// checkTimeout calls h, a Hang handler with a Timeout of hangTimeout.
func (s *suite) checkTimeout(t *testing.T, h handlers.Handler) {
	t.Helper()
	var (
		res handlers.Result
		err error
	)
	waitWithin(t, s.kind.Name+": Hang with a timeout", returnBound, func() {
		res, err = h.Handle(newCtx(t), newEvent())
	})
	s.checkTimeoutErr(t, res, err)
}

func (s *suite) checkTimeoutErr(t *testing.T, res handlers.Result, err error) {
	t.Helper()
	if !errors.Is(err, handlers.ErrTimeout) {
		t.Errorf("%s: Hang with a timeout: Handle() error = %v, want an error wrapping handlers.ErrTimeout", s.kind.Name, err)
	}
	if !isZero(res) {
		t.Errorf("%s: Hang with a timeout: Handle() = %s, want the zero Result", s.kind.Name, show(res))
	}
}

// checkCancelled calls h, a Hang handler, with ctx, which is or will be
// cancelled.
func (s *suite) checkCancelled(t *testing.T, h handlers.Handler, ctx context.Context) {
	t.Helper()
	var (
		res handlers.Result
		err error
	)
	waitWithin(t, s.kind.Name+": Hang with a cancelled context", returnBound, func() {
		res, err = h.Handle(ctx, newEvent())
	})
	if err == nil {
		t.Errorf("%s: Hang with a cancelled context: Handle() error = nil (result %s), want an error", s.kind.Name, show(res))
	}
	if !isZero(res) {
		t.Errorf("%s: Hang with a cancelled context: Handle() = %s, want the zero Result", s.kind.Name, show(res))
	}
}

// waitWithin runs f and fails t when f has not returned within d. f is then
// left running: a handler that does not return cannot be stopped.
func waitWithin(t *testing.T, what string, d time.Duration, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		t.Fatalf("%s: did not return within %v", what, d)
	}
}

// newCtx returns the context of a worker's call.
func newCtx(t *testing.T) context.Context {
	return handlers.WithCall(t.Context(), handlers.Call{
		Ref:    "conformance",
		Origin: "conformance/" + event.NewID(),
	})
}

func newEvent() *event.Event {
	return &event.Event{
		ID:            event.NewID(),
		TriggerType:   "PRE_CREATE",
		TriggerOption: "SERVER",
		TimeStamp:     time.Now().UnixMilli(),
		BEUUID:        "be-1",
		Customer:      json.RawMessage(`{"resourceUUID":"c-1","resourceName":"Customer 1"}`),
		User:          json.RawMessage(`{"resourceUUID":"u-1","email":"u1@example.com"}`),
		Input:         json.RawMessage(eventInput),
	}
}

func isZero(res handlers.Result) bool { return reflect.DeepEqual(res, handlers.Result{}) }

func show(res handlers.Result) string {
	s := fmt.Sprintf("{exitState:%q", res.ExitState)
	if res.ErrorCode != "" || res.ErrorMessage != "" {
		s += fmt.Sprintf(" errorCode:%q errorMessage:%q", res.ErrorCode, res.ErrorMessage)
	}
	if res.Input != nil {
		s += fmt.Sprintf(" input:%s", res.Input)
	}
	return s + "}"
}

// jsonDiff compares two JSON documents by value: objects regardless of key
// order, numbers exactly (8, 8.0 and 8e0 are equal; a big number that went
// through a float64 is not). It returns "" when they are equal, else where
// they differ.
func jsonDiff(got, want []byte) string {
	g, err := decodeJSON(got)
	if err != nil {
		return "not JSON: " + err.Error()
	}
	w, err := decodeJSON(want)
	if err != nil {
		return "want is not JSON: " + err.Error()
	}
	return valueDiff("$", g, w)
}

func decodeJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("more than one JSON value")
	}
	return v, nil
}

func valueDiff(path string, got, want any) string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return fmt.Sprintf("%s is %s, want an object", path, kindOf(got))
		}
		keys := make([]string, 0, len(w)+len(g))
		for k := range w {
			keys = append(keys, k)
		}
		for k := range g {
			if _, ok := w[k]; !ok {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			gv, gok := g[k]
			wv, wok := w[k]
			switch {
			case !gok:
				return fmt.Sprintf("%s.%s is missing", path, k)
			case !wok:
				return fmt.Sprintf("%s.%s is not wanted", path, k)
			}
			if d := valueDiff(path+"."+k, gv, wv); d != "" {
				return d
			}
		}
		return ""
	case []any:
		g, ok := got.([]any)
		if !ok {
			return fmt.Sprintf("%s is %s, want an array", path, kindOf(got))
		}
		if len(g) != len(w) {
			return fmt.Sprintf("%s has %d elements, want %d", path, len(g), len(w))
		}
		for i := range w {
			if d := valueDiff(fmt.Sprintf("%s[%d]", path, i), g[i], w[i]); d != "" {
				return d
			}
		}
		return ""
	case json.Number:
		g, ok := got.(json.Number)
		if !ok {
			return fmt.Sprintf("%s is %s, want the number %s", path, kindOf(got), w)
		}
		gr, gok := new(big.Rat).SetString(string(g))
		wr, wok := new(big.Rat).SetString(string(w))
		if !gok || !wok || gr.Cmp(wr) != 0 {
			return fmt.Sprintf("%s is %s, want %s", path, g, w)
		}
		return ""
	default:
		if got != want {
			return fmt.Sprintf("%s is %v (%s), want %v", path, got, kindOf(got), want)
		}
		return ""
	}
}

func kindOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case json.Number:
		return "a number"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	}
	return strings.TrimPrefix(fmt.Sprintf("%T", v), "*")
}

// ModifyInput does to an input what the handlers of [Kind.Modify] do:
// doubles "cpu" and adds "tagged": true, keeping every other value (numbers
// included) as it is.
func ModifyInput(input json.RawMessage) (json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(input))
	dec.UseNumber()
	var in map[string]any
	if err := dec.Decode(&in); err != nil {
		return nil, fmt.Errorf("input: %w", err)
	}
	n, ok := in["cpu"].(json.Number)
	if !ok {
		return nil, fmt.Errorf("input cpu is %v, not a number", in["cpu"])
	}
	cpu, ok := new(big.Rat).SetString(string(n))
	if !ok {
		return nil, fmt.Errorf("input cpu %s is not a number", n)
	}
	cpu.Add(cpu, cpu)
	if cpu.IsInt() {
		in["cpu"] = json.Number(cpu.Num().String())
	} else {
		in["cpu"] = json.Number(cpu.FloatString(10))
	}
	in["tagged"] = true
	return json.Marshal(in)
}
