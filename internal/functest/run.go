package functest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/aymanbagabas/go-udiff"

	"github.com/triggerbus/triggerbus/internal/mailer"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers/lua"
	"github.com/triggerbus/triggerbus/pkg/subjects"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// Config is how a [Runner] loads scripts and runs their functions.
type Config struct {
	// Lua are the options scripts load with: the configured api_prefix,
	// messages and memory cap. The runner replaces Mail, DataStore,
	// HTTP.Transport and Logger with its own.
	Lua lua.Options
	// Functions turns the entry points of a script into the functions a
	// worker registers (the ref, trigger, priority and schedule the
	// script describes); cmd/trigger-worker's is the worker's own.
	Functions func([]lua.ScriptFunction) ([]worker.Function, error)
	// Prefix is the subject prefix; "" means subjects.DefaultPrefix.
	Prefix string
}

// Result is the outcome of one case.
type Result struct {
	// File and Line are where the case is.
	File string `json:"file"`
	Line int    `json:"line"`
	// Name is the case's name; Function the ref it called.
	Name     string `json:"name"`
	Function string `json:"function"`
	// Pass is true when the function did what the case expects.
	Pass bool `json:"pass"`
	// Problems say why a case failed other than by its expectations: a
	// script that does not load, a call no canned answer took, an answer
	// no call took.
	Problems []string `json:"problems,omitempty"`
	// Diff is the unified diff from what the case expects to what the
	// function did, when they differ.
	Diff string `json:"diff,omitempty"`
	// Log is what the call logged, when the case failed.
	Log string `json:"log,omitempty"`
	// Ms is how long the case took, in milliseconds.
	Ms float64 `json:"ms"`
}

// Report is the outcome of a run: every case of every file, in order.
type Report struct {
	Passed int      `json:"passed"`
	Failed int      `json:"failed"`
	Cases  []Result `json:"cases"`
}

