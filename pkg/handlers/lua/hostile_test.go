package lua_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/handlers/lua"
)

// Hostile values crossing the Lua boundary: what an FDL script returns or
// leaves in p.input (NaN, infinities, huge numbers, deep and cyclic tables,
// functions, userdata, odd keys), what it describes itself with,
// and what an event brings in. Every one is converted or refused with an
// error that names the problem; nothing panics.

// hostileScript is an FDL script with one PRE entry point whose body is
// body (p is the event).
const hostileScript = `function register() return { "main" } end

function main(p)
  if p == nil then
    return { ref = "hostile", triggerType = "PRE_CREATE", triggerOptions = { "SERVER" }, api = "TRIGGER" }
  end
%s
end
`

// hostileLoad writes src to a temporary file and loads it with LoadScript.
func hostileLoad(t testing.TB, src string, opts lua.Options) ([]lua.ScriptFunction, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "hostile.lua")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	fns, err := lua.LoadScript(path, opts)
	for _, f := range fns {
		t.Cleanup(func() { _ = f.Handler.Close() })
	}
	return fns, err
}

// hostileHandler loads the entry point of hostileScript with body.
func hostileHandler(t testing.TB, body string) *lua.Handler {
	t.Helper()
	fns, err := hostileLoad(t, fmt.Sprintf(hostileScript, body), lua.Options{})
	if err != nil || len(fns) != 1 {
		t.Fatalf("LoadScript: %d functions, %v", len(fns), err)
	}
	return fns[0].Handler
}

func hostileEvent(input string) *event.Event {
	ev := &event.Event{ID: "01JDQ7Z6W3S6K4V0Q5H3YB3M8C", TriggerType: "PRE_CREATE", TriggerOption: "SERVER", TimeStamp: 1764420000000}
	if input != "" {
		ev.Input = json.RawMessage(input)
	}
	return ev
}

func hostileCall(t testing.TB, h *lua.Handler, ev *event.Event) (handlers.Result, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return h.Handle(ctx, ev)
}

