package lua_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/handlers/lua"
)

var luaUpdate = flag.Bool("update-lua", false, "rewrite the Lua golden files in testdata/lua")

// luaBound bounds how long a call that must return may take: a guard
// against a hang, far above what even a loaded machine running the race
// detector needs, never an expectation of speed.
const luaBound = 2 * time.Minute

// luaWrap is the FDL script luaFunc makes around a body: one entry point,
// main, whose body runs with p.
const luaWrap = `function register()
  return { "main" }
end

function main(p)
  if p == nil then
    return { ref = "test", triggerType = "PRE_CREATE", triggerOptions = { "SERVER" }, api = "TRIGGER", version = 1 }
  end
%s
end
`

// luaBodyLine is the line of luaWrap where the body starts.
const luaBodyLine = 9

// luaFunc returns the handler of a script whose entry point runs body.
func luaFunc(t testing.TB, body string, opts ...lua.Options) *lua.Handler {
	t.Helper()
	return luaSource(t, fmt.Sprintf(luaWrap, body), opts...)[0].Handler
}

// luaSource loads src as a script file and returns its functions, closed
// when t ends.
func luaSource(t testing.TB, src string, opts ...lua.Options) []lua.ScriptFunction {
	t.Helper()
	path := filepath.Join(t.TempDir(), "test.lua")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return luaLoad(t, path, opts...)
}

func luaLoad(t testing.TB, path string, opts ...lua.Options) []lua.ScriptFunction {
	t.Helper()
	var o lua.Options
	if len(opts) > 0 {
		o = opts[0]
	}
	fns, err := lua.LoadScript(path, o)
	if err != nil {
		t.Fatalf("LoadScript(%s) error = %v", path, err)
	}
	if len(fns) == 0 {
		t.Fatalf("LoadScript(%s) loaded no function", path)
	}
	for _, f := range fns {
		t.Cleanup(func() {
			if err := f.Handler.Close(); err != nil {
				t.Errorf("Close() = %v", err)
			}
		})
	}
	return fns
}

func luaEvent(input string) *event.Event {
	ev := &event.Event{
		ID:            "01JDQ7Z6W3S6K4V0Q5H3YB3M8C",
		TriggerType:   "PRE_CREATE",
		TriggerOption: "SERVER",
		TimeStamp:     1764420000000,
		BEUUID:        "be-1",
		Customer:      json.RawMessage(`{"resourceUUID":"c-1","resourceName":"Customer 1"}`),
		User:          json.RawMessage(`{"resourceUUID":"u-1","email":"u1@example.com"}`),
	}
	if input != "" {
		ev.Input = json.RawMessage(input)
	}
	return ev
}

// luaCtx returns the context of a worker's call with bus and a logger
// writing to logs.
func luaCtx(t testing.TB, bus handlers.Bus, logs *luaLogs) context.Context {
	t.Helper()
	c := handlers.Call{Ref: "test", Origin: "test/01JDQ7Z6W3S6K4V0Q5H3YB3M8C", Bus: bus}
	if logs != nil {
		c.Logger = slog.New(logs)
	}
	return handlers.WithCall(t.Context(), c)
}

// luaCallWithin calls h and fails t if it does not return within luaBound.
func luaCallWithin(t *testing.T, ctx context.Context, h handlers.Handler, ev *event.Event) (handlers.Result, error) {
	t.Helper()
	type out struct {
		res handlers.Result
		err error
	}
	done := make(chan out, 1)
	go func() {
		res, err := h.Handle(ctx, ev)
		done <- out{res, err}
	}()
	timer := time.NewTimer(luaBound)
	defer timer.Stop()
	select {
	case o := <-done:
		return o.res, o.err
	case <-timer.C:
		t.Fatalf("Handle() did not return within %v", luaBound)
		return handlers.Result{}, nil
	}
}

// luaLogs is a slog.Handler that records what it gets.
type luaLogs struct {
	mu      sync.Mutex
	records []slog.Record
}

func (l *luaLogs) Enabled(context.Context, slog.Level) bool { return true }

func (l *luaLogs) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.records = append(l.records, r.Clone())
	return nil
}

func (l *luaLogs) WithAttrs(attrs []slog.Attr) slog.Handler {
	// Only the fallback logger uses With; record its attributes on each
	// record through a wrapper.
	return &luaLogsWith{l: l, attrs: attrs}
}

func (l *luaLogs) WithGroup(string) slog.Handler { return l }

func (l *luaLogs) all() []slog.Record {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]slog.Record(nil), l.records...)
}

type luaLogsWith struct {
	l     *luaLogs
	attrs []slog.Attr
}

func (w *luaLogsWith) Enabled(ctx context.Context, lv slog.Level) bool { return true }