// Run parses every test file, then runs their cases. A file that does not
// parse is an error (all of them, joined) and nothing runs; a case that
// fails is a Result with Pass false.
func Run(ctx context.Context, cfg Config, paths []string) (*Report, error) {
	files := make([]*File, 0, len(paths))
	var errs []error
	for _, p := range paths {
		f, err := ParseFile(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		files = append(files, f)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	rep := &Report{Cases: []Result{}}
	for _, f := range files {
		for _, r := range runFile(ctx, cfg, f) {
			if r.Pass {
				rep.Passed++
			} else {
				rep.Failed++
			}
			rep.Cases = append(rep.Cases, r)
		}
	}
	return rep, nil
}

// runFile loads the script of f and runs its cases.
func runFile(ctx context.Context, cfg Config, f *File) []Result {
	opts := cfg.Lua
	apiPrefix := opts.APIPrefix
	if apiPrefix == "" {
		apiPrefix = lua.DefaultAPIPrefix
	}
	h := &harness{apiPrefix: apiPrefix}
	var logBuf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opts.Mail, opts.DataStore, opts.HTTP.Transport, opts.Logger = h, h, h, log

	failAll := func(problem string) []Result {
		out := make([]Result, len(f.Cases))
		for i, c := range f.Cases {
			out[i] = Result{File: f.Path, Line: c.Line, Name: c.Name, Function: c.Function, Problems: []string{problem}}
		}
		return out
	}
	script := f.ScriptPath()
	sfs, err := lua.LoadScript(script, opts)
	for _, sf := range sfs {
		defer sf.Handler.Close()
	}
	if err != nil {
		return failAll(fmt.Sprintf("script %s does not load: %v", script, err))
	}
	fns, err := cfg.Functions(sfs)
	if err != nil {
		return failAll(fmt.Sprintf("script %s: %v", script, err))
	}
	off, err := worker.NewOffline(worker.OfflineConfig{Prefix: cfg.Prefix, Logger: log, Bus: h}, fns...)
	if err != nil {
		return failAll(fmt.Sprintf("script %s: %v", script, err))
	}
	// A case may name a function by its entry point too.
	entries := map[string]string{}
	for _, sf := range sfs {
		entries[sf.Entry] = sf.Ref
	}
	out := make([]Result, 0, len(f.Cases))
	for i := range f.Cases {
		c := &f.Cases[i]
		logBuf.Reset()
		began := time.Now()
		r := runCase(ctx, off, h, fns, entries, f, c)
		r.Ms = float64(time.Since(began).Microseconds()) / 1000
		if !r.Pass {
			r.Log = logBuf.String()
		}
		out = append(out, r)
	}
	return out
}

// runCase runs one case.
func runCase(ctx context.Context, off *worker.Offline, h *harness, fns []worker.Function, entries map[string]string, f *File, c *Case) Result {
	r := Result{File: f.Path, Line: c.Line, Name: c.Name}
	fail := func(format string, args ...any) Result {
		r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
		return r
	}
	fn, err := pick(fns, entries, c.Function, f.Function)
	if err != nil {
		return fail("%v", err)
	}
	r.Function = fn.Ref
	typ, option := c.Type, c.Option
	if typ == "" {
		typ = fn.TriggerType
	}
	if option == "" {
		option = subjects.Any
		if len(fn.Options) > 0 {
			option = fn.Options[0]
		}
	}
	t, err := subjects.Lookup(typ)
	if err != nil {
		return fail("type: %v", err)
	}
	data, err := nodeJSON(c.Event)
	if err != nil {
		return fail("event: %v", err)
	}
	if err := h.begin(c); err != nil {
		return fail("%v", err)
	}
	e := c.Expect
	var got view
	if t.IsPre() {
		d, err := off.Decide(ctx, typ, option, data, fn.Ref)
		if err != nil {
			h.end()
			return fail("%v", err)
		}
		if d.Code == event.CodeNoTrigger {
			h.end()
			return fail("function %s does not run for %s %s", fn.Ref, typ, option)
		}
		got = view{Allowed: &d.Allowed, Code: &d.Code, Message: &d.Message, Modified: &d.Modified}
		if d.Input != nil {
			got.Input = canonicalRaw(d.Input)
		}
		if len(d.Functions) > 0 {
			got.Outcome, got.Error = &d.Functions[0].Result, &d.Functions[0].Error
		}
	} else {
		for _, k := range []struct {
			set  bool
			name string
		}{{e.Allowed != nil, "allowed"}, {e.Code != nil, "code"}, {e.Message != nil, "message"}, {e.Modified != nil, "modified"}, {e.Input.Kind != 0, "input"}} {
			if k.set {
				return fail("expect.%s is a PRE decision's, and %s is a POST trigger type: expect outcome or error", k.name, typ)
			}
		}
		calls, err := off.Run(ctx, typ, option, data, fn.Ref)
		if err != nil {
			h.end()
			return fail("%v", err)
		}
		if len(calls) == 0 {
			h.end()
			return fail("function %s does not run for %s %s", fn.Ref, typ, option)
		}
		msg := ""
		if calls[0].Err != nil {
			msg = calls[0].Err.Error()
		}
		got = view{Outcome: &calls[0].Outcome, Error: &msg}
	}
	publishes, mails, problems := h.end()
	r.Problems = append(r.Problems, problems...)

	want, err := expected(e)
	if err != nil {
		return fail("%v", err)
	}
	got = got.only(want)
	for _, p := range publishes {
		got.Publishes = append(got.Publishes, publishView{Subject: p.subject, Data: canonicalRaw(p.data)})
	}
	for _, m := range mails {
		got.Mails = append(got.Mails, mailView(m))
	}
	wantText, gotText := want.text(), got.text()
	if wantText != gotText {
		r.Diff = udiff.Unified("expected", "actual", wantText, gotText)
	}
	r.Pass = r.Diff == "" && len(r.Problems) == 0
	return r
}

// pick returns the function a case calls: the first of refs given, by its
// ref or its entry point's name.
func pick(fns []worker.Function, entries map[string]string, refs ...string) (worker.Function, error) {
	names := make([]string, len(fns))
	for i, f := range fns {
		names[i] = f.Ref
	}
	for _, ref := range refs {
		if ref == "" {
			continue
		}
		for _, f := range fns {
			if f.Ref == ref || f.Ref == entries[ref] {
				return f, nil
			}
		}
		return worker.Function{}, fmt.Errorf("the script has no function %q (it has %s)", ref, strings.Join(names, ", "))
	}
	if len(fns) != 1 {
		return worker.Function{}, fmt.Errorf("the script has %d functions (%s): name one with function", len(fns), strings.Join(names, ", "))
	}
	return fns[0], nil
}

// view is what a case compares, in the order the diff shows it.
type view struct {
	Allowed   *bool           `json:"allowed,omitempty"`
	Code      *string         `json:"code,omitempty"`
	Message   *string         `json:"message,omitempty"`
	Modified  *bool           `json:"modified,omitempty"`
	Input     json.RawMessage `json:"input,omitempty"`
	Outcome   *string         `json:"outcome,omitempty"`
	Error     *string         `json:"error,omitempty"`
	Publishes []publishView   `json:"publishes,omitempty"`
	Mails     []Mail          `json:"mails,omitempty"`
}

type publishView struct {
	Subject string          `json:"subject"`
	Data    json.RawMessage `json:"data"`
}

func mailView(m mailer.Message) Mail {
	return Mail{To: m.To, Cc: m.Cc, Bcc: m.Bcc, ReplyTo: m.ReplyTo, Subject: m.Subject, Body: m.Body}
}

// expected is the view of what e expects.
func expected(e Expect) (view, error) {
	v := view{Allowed: e.Allowed, Code: e.Code, Message: e.Message, Modified: e.Modified, Outcome: e.Outcome, Error: e.Error}
	in, err := nodeJSON(e.Input)
	if err != nil {
		return v, fmt.Errorf("expect.input: %w", err)
	}
	if in != nil {
		v.Input = canonicalRaw(in)
	}
	for _, p := range e.Publishes {
		data, err := nodeJSON(p.Data)
		if err != nil {
			return v, fmt.Errorf("expect.publishes: %w", err)
		}
		if data == nil {
			data = json.RawMessage("null")
		}
		v.Publishes = append(v.Publishes, publishView{Subject: p.Subject, Data: canonicalRaw(data)})
	}
	v.Mails = slices.Clone(e.Mails)
	return v, nil
}

// only keeps the fields of v that want has: a case compares what it
// expects. An expected error is text the actual error contains.
func (v view) only(want view) view {
	out := view{}
	if want.Allowed != nil {
		out.Allowed = v.Allowed
	}
	if want.Code != nil {
		out.Code = orEmpty(v.Code)
	}
	if want.Message != nil {
		out.Message = orEmpty(v.Message)
	}
	if want.Modified != nil {
		out.Modified = v.Modified
	}
	if want.Input != nil {
		out.Input = v.Input
		if out.Input == nil {
			out.Input = json.RawMessage("null")
		}
	}
	if want.Outcome != nil {
		out.Outcome = orEmpty(v.Outcome)
	}
	if want.Error != nil {
		out.Error = orEmpty(v.Error)
		if *want.Error != "" && strings.Contains(*out.Error, *want.Error) || *want.Error == "" && *out.Error == "" {
			out.Error = want.Error
		}
	}
	return out
}

func orEmpty(s *string) *string {
	if s == nil {
		return new(string)
	}
	return s
}

// text is the view as indented JSON, the text the diff compares. The
// booleans are written even when false.
func (v view) text() string {
	var buf bytes.Buffer
	buf.WriteString("{\n")
	first := true
	field := func(name string, val any) {
		b, _ := json.MarshalIndent(val, "  ", "  ")
		if !first {
			buf.WriteString(",\n")
		}
		first = false
		fmt.Fprintf(&buf, "  %q: %s", name, b)
	}
	if v.Allowed != nil {
		field("allowed", *v.Allowed)
	}
	if v.Code != nil {
		field("code", *v.Code)
	}
	if v.Message != nil {
		field("message", *v.Message)
	}
	if v.Modified != nil {
		field("modified", *v.Modified)
	}
	if v.Input != nil {
		field("input", v.Input)
	}
	if v.Outcome != nil {
		field("outcome", *v.Outcome)
	}
	if v.Error != nil {
		field("error", *v.Error)
	}
	if len(v.Publishes) > 0 {
		field("publishes", v.Publishes)
	}
	if len(v.Mails) > 0 {
		field("mails", v.Mails)
	}
	buf.WriteString("\n}\n")
	return buf.String()
}

// canonicalRaw is canonical as a RawMessage.
func canonicalRaw(data []byte) json.RawMessage {
	return json.RawMessage(canonical(data))
}