// TestLuaHostileResults: entry points that return or leave odd values.
func TestLuaHostileResults(t *testing.T) {
	deep := `local t = {}; local c = t; for i = 1, 300 do c.n = {}; c = c.n end;`
	rejected := []struct {
		name string
		body string
		want string
	}{
		{"exitState NaN", `return { exitState = 0/0 }`, "exitState is a number, want a string"},
		{"exitState a function", `return { exitState = print }`, "exitState is a function, want a string"},
		{"exitState unknown", `return { exitState = "MAYBE" }`, `unknown exitState "MAYBE" (want SUCCESS, CONTINUE or FAILED)`},
		{"exitState invalid UTF-8", `return { exitState = "FAILED\255" }`, `unknown exitState "FAILED\xff"`},
		{"errorCode a function", `return { exitState = "FAILED", errorCode = function() end }`, "errorCode is a function, want a string"},
		{"errorCode an FDL helper", `return { exitState = "FAILED", errorCode = new("simplehttp") }`, "errorCode is a userdata, want a string"},
		{"metamethods are not run", `return setmetatable({}, { __index = function() error("metamethod ran") end })`, "returned a table with a metatable, want a plain table"},
		{"proxy table", `return setmetatable({}, { __index = { exitState = "FAILED" } })`, "returned a table with a metatable, want a plain table"},
		{"key in another case", `return { exitstate = "FAILED" }`, `unknown key "exitstate" (keys are case-sensitive: exitState)`},
		{"unknown key", `return { exitState = "SUCCESS", reason = "x" }`, `unknown key "reason"`},
		{"number key", `return { "FAILED" }`, "the result has a number key (1)"},
		{"returnCode FAILED", `return { returnCode = "FAILED" }`, "returnCode is FDL's key for action functions"},
		{"action-function keys", `return { returnCode = "SUCCESSFUL", errorString = "x" }`, `unknown key "errorString"`},
		{"an FDL object", `local f = new("SearchFilter"); f.exitState = "FAILED"; return f`, "returned a table with a metatable, want a plain table"},
		{"errorMessage a table", `return { exitState = "FAILED", errorMessage = { "a" } }`, "errorMessage is a table, want a string"},
		{"returns a function", `return function() end`, "the entry point returned a function, want a table or nil"},
		{"returns userdata", `return trigger.null`, "the entry point returned a userdata, want a table or nil"},
		{"returns NaN", `return 0/0`, "the entry point returned a number, want a table or nil"},
		{"returns a string", `return "FAILED"`, "the entry point returned a string, want a table or nil"},
		{"input NaN", `p.input.cpu = 0/0; return {}`, "modified input: json: cannot encode the number NaN"},
		{"input infinity", `p.input.cpu = 1/0; return {}`, "modified input: json: cannot encode the number +Inf"},
		{"input overflow", `p.input.cpu = 1e308 * 10; return {}`, "modified input: json: cannot encode the number +Inf"},
		{"input -infinity", `p.input.cpu = -1/0; return {}`, "modified input: json: cannot encode the number -Inf"},
		{"input a function", `p.input.f = print; return {}`, "modified input: json: cannot encode a function"},
		{"input cyclic", `p.input.self = p.input; return {}`, "modified input: json: nested deeper than 128 levels (a table that contains itself?)"},
		{"input deep", deep + ` p.input.deep = t; return {}`, "modified input: json: nested deeper than 128 levels"},
		{"input boolean key", `p.input[true] = 1; return {}`, "modified input: json: cannot encode a table key that is a boolean"},
		{"input table key", `p.input[{}] = 1; return {}`, "modified input: json: cannot encode a table key that is a table"},
		{"input NaN key", `p.input[0/0] = 1; return {}`, "table index is NaN"},
		{"input too long a string", `p.input.s = string.rep("x", 32 * 1024 * 1024); return {}`, "string.rep: result of 33554432 bytes is larger than the limit of 16777216"},
	}
	for _, tt := range rejected {
		t.Run(tt.name, func(t *testing.T) {
			h := hostileHandler(t, tt.body)
			r, err := hostileCall(t, h, hostileEvent(`{"cpu":4}`))
			if err == nil {
				t.Fatalf("Handle = %+v, want an error", r)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Handle error = %q, want it to contain %q", err, tt.want)
			}
			if !strings.Contains(err.Error(), "hostile.lua") {
				t.Errorf("Handle error = %q, want it to name the script", err)
			}
		})
	}

	accepted := []struct {
		name  string
		body  string
		state handlers.ExitState
		code  string
		input string // the modified input, "" when unmodified
	}{
		{name: "errorCode NaN is its text", body: `return { exitState = "FAILED", errorCode = 0/0 }`, state: handlers.Failed, code: "NaN"},
		{name: "errorCode a huge number is its text", body: `return { exitState = "FAILED", errorCode = 2^70 }`, state: handlers.Failed, code: "1.1805916207174113e+21"},
		{name: "errorCode null is none", body: `return { exitState = "FAILED", errorCode = trigger.null }`, state: handlers.Failed},
		{name: "huge finite numbers", body: `p.input.cpu = 2^63; p.input.tiny = 5e-324; return {}`, state: handlers.Continue,
			input: `{"cpu":9223372036854775808,"tiny":5e-324}`},
		{name: "invalid UTF-8 becomes U+FFFD", body: `p.input.name = "web\255"; p.input.cpu = nil; return {}`, state: handlers.Continue,
			input: `{"name":"web\ufffd"}`},
		{name: "sparse list becomes an object", body: `p.input = {}; p.input[1e9] = 1; return {}`, state: handlers.Continue,
			input: `{"1000000000":1}`},
		{name: "list with a hole", body: `p.input = { 1, nil, 3 }; return {}`, state: handlers.Continue, input: `[1,null,3]`},
		{name: "input replaced by a string", body: `p.input = "x"; return {}`, state: handlers.Continue, input: `"x"`},
		{name: "null survives", body: `p.input.gone = trigger.null; return {}`, state: handlers.Continue, input: `{"cpu":4,"gone":null}`},
	}
	for _, tt := range accepted {
		t.Run(tt.name, func(t *testing.T) {
			h := hostileHandler(t, tt.body)
			r, err := hostileCall(t, h, hostileEvent(`{"cpu":4}`))
			if err != nil {
				t.Fatalf("Handle error = %v", err)
			}
			if r.State() != tt.state || r.ErrorCode != tt.code {
				t.Errorf("Handle = %+v, want state %s code %q", r, tt.state, tt.code)
			}
			var gotIn, wantIn any
			if tt.input != "" {
				if err := json.Unmarshal([]byte(tt.input), &wantIn); err != nil {
					t.Fatal(err)
				}
			}
			if r.Input != nil {
				if err := json.Unmarshal(r.Input, &gotIn); err != nil {
					t.Fatalf("modified input %q is not JSON: %v", r.Input, err)
				}
			}
			if fmt.Sprint(gotIn) != fmt.Sprint(wantIn) {
				t.Errorf("modified input = %s, want %s", r.Input, tt.input)
			}
		})
	}
}