func (w *luaLogsWith) Handle(ctx context.Context, r slog.Record) error {
	r = r.Clone()
	r.AddAttrs(w.attrs...)
	return w.l.Handle(ctx, r)
}

func (w *luaLogsWith) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &luaLogsWith{l: w.l, attrs: append(append([]slog.Attr(nil), w.attrs...), attrs...)}
}

func (w *luaLogsWith) WithGroup(string) slog.Handler { return w }

// luaAttrs returns the attributes of r as strings.
func luaAttrs(r slog.Record) map[string]string {
	m := map[string]string{}
	r.Attrs(func(a slog.Attr) bool {
		m[a.Key] = a.Value.String()
		return true
	})
	return m
}

func TestLuaResult(t *testing.T) {
	tests := []struct {
		name string
		body string
		want handlers.Result
	}{
		{"nil", "return nil", handlers.Result{ExitState: handlers.Continue}},
		{"nothing", "", handlers.Result{ExitState: handlers.Continue}},
		{"empty table", "return {}", handlers.Result{ExitState: handlers.Continue}},
		{"returnCode only", `return { returnCode = "CONTINUE" }`, handlers.Result{ExitState: handlers.Continue}},
		{"continue", `return { exitState = "CONTINUE" }`, handlers.Result{ExitState: handlers.Continue}},
		{"success any case", `return { exitState = "success" }`, handlers.Result{ExitState: handlers.Success}},
		{
			"failed",
			`return { exitState = "FAILED", errorCode = "QUOTA_EXCEEDED", errorMessage = "servers are limited to 16 CPUs" }`,
			handlers.Result{ExitState: handlers.Failed, ErrorCode: "QUOTA_EXCEEDED", ErrorMessage: "servers are limited to 16 CPUs"},
		},
		{"numeric code", `return { exitState = "FAILED", errorCode = 42 }`, handlers.Result{ExitState: handlers.Failed, ErrorCode: "42"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := luaFunc(t, tt.body)
			got, err := h.Handle(luaCtx(t, nil, nil), luaEvent(`{"cpu":4}`))
			if err != nil {
				t.Fatalf("Handle() error = %v", err)
			}
			if got.ExitState != tt.want.ExitState || got.ErrorCode != tt.want.ErrorCode ||
				got.ErrorMessage != tt.want.ErrorMessage || got.Input != nil {
				t.Errorf("Handle() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestLuaResultErrors(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		wantLine int // 0: the entry point's line
		wantMsg  string
		wantErr  error
	}{
		{"error", `  error("boom")`, luaBodyLine, "boom", nil},
		{"error in helper", "  local function f()\n    error(\"deep\")\n  end\n  f()", luaBodyLine + 1, "deep", nil},
		{"error level 0", `  error("no position", 0)`, luaBodyLine, "no position", nil},
		{"error table", `  error({ code = 1 })`, luaBodyLine, `error({"code":1})`, nil},
		{"runtime", "  local t = nil\n  return t.x", luaBodyLine + 1, "attempt to index", nil},
		{"call nil", `  undefined_function()`, luaBodyLine, "attempt to call", nil},
		{"stack overflow", "  local function f() return 1 + f() end\n  return f()", luaBodyLine, "stack overflow", nil},
		{"string", `  return "SUCCESS"`, 5, "returned a string", handlers.ErrBadResult},
		{"unknown state", `  return { exitState = "MAYBE" }`, 5, `unknown exitState "MAYBE"`, handlers.ErrBadResult},
		{"state type", `  return { exitState = 1 }`, 5, "exitState is a number", handlers.ErrBadResult},
		{"message type", `  return { exitState = "FAILED", errorMessage = {} }`, 5, "errorMessage is a table", handlers.ErrBadResult},
		{"input not JSON", `  p.input.f = print`, 5, "cannot encode a function", handlers.ErrBadResult},
		{"input cycle", `  p.input.self = p.input`, 5, "nested deeper", handlers.ErrBadResult},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := luaFunc(t, tt.body)
			got, err := luaCallWithin(t, luaCtx(t, nil, nil), h, luaEvent(`{"cpu":4}`))
			t.Log(err)
			var lerr *lua.Error
			if !errors.As(err, &lerr) {
				t.Fatalf("Handle() = %+v, %v; want a *lua.Error", got, err)
			}
			if !strings.HasSuffix(lerr.File, "test.lua") || lerr.Line != tt.wantLine || !strings.Contains(lerr.Message, tt.wantMsg) {
				t.Errorf("Handle() error = %q (line %d), want test.lua line %d with %q", err, lerr.Line, tt.wantLine, tt.wantMsg)
			}
			if !strings.HasPrefix(err.Error(), lerr.File+":") {
				t.Errorf("Handle() error = %q, want it to start with the file", err)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("Handle() error = %v, want it to wrap %v", err, tt.wantErr)
			}
			if errors.Is(err, handlers.ErrTimeout) {
				t.Errorf("Handle() error = %v, want no timeout", err)
			}
			if !reflect.DeepEqual(got, handlers.Result{}) {
				t.Errorf("Handle() = %+v with an error, want the zero Result", got)
			}
		})
	}
}

// TestLuaEventTable checks p, rendered by trigger.json.encode, against
// testdata/lua/event.golden (go test -run TestLuaEventTable -update-lua).
func TestLuaEventTable(t *testing.T) {
	h := luaFunc(t, `  return { exitState = "FAILED", errorMessage = trigger.json.encode(p),
    errorCode = type(p.timeStamp) .. " " .. type(p.deadline) .. " " .. type(p.input.cpu) .. " " .. tostring(p.input.x == trigger.null) }`)
	ev := luaEvent(`{"cpu":4,"tags":["a","b"],"x":null}`)
	ev.Deadline = ev.TimeStamp + 5000
	ev.Extra = map[string]json.RawMessage{"region": json.RawMessage(`"eu-1"`)}
	res, err := h.Handle(luaCtx(t, nil, nil), ev)
	if err != nil {
		t.Fatal(err)
	}
	if res.ErrorCode != "number number number true" {
		t.Errorf("types = %q, want %q", res.ErrorCode, "number number number true")
	}
	var out bytes.Buffer
	if err := json.Indent(&out, []byte(res.ErrorMessage), "", "  "); err != nil {
		t.Fatalf("p is not JSON: %v: %s", err, res.ErrorMessage)
	}
	out.WriteByte('\n')
	golden := filepath.Join("testdata", "lua", "event.golden")
	if *luaUpdate {
		if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Errorf("p = %s, want %s", out.Bytes(), want)
	}
}

// TestLuaVarargs: a chunk has no arg table (it is compiled without one), its
// ... is empty, and a nested vararg function that does not use ... still
// gets Lua 5.1's arg.
func TestLuaVarargs(t *testing.T) {
	src := `local top = select("#", ...)
local function count(...) return arg.n .. "/" .. tostring(arg[3]) end
local function plain(...) return select("#", ...) end
function register() return { "main" } end
function main(p)
  if p == nil then
    return { ref = "varargs", triggerType = "PRE_CREATE", triggerOptions = { "SERVER" }, api = "TRIGGER" }
  end
  local a = arg
  return { exitState = "FAILED", errorCode = top .. " " .. count(1, nil, 3) .. " " .. plain(nil, nil) .. " " .. tostring(a) }
end
`
	h := luaSource(t, src)[0].Handler
	for range 2 {
		res, err := h.Handle(luaCtx(t, nil, nil), luaEvent(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		if want := "0 3/3 2 nil"; res.ErrorCode != want {
			t.Errorf("errorCode = %q, want %q", res.ErrorCode, want)
		}
	}
}

func TestLuaModifiedInput(t *testing.T) {
	const input = `{"cpu":4,"big":12345678901234567890,"neg":-9223372036854775809,"f":1.0,"e":1e3,"tiny":1e-7,` +
		`"tags":["a",null,{"x":[]}],"meta":{"x":null,"empty":{},"list":[]},"s":"caf\u00e9 <b>&\n"}`
	tests := []struct {
		name  string
		input string
		body  string
		want  string // "" for no modified input
	}{
		{"read only", input, "  local c = p.input.cpu + #p.input.tags\n  return { exitState = 'CONTINUE' }", ""},
		{"read only, compact document", `{"cpu":4,"name":"web-1","tags":["a"],"x":null}`, "  local c = p.input.cpu + #p.input.tags", ""},
		{"read only, spaced document", ` { "cpu" : 4 , "tags" : [ "a" ] } `, "  local c = p.input.cpu + #p.input.tags", ""},
		{"read only, duplicate key", `{"cpu":4,"cpu":5}`, "  local c = p.input.cpu", ""},
		{"changed, compact document", `{"cpu":4,"name":"web-1"}`, "  p.input.cpu = 5", `{"cpu":5,"name":"web-1"}`},
		{"same values written back", input, "  p.input.cpu = p.input.cpu\n  p.input.big = p.input.big\n  p.input.meta.x = p.input.meta.x", ""},
		{
			"nested field added", input, "  p.input.meta.added = true",
			`{"cpu":4,"big":12345678901234567890,"neg":-9223372036854775809,"f":1.0,"e":1e3,"tiny":1e-7,` +
				`"tags":["a",null,{"x":[]}],"meta":{"x":null,"empty":{},"list":[],"added":true},"s":"café <b>&\n"}`,
		},
		{
			"array appended, null set, key removed", input,
			"  table.insert(p.input.tags, 'c')\n  p.input.cpu = trigger.null\n  p.input.e = nil\n  p.input.meta.list[1] = 5",
			`{"cpu":null,"big":12345678901234567890,"neg":-9223372036854775809,"f":1.0,"tiny":1e-7,` +
				`"tags":["a",null,{"x":[]},"c"],"meta":{"x":null,"empty":{},"list":[5]},"s":"café <b>&\n"}`,
		},
		{
			"big number changed", `{"big":12345678901234567890,"n":9007199254740993}`, "  p.input.big = p.input.big + 1e6",
			// The new float64 written as encoding/json writes it.
			`{"big":12345678901235567000,"n":9007199254740993}`,
		},
		{"replaced", input, "  p.input = { replaced = true, list = trigger.json.array(), obj = {} }", `{"replaced":true,"list":[],"obj":{}}`},
		{"returned", `{"cpu":4}`, "  return { exitState = 'SUCCESS', input = { cpu = 8 } }", `{"cpu":8}`},
		{"added when absent", "", "  p.input = { 1, 2, 3 }", `[1,2,3]`},
		{"array input", `[1764420000000,300000,1764420000123]`, "  p.input[2] = p.input[2] * 2", `[1764420000000,600000,1764420000123]`},
		{"string input", `"alice"`, "  local s = p.input .. '!'", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := luaFunc(t, tt.body)
			res, err := h.Handle(luaCtx(t, nil, nil), luaEvent(tt.input))
			if err != nil {
				t.Fatalf("Handle() error = %v", err)
			}
			if string(res.Input) != tt.want {
				t.Errorf("Handle() input = %s\nwant %s", res.Input, tt.want)
			}
		})
	}
}

// TestLuaModifiedInputOwned: a modified input returned by one call is its
// own: later calls on the same Lua state leave it as it was.
func TestLuaModifiedInputOwned(t *testing.T) {
	h := luaFunc(t, "  p.input.cpu = p.input.cpu * 2", lua.Options{PoolSize: 1})
	first, err := h.Handle(luaCtx(t, nil, nil), luaEvent(`{"cpu":4}`))
	if err != nil {
		t.Fatal(err)
	}
	for cpu := 5; cpu < 8; cpu++ {
		if _, err := h.Handle(luaCtx(t, nil, nil), luaEvent(fmt.Sprintf(`{"cpu":%d}`, cpu))); err != nil {
			t.Fatal(err)
		}
	}
	if string(first.Input) != `{"cpu":8}` {
		t.Errorf("first call's input = %s after later calls, want {\"cpu\":8}", first.Input)
	}
}

func TestLuaJSON(t *testing.T) {
	h := luaFunc(t, `
  local doc = '{"a":[1,2,{"b":null}],"c":"x","d":{},"e":[],"n":12345678901234567890}'
  local v = assert(trigger.json.decode(doc))
  assert(v.a[3].b == trigger.null and trigger.null == trigger.json.null)
  assert(tostring(trigger.null) == "null")
  local bad, err = trigger.json.decode("{nope")
  assert(bad == nil and type(err) == "string", "decode of bad JSON")
  local nf, err2 = trigger.json.encode({ f = print })
  assert(nf == nil and err2:find("function"), "encode of a function")
  local sparse = trigger.json.encode({ [1] = "a", [1000] = "b" })
  return { exitState = "SUCCESS", errorCode = trigger.json.encode(v), errorMessage = sparse }`)
	res, err := h.Handle(luaCtx(t, nil, nil), luaEvent(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	// What trigger.json.decode read encodes back as it was, big number
	// included.
	if want := `{"a":[1,2,{"b":null}],"c":"x","d":{},"e":[],"n":12345678901234567890}`; res.ErrorCode != want {
		t.Errorf("round trip = %s, want %s", res.ErrorCode, want)
	}
	if want := `{"1":"a","1000":"b"}`; res.ErrorMessage != want {
		t.Errorf("sparse = %s, want %s", res.ErrorMessage, want)
	}
}

func TestLuaClose(t *testing.T) {
	h := luaFunc(t, "return nil")
	if _, err := h.Handle(luaCtx(t, nil, nil), luaEvent(`{}`)); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := h.Close(); err != nil {
			t.Errorf("Close() = %v, want nil", err)
		}
	}
	if _, err := h.Handle(luaCtx(t, nil, nil), luaEvent(`{}`)); !errors.Is(err, lua.ErrClosed) {
		t.Errorf("Handle() after Close error = %v, want ErrLuaClosed", err)
	}
}