// TestLuaHostileEventInput: events a script cannot be given, and odd ones
// it can.
func TestLuaHostileEventInput(t *testing.T) {
	h := hostileHandler(t, `return { exitState = "FAILED", errorCode = type(p.input), errorMessage = tostring(p.input and p.input.s) }`)
	tests := []struct {
		name, input, want string
	}{
		{"nested past the limit", hostileNest(129, "1"), "event input"},
		{"not JSON", `{"cpu":NaN}`, "event input"},
		{"truncated", `{"cpu":`, "event input"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := hostileCall(t, h, hostileEvent(tt.input))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Handle(%.40q) = %+v, %v, want an error about the %s", tt.input, r, err, tt.want)
			}
		})
	}
	for _, tt := range []struct{ name, input, msg string }{
		{"invalid UTF-8", "{\"s\":\"a\xffb\"}", "a\uFFFDb"},
		{"lone surrogate", `{"s":"\ud800"}`, "\uFFFD"},
		{"huge number", `{"s":1e400}`, "+Inf"},
		{"nested at the limit", `{"s":` + hostileNest(126, "1") + `}`, "table: "},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r, err := hostileCall(t, h, hostileEvent(tt.input))
			if err != nil {
				t.Fatalf("Handle(%.40q) error = %v", tt.input, err)
			}
			if !strings.HasPrefix(r.ErrorMessage, tt.msg) {
				t.Errorf("p.input.s = %q, want it to start with %q", r.ErrorMessage, tt.msg)
			}
		})
	}
}

// TestLuaHostileDescriptions: description tables with wrong types, and
// scripts that misbehave while loading. LoadScript reports each with the
// file, the line and what is wrong, and skips only what is broken.
func TestLuaHostileDescriptions(t *testing.T) {
	entry := func(desc string) string {
		return `function register() return { "main" } end
function main(p)
  if p == nil then return ` + desc + ` end
  return {}
end
`
	}
	const base = `ref = "f", triggerType = "PRE_CREATE", triggerOptions = { "SERVER" }`
	tests := []struct {
		name string
		src  string
		want string
	}{
		// The two runaway cases load with a 200ms timeout, the others with
		// 20s: only the runaways may run into it, however slow the machine.
		{"ref a number", entry(`{ ref = 5, triggerType = "PRE_CREATE" }`), "entry point main: ref is a number (5), want a string"},
		{"ref a table", entry(`{ ref = {}, triggerType = "PRE_CREATE" }`), "entry point main: ref is a table"},
		{"ref a function", entry(`{ ref = print, triggerType = "PRE_CREATE" }`), "entry point main: ref is a function"},
		{"no ref", entry(`{ triggerType = "PRE_CREATE" }`), "entry point main: the description has no ref"},
		{"triggerType a bool", entry(`{ ref = "f", triggerType = true }`), "entry point main: triggerType is a boolean (true), want a string"},
		{"triggerType userdata", entry(`{ ref = "f", triggerType = trigger.null }`), "entry point main: triggerType is a userdata"},
		{"priority NaN", entry(`{ ` + base + `, priority = 0/0 }`), "entry point main: priority is NaN, want an integer"},
		{"priority infinite", entry(`{ ` + base + `, priority = 1/0 }`), "entry point main: priority is +Inf, want an integer"},
		{"priority huge", entry(`{ ` + base + `, priority = 2^60 }`), "entry point main: priority is 1.152921504606847e+18, want an integer"},
		{"priority a fraction", entry(`{ ` + base + `, priority = 1.5 }`), "entry point main: priority is 1.5, want an integer"},
		{"priority a string", entry(`{ ` + base + `, priority = "high" }`), `entry point main: priority is a string ("high"), want an integer`},
		{"version a table", entry(`{ ` + base + `, version = {} }`), "entry point main: version is a table, want an integer"},
		{"triggerOptions a string", entry(`{ ref = "f", triggerType = "PRE_CREATE", triggerOptions = "SERVER" }`), `triggerOptions is a string (SERVER), want a list of strings such as {"SERVER"}`},
		{"triggerOptions numbers", entry(`{ ref = "f", triggerType = "PRE_CREATE", triggerOptions = { 1, 2 } }`), "triggerOptions is a list whose item 1 is a number, want a name"},
		{"triggerOptions a map", entry(`{ ref = "f", triggerType = "PRE_CREATE", triggerOptions = { a = "SERVER" } }`), "triggerOptions is a table that is not a list"},
		{"triggerOptions cyclic", `function register() return { "main" } end
function main(p)
  if p == nil then local o = {}; o[1] = o; return { ref = "f", triggerType = "PRE_CREATE", triggerOptions = o } end
end
`, "triggerOptions is a list whose item 1 is a table, want a name"},
		{"schedule a number", entry(`{ ref = "f", triggerType = "SCHEDULED", schedule = 5 }`), "schedule is a number, want a table"},
		{"schedule unit NaN", entry(`{ ref = "f", triggerType = "SCHEDULED", schedule = { frequency = { MINUTE = 0/0 } } }`), "schedule.frequency.MINUTE is NaN, want a whole number"},
		{"schedule unit huge", entry(`{ ref = "f", triggerType = "SCHEDULED", schedule = { frequency = { MINUTE = 2^40 } } }`), "schedule.frequency.MINUTE is 1099511627776, want a whole number"},
		{"schedule unit negative", entry(`{ ref = "f", triggerType = "SCHEDULED", schedule = { frequency = { HOUR = -1 } } }`), "schedule.frequency.HOUR is -1, want a whole number"},
		{"schedule unknown unit", entry(`{ ref = "f", triggerType = "SCHEDULED", schedule = { frequency = { FORTNIGHT = 1 } } }`), "schedule.frequency has the key FORTNIGHT, want SECOND, MINUTE, HOUR, DAY or WEEK"},
		{"schedule unknown part", entry(`{ ref = "f", triggerType = "SCHEDULED", schedule = { every = { MINUTE = 1 } } }`), "schedule has the key every, want start, frequency, beUUID or customerUUID"},
		{"schedule beUUID a number", entry(`{ ref = "f", triggerType = "SCHEDULED", schedule = { frequency = { MINUTE = 1 }, beUUID = 7 } }`), "schedule.beUUID is a number, want a UUID string"},
		{"schedule beUUID empty", entry(`{ ref = "f", triggerType = "SCHEDULED", schedule = { frequency = { MINUTE = 1 }, beUUID = "" } }`), "schedule.beUUID is an empty string, want a UUID string (or no beUUID)"},
		{"schedule beUUID with a space", entry(`{ ref = "f", triggerType = "SCHEDULED", schedule = { frequency = { MINUTE = 1 }, beUUID = "be 1" } }`), `the billing entity UUID "be 1" has a character other than`},
		{"schedule beUUID too long", entry(`{ ref = "f", triggerType = "SCHEDULED", schedule = { frequency = { MINUTE = 1 }, beUUID = string.rep("a", 65) } }`), "the billing entity UUID is 65 characters, more than 64"},
		{"schedule customer without beUUID", entry(`{ ref = "f", triggerType = "SCHEDULED", schedule = { frequency = { MINUTE = 1 }, customerUUID = "c-1" } }`), "a customer UUID is given without a billing entity UUID"},
		{"schedule beUUID twice", entry(`{ ref = "f", triggerType = "SCHEDULED", schedule = { frequency = { MINUTE = 1 }, beUUID = "a", BEUUID = "b" } }`), "schedule has "},
		{"schedule part a string", entry(`{ ref = "f", triggerType = "SCHEDULED", schedule = { frequency = "5m" } }`), "schedule.frequency is a string, want a table such as {MINUTE = 5}"},
		{"description a function", entry(`print`), "entry point main returned a function when called with nil, want its description table"},
		{"register returns a cyclic table", `function register() local t = {}; t[1] = t; return t end`, "register() returned a list whose item 1 is a table, want a name"},
		{"register returns a string", `function register() return "main" end`, "register() returned a string, want a list of entry-point names"},
		{"entry point not a function", `main = 5
function register() return { "main" } end`, `entry point "main" is a number, not a function`},
		{"runaway top-level code", `while true do end`, "the top-level code did not finish within the load timeout of 200ms"},
		{"runaway description", `function register() return { "main" } end
function main(p) while true do end end`, "the description call of main did not finish within the load timeout of 200ms"},
		{"infinite recursion", `function register() return { "main" } end
function main(p) return 1 + main(p) end`, "stack overflow"},
		{"memory bomb", `local s = string.rep("x", 1024 * 1024 * 1024)`, "string.rep: result of 1073741824 bytes is larger than the limit of 16777216"},
		{"memory bomb by doubling", `local s = "x"; while true do s = s .. s end`, "larger than the limit of 16777216"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			timeout := 20 * time.Second
			if strings.HasPrefix(tt.name, "runaway") {
				timeout = 200 * time.Millisecond
			}
			fns, err := hostileLoad(t, tt.src, lua.Options{LoadTimeout: timeout})
			if err == nil {
				t.Fatalf("LoadScript = %d functions, no error; want an error containing %q", len(fns), tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("LoadScript error = %q, want it to contain %q", err, tt.want)
			}
			if !strings.Contains(err.Error(), "hostile.lua") {
				t.Errorf("LoadScript error = %q, want it to name the file", err)
			}
			var le *lua.Error
			if !errors.As(err, &le) {
				t.Errorf("LoadScript error %T is not a *lua.Error", err)
			}
		})
	}
}

// hostileGenerators is the Lua source of the values FuzzLuaHostile draws
// from: every kind of value a script can produce, well-formed or not.
const hostileGenerators = `
local gen = {
  function(p) return nil end,
  function(p) return 0/0 end,
  function(p) return 1/0 end,
  function(p) return -1/0 end,
  function(p) return math.huge end,
  function(p) return 2^53 + 1 end,
  function(p) return 1e308 end,
  function(p) return -0.0 end,
  function(p) return 5e-324 end,
  function(p) return "FAILED" end,
  function(p) return "success" end,
  function(p) return "Continue" end,
  function(p) return "\255\254" end,
  function(p) return string.rep("x", 1000) end,
  function(p) return print end,
  function(p) return trigger.null end,
  function(p) local t = {}; t.self = t; return t end,
  function(p) local t = {}; local c = t; for i = 1, 140 do c.n = {}; c = c.n end; return t end,
  function(p) return { [true] = 1 } end,
  function(p) return { 1, 2, nil, 4 } end,
  function(p) local t = {}; t[1e9] = 1; return t end,
  function(p) return setmetatable({}, { __index = function() error("metamethod ran") end }) end,
  function(p) return p.input end,
  function(p) return p end,
  function(p) return { a = { b = { c = 0/0 } } } end,
  function(p) return true end,
  function(p) return { exitState = "FAILED" } end,
  function(p) return trigger.array() end,
  function(p) return { [1.5] = "x", [-1] = "y" } end,
}

local function pick(s, i, p)
  local n = tonumber(s and s[i]) or 0
  return gen[(n % #gen) + 1](p)
end
`

// FuzzLuaHostile runs one script whose entry point builds its result and
// its modified input from values chosen by the fuzzer (see
// hostileGenerators), for events with fuzzed inputs. Handle never panics;
// it returns a valid exit state and a JSON input, or an error that says
// what was wrong.
func FuzzLuaHostile(f *testing.F) {
	for i := range 30 {
		f.Add(uint8(i), uint8(i+1), uint8(i+2), uint8(i*7), uint8(i%4), []byte(`{"cpu":4,"tags":["a"]}`))
	}
	f.Add(uint8(8), uint8(1), uint8(2), uint8(16), uint8(1), []byte(hostileNest(127, "1")))
	f.Add(uint8(0), uint8(0), uint8(0), uint8(0), uint8(1), []byte("{\"s\":\"\xff\"}"))
	f.Add(uint8(0), uint8(0), uint8(0), uint8(0), uint8(1), []byte(`1e400`))
	body := hostileGenerators + `
function main(p)
  if p == nil then
    return { ref = "hostile", triggerType = "PRE_CREATE", triggerOptions = { "SERVER" }, api = "TRIGGER" }
  end
  local s = p.sel
  local mode = (tonumber(s[5]) or 0) % 4
  if mode == 1 and type(p.input) == "table" then p.input.x = pick(s, 4, p)
  elseif mode == 2 then p.input = pick(s, 4, p)
  elseif mode == 3 then return pick(s, 4, p) end
  return { exitState = pick(s, 1, p), errorCode = pick(s, 2, p), errorMessage = pick(s, 3, p) }
end
function register() return { "main" } end
`
	fns, err := hostileLoad(f, body, lua.Options{})
	if err != nil || len(fns) != 1 {
		f.Fatalf("LoadScript: %d functions, %v", len(fns), err)
	}
	h := fns[0].Handler
	f.Fuzz(func(t *testing.T, a, b, c, d, mode uint8, input []byte) {
		ev := hostileEvent("")
		if json.Valid(input) {
			ev.Input = input
		}
		ev.Extra = map[string]json.RawMessage{"sel": json.RawMessage(fmt.Sprintf("[%d,%d,%d,%d,%d]", a, b, c, d, mode))}
		r, err := hostileCall(t, h, ev)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("Handle returned an empty error")
			}
			var le *lua.Error
			if !errors.As(err, &le) && !strings.Contains(err.Error(), "handlers: lua") {
				t.Fatalf("Handle error %T %q is not the Lua kind's", err, err)
			}
			return
		}
		switch r.ExitState {
		case handlers.Success, handlers.Continue, handlers.Failed:
		default:
			t.Fatalf("Handle = %+v: exit state %q", r, r.ExitState)
		}
		if r.Input != nil && !json.Valid(r.Input) {
			t.Fatalf("Handle = %+v: modified input is not JSON", r)
		}
	})
}

// hostileNest wraps v in n JSON arrays.
func hostileNest(n int, v string) string {
	return strings.Repeat("[", n) + v + strings.Repeat("]", n)
}
