package lua_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/handlers/lua"
)

// luaAttack returns a handler that runs body when the event's input has
// attack = true and returns CONTINUE otherwise. With a pool of one state,
// the calls after an attack run on the state the attack ran on.
func luaAttack(t *testing.T, body string) *lua.Handler {
	t.Helper()
	return luaFunc(t, fmt.Sprintf(`  if p.input.attack then
%s
    return { exitState = "SUCCESS", errorMessage = "the attack got through" }
  end
  return { exitState = "CONTINUE" }`, body), lua.Options{PoolSize: 1})
}

// luaCheckNextCall checks that h still serves an ordinary call.
func luaCheckNextCall(t *testing.T, h handlers.Handler) {
	t.Helper()
	res, err := h.Handle(luaCtx(t, nil, nil), luaEvent(`{"attack":false}`))
	if err != nil || res.State() != handlers.Continue {
		t.Errorf("the next call = %+v, %v; want CONTINUE", res, err)
	}
}

func TestLuaSandboxEscapes(t *testing.T) {
	tests := []struct {
		name string
		body string
	}{
		{"io.open", `local f = io.open("/etc/passwd")`},
		{"io.popen", `local f = io.popen("id")`},
		{"os.execute", `os.execute("id")`},
		{"os.getenv", `local home = os.getenv("HOME")`},
		{"os.exit", `os.exit(1)`},
		{"os.remove", `os.remove("/tmp/x")`},
		{"os.setenv", `os.setenv("X", "1")`},
		{"require", `local os = require("os")`},
		{"package", `local loaded = package.loaded`},
		{"module", `module("x")`},
		{"dofile", `dofile("/etc/passwd")`},
		{"loadfile", `local f = loadfile("/etc/passwd")`},
		{"loadstring", `local f = loadstring("return 1")`},
		{"load text", `local f = load(function() return nil end)`},
		{"load bytecode", `local f = load(string.dump(function() end))`},
		{"string.dump", `local b = string.dump(print)`},
		{"debug.getinfo", `local i = debug.getinfo(1)`},
		{"debug.getregistry", `local r = debug.getregistry()`},
		{"setfenv", `setfenv(1, {})`},
		{"getfenv", `getfenv(0).leak = true`},
		{"collectgarbage", `collectgarbage("collect")`},
		{"coroutine", `local co = coroutine.create(function() end)`},
		{"channel", `local ch = channel.make()`},
		{"newproxy", `local u = newproxy(true)`},
		{"_printregs", `_printregs()`},
		{"string metatable", `getmetatable("").__index.upper = nil`},
		{"rawset string metatable", `rawset(getmetatable(""), "__index", {})`},
		{"metatable of _G", `setmetatable(_G, { __index = function() return 1 end })`},
		{"shared globals", `getmetatable(_G).__index.print = nil`},
		{"shared library", `getmetatable(string).__index.rep = nil`},
		{"metatable on numbers", `setmetatable(1, { __index = { leak = true } })`},
		{"metatable on functions", `setmetatable(print, {})`},
		{"metatable on null", `setmetatable(trigger.null, {})`},
		{"string.rep 2^30", `local s = string.rep("x", 2^30)`},
		{"string.rep method", `local s = ("x"):rep(2^30)`},
		{"string.rep huge count", `local s = string.rep("xy", 1e300)`},
		{"string.format width", `local s = string.format("%0999999d", 1)`},
		{"string.format size", `local s = string.rep("x", 2^22)
    local r = string.format("%s%s%s%s%s", s, s, s, s, s)`},
		{"concat doubling", `local s = "x"
    while true do s = s .. s end`},
		{"concat chain", `local s = string.rep("x", 2^23)
    local r = s .. s .. s`},
		{"concat number", `local s = string.rep("1", 2^24)
    local r = s .. 1`},
		{"table.concat", `local s = string.rep("x", 2^20)
    local t = {}
    for i = 1, 20 do t[i] = s end
    local r = table.concat(t)`},
		{"gsub amplification", `local s = string.rep("x", 2^13)
    local r = s:gsub(".", s)`},
		{"json encode size", `local s = string.rep("x", 2^20)
    local t = {}
    for i = 1, 20 do t[i] = s end
    local r = assert(trigger.json.encode(t))`},
		{"unpack huge", `local a = unpack({}, 1, 1e8)`},
		{"math.random empty", `local r = math.random(0)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := luaAttack(t, "    "+tt.body)
			res, err := luaCallWithin(t, luaCtx(t, nil, nil), h, luaEvent(`{"attack":true}`))
			var lerr *lua.Error
			if !errors.As(err, &lerr) || errors.Is(err, handlers.ErrTimeout) {
				t.Fatalf("Handle() = %+v, %v; want a script error", res, err)
			}
			if !reflect.DeepEqual(res, handlers.Result{}) {
				t.Errorf("Handle() = %+v with an error, want the zero Result", res)
			}
			t.Log(err)
			luaCheckNextCall(t, h)
		})
	}
}

// TestLuaSandboxKeeps checks what scripts may use.
func TestLuaSandboxKeeps(t *testing.T) {
	h := luaFunc(t, `
  assert(type(os.time()) == "number" and type(os.clock()) == "number" and type(os.date("%Y")) == "string")
  assert(os.difftime(2, 1) == 1)
  local r = math.random()
  assert(r >= 0 and r < 1)
  local n = math.random(6)
  assert(n >= 1 and n <= 6)
  local m = math.random(-3, 3)
  assert(m >= -3 and m <= 3)
  math.randomseed(42)
  assert(math.floor(2.5) == 2 and math.huge > 1e300 and math.pi > 3)
  assert(("abc"):upper() == "ABC" and string.format("%5.2f|%q", 3.14159, "a") == " 3.14|\"a\"")
  assert(select("#", pcall(error, "x")) == 2)
  local ok, err = pcall(error, { code = 7 })
  assert(not ok and err.code == 7)
  local ok2, v, w = xpcall(function() return 5, 6 end, function(e) return e end)
  assert(ok2 and v == 5 and w == 6)
  local g
  local ok3, e3 = xpcall(function()
    local x = 1
    g = function() x = x + 1; return x end
    error("e", 0)
  end, function(e) return "handled: " .. e end)
  local a, b, c, d, e, f = 10, 20, 30, 40, 50, 60
  assert(not ok3 and e3 == "handled: e" and g() == 2, "xpcall closures")
  local ok4, e4 = xpcall(function() error("first") end, function(e) error("second", 0) end)
  assert(not ok4 and e4 == "second")
  local t = setmetatable({}, { __index = function(_, k) return k .. "!" end })
  assert(t.hi == "hi!")
  local c = setmetatable({}, { __concat = function(a, b) return "meta" end })
  assert(("x" .. c) == "meta" and (c .. "x") == "meta" and ("a" .. "b" .. c) == "ameta")
  assert(("a" .. 1 .. "b" .. 2.5) == "a1b2.5")
  local function varargs(...) return "<" .. ... end
  assert(varargs("x", "y") == "<x")
  local function two() return "p", "q" end
  assert(("<" .. two()) == "<p")
  assert(table.concat({ 1, 2, 3 }, ",") == "1,2,3")
  local words = {}
  for w in ("one two three"):gmatch("%a+") do words[#words + 1] = w end
  assert(#words == 3 and words[3] == "three")
  for k, v in ("a=1, b=2"):gmatch("(%w+)=(%w+)") do words[k] = v end
  assert(words.a == "1" and words.b == "2")
  assert(select(2, ("hello"):gsub("l", "L")) == 2)
  assert(("hello world"):gsub("(%w+)", "<%1>") == "<hello> <world>")
  assert(("hello"):gsub("", "-") == "-h-e-l-l-o-")
  assert(("abc"):gsub("%w", "%0%0") == "aabbcc")
  assert(("abc"):gsub("%w", "%%") == "%%%")
  assert(("hello"):gsub("l", "L", 1) == "heLlo")
  assert(("$name is $age"):gsub("%$(%w+)", { name = "bob", age = 3 }) == "bob is 3")
  assert(("abc"):gsub("%w", function(c) if c == "b" then return false end return c:upper() end) == "AbC")
  assert(("abc"):gsub("()b", "%1") == "a2c")
  assert(("  trim  "):gsub("^%s+", "") == "trim  ")
  assert(("x"):rep(3) == "xxx" and ("x"):rep(0) == "" and ("x"):rep(-1) == "")
  print("printed", 1, true, nil)
  return { exitState = "SUCCESS" }`)
	logs := &luaLogs{}
	res, err := h.Handle(luaCtx(t, nil, logs), luaEvent(`{}`))
	if err != nil || res.State() != handlers.Success {
		t.Fatalf("Handle() = %+v, %v; want SUCCESS", res, err)
	}
	recs := logs.all()
	if len(recs) != 1 || recs[0].Message != "printed\t1\ttrue\tnil" || luaAttrs(recs[0])["source"] != "print" {
		t.Errorf("print logged %+v, want one record %q", recs, "printed\t1\ttrue\tnil")
	}
}

// TestLuaLibrariesInCall checks the call's own libraries, made on their
// first lookup: one table per library whatever the path to it, what the
// call sets on one seen through every path, and the documented corner
// cases (envProto).
func TestLuaLibrariesInCall(t *testing.T) {
	h := luaFunc(t, `
  assert(rawget(_G, "math") == nil, "math before its first use")
  local m = math
  assert(m ~= nil and rawget(_G, "math") == m and _G.math == m, "math is the call's own table")
  assert(m.floor(2.5) == 2 and m.double == nil and string.shout == nil and trigger.json.mine == nil, "a clean call")
  m.double = function(x) return 2 * x end
  assert(math.double(2) == 4 and _G.math.double(3) == 6)
  string.shout = function(s) return s:upper() .. "!" end
  assert(("hi"):shout() == "HI!", "strings index the call's string table")
  local j = trigger.json
  assert(j ~= nil and trigger.json == j and _G.trigger.json == j)
  assert(j.encode({ a = 1 }) == '{"a":1}')
  j.mine = 1
  assert(trigger.json.mine == 1)
  local seen = {}
  for k in pairs(_G) do seen[k] = true end
  assert(seen.math and seen.trigger and seen.string and not seen.os, "pairs(_G) lists the libraries used")
  assert(os.time() > 0 and seen.os == nil)
  table = nil
  assert(table ~= nil and table.concat({ 1, 2 }) == "12", "assigning nil does not hide a library")
  local t = { }
  assert(_G[t] == nil and _G[1] == nil, "keys that are not strings")
  assert(nosuchlib == nil)
  return { exitState = "SUCCESS" }`)
	for i := range 2 {
		res, err := h.Handle(luaCtx(t, nil, nil), luaEvent(`{}`))
		if err != nil || res.State() != handlers.Success {
			t.Fatalf("call %d: Handle() = %+v, %v; want SUCCESS", i+1, res, err)
		}
	}
}

func TestLuaNoStateBetweenCalls(t *testing.T) {
	h := luaSource(t, `
local cache = {}
counter = (counter or 0) + 1

function register()
  return { "main" }
end

function main(p)
  if p == nil then
    return { ref = "isolation", triggerType = "PRE_CREATE", triggerOptions = { "SERVER" } }
  end
  if p.input.phase == "set" then
    leaked = "yes"
    cache.x = 1
    string.custom = function() return 1 end
    math.floor = nil
    table.insert = nil
    os.time = nil
    trigger.extra = 1
    trigger.json.extra = 1
    _G.viaG = 1
    rawset(_G, "viaRawset", 1)
    pcall(setmetatable, _G, { __index = function() return "meta" end })
    pcall(setmetatable, string, {})
    if p.input.fail then error("fail after the changes") end
    return { exitState = "SUCCESS" }
  end
  local seen = {}
  local function saw(what) seen[#seen + 1] = what end
  if rawget(_G, "leaked") ~= nil then saw("global") end
  if cache.x ~= nil then saw("file-level local") end
  if string.custom ~= nil then saw("string") end
  if ("x").custom ~= nil then saw("string methods") end
  if math.floor == nil then saw("math") end
  if table.insert == nil then saw("table") end
  if os.time == nil then saw("os") end
  if trigger.extra ~= nil or trigger.json.extra ~= nil then saw("trigger") end
  if rawget(_G, "viaG") ~= nil or rawget(_G, "viaRawset") ~= nil then saw("_G") end
  if getmetatable(_G) ~= false or getmetatable(string) ~= false then saw("metatables") end
  if counter ~= 1 then saw("top-level ran " .. counter .. " times") end
  return { exitState = "SUCCESS", errorMessage = table.concat(seen, ", ") }
end
`, lua.Options{PoolSize: 1})[0].Handler
	for _, set := range []string{`{"phase":"set"}`, `{"phase":"set","fail":true}`} {
		if _, err := h.Handle(luaCtx(t, nil, nil), luaEvent(set)); err != nil && !strings.Contains(set, "fail") {
			t.Fatalf("call 1 (%s): %v", set, err)
		}
		res, err := h.Handle(luaCtx(t, nil, nil), luaEvent(`{"phase":"check"}`))
		if err != nil {
			t.Fatalf("call 2: %v", err)
		}
		if res.ErrorMessage != "" {
			t.Errorf("after %s, call 2 saw what call 1 left: %s", set, res.ErrorMessage)
		}
	}
}

// TestLuaDeadline checks that a script that never ends stops when the
// call's context does, whatever it hides behind.
func TestLuaDeadline(t *testing.T) {
	tests := []struct {
		name string
		body string
	}{
		{"loop", `while true do end`},
		{"loop of pcall of loop", `while true do pcall(function() while true do end end) end`},
		{"pcall of loop", `local ok, err = pcall(function() while true do end end)`},
		{"pcall in pcall", `local ok = pcall(pcall, function() while true do end end)`},
		{"xpcall of loop", `local ok = xpcall(function() while true do end end, function(e) return e end)`},
		{"xpcall handler loops", `local ok = xpcall(function() error("x") end, function(e) while true do end end)`},
		{"loop of pcall of error", `while true do local ok = pcall(error, "x") end`},
		{"tail call", `local function f() return f() end
    do return f() end`},
		{"numeric for", `for i = 1, math.huge do local s = tostring(i) end`},
		{"table growth", `local t = {}
    local i = 0
    while true do i = i + 1; t[i] = { i } end`},
		{"string growth", `local s = ""
    while true do s = s .. "x" end`},
		{"gsub callback", `local r = string.rep("x", 100):gsub(".", function(c) while true do end end)`},
		{"sort comparator", `table.sort({ 3, 2, 1, 5, 4 }, function(a, b) while true do end end)`},
		{"index metamethod", `local t = setmetatable({}, { __index = function(t, k) while true do end end })
    local x = t.foo`},
		{"tostring metamethod", `local t = setmetatable({}, { __tostring = function() while true do end end })
    print(t)`},
		{"host API loop", `while true do trigger.json.encode({ 1, 2, 3 }) end`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := luaAttack(t, "    "+tt.body)
			ctx, cancel := context.WithTimeout(luaCtx(t, nil, nil), 200*time.Millisecond)
			defer cancel()
			res, err := luaCallWithin(t, ctx, h, luaEvent(`{"attack":true}`))
			if !errors.Is(err, handlers.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Handle() = %+v, %v; want a timeout", res, err)
			}
			var lerr *lua.Error
			if !errors.As(err, &lerr) {
				t.Errorf("Handle() error = %v, want a *lua.Error", err)
			}
			if !reflect.DeepEqual(res, handlers.Result{}) {
				t.Errorf("Handle() = %+v with an error, want the zero Result", res)
			}
			t.Log(err)
			luaCheckNextCall(t, h)
		})
	}
}

func TestLuaTimeoutMiddleware(t *testing.T) {
	h := handlers.Chain(luaFunc(t, `  while true do pcall(function() while true do end end) end`),
		handlers.Recover(), handlers.Timeout(200*time.Millisecond))
	res, err := luaCallWithin(t, luaCtx(t, nil, nil), h, luaEvent(`{}`))
	if !errors.Is(err, handlers.ErrTimeout) || !reflect.DeepEqual(res, handlers.Result{}) {
		t.Errorf("Handle() = %+v, %v; want a timeout", res, err)
	}
}

func TestLuaCancel(t *testing.T) {
	h := luaAttack(t, `    while true do end`)
	ctx, cancel := context.WithCancel(luaCtx(t, nil, nil))
	stop := time.AfterFunc(100*time.Millisecond, cancel)
	defer stop.Stop()
	res, err := luaCallWithin(t, ctx, h, luaEvent(`{"attack":true}`))
	if !errors.Is(err, context.Canceled) || errors.Is(err, handlers.ErrTimeout) {
		t.Errorf("Handle() = %+v, %v; want an error wrapping context.Canceled and not a timeout", res, err)
	}
	// Already cancelled: nothing runs.
	res, err = h.Handle(ctx, luaEvent(`{"attack":false}`))
	if !errors.Is(err, context.Canceled) || !reflect.DeepEqual(res, handlers.Result{}) {
		t.Errorf("Handle(cancelled ctx) = %+v, %v; want context.Canceled", res, err)
	}
	luaCheckNextCall(t, h)
}

// TestLuaConcat checks the .. operator, which the compiler turns into calls
// of the guarded concatenation, wherever it may appear.
func TestLuaConcat(t *testing.T) {
	h := luaFunc(t, `
  local t = { ["k" .. 1] = "v" .. 2, "a" .. "b" }
  assert(t.k1 == "v2" and t[1] == "ab", "table constructor")
  local i = 0
  while ("x" .. i) ~= "x3" do i = i + 1 end
  local j = 0
  repeat j = j + 1 until ("y" .. j) == "y2"
  local n = 0
  for k = 1, #("ab" .. "c") do n = n + 1 end
  assert(n == 3, "numeric for")
  for k in pairs({ ["z" .. 1] = 1 }) do assert(k == "z1", "generic for") end
  if ("a" .. "b") ~= "ab" then error("if") elseif ("c" .. "d") ~= "cd" then error("elseif") end
  local function f(...) return select("#", ...), ... end
  local c, a, b = f("a" .. "b", "c" .. "d")
  assert(c == 2 and a == "ab" and b == "cd", "arguments")
  local o = { name = "o" }
  function o:greet(s) return "hi " .. s .. " from " .. self.name end
  assert(o:greet("x" .. "y") == "hi xy from o", "method")
  assert(1 .. "" == "1" and 1.5 .. "" == "1.5" and -0.25 .. "|" .. 10 / 2 == "-0.25|5", "numbers")
  assert(("a" .. "b") .. ("c" .. "d") == "abcd", "parentheses")
  local ok, err = pcall(function() return "a" .. {} end)
  assert(not ok and err:find("concatenate a table"), err)
  local s = ""
  for k = 1, 100 do s = s .. k % 10 end
  assert(#s == 100, "loop")
  return { exitState = "SUCCESS", errorMessage = (function() return "r" .. "e" .. "t" end)() }`)
	res, err := h.Handle(luaCtx(t, nil, nil), luaEvent(`{}`))
	if err != nil || res.ErrorMessage != "ret" {
		t.Fatalf("Handle() = %+v, %v; want SUCCESS ret", res, err)
	}
}

// TestLuaStateAfterError checks that a state that served a failed call
// serves the next ones as a fresh one would, closures included.
func TestLuaStateAfterError(t *testing.T) {
	h := luaFunc(t, `
  local a, b, c = 1, 2, 3
  local f = function() a = a + 1; return a + b + c end
  if p.input.fail then
    local x = 10
    local g = function() x = x + 1; return x end
    g()
    local function deep(n) if n == 0 then error("fail") end return deep(n - 1) end
    deep(50)
  end
  local y = 100
  local h = function() y = y + 1; return y end
  local r1, r2 = f(), h()
  local q1, q2, q3, q4, q5, q6 = 7, 7, 7, 7, 7, 7
  return { exitState = "SUCCESS", errorMessage = r1 .. "," .. r2 .. "," .. f() .. "," .. h() }`,
		lua.Options{PoolSize: 1})
	for i := range 5 {
		if _, err := h.Handle(luaCtx(t, nil, nil), luaEvent(`{"fail":true}`)); err == nil {
			t.Fatalf("round %d: failing call: error = nil", i)
		}
		res, err := h.Handle(luaCtx(t, nil, nil), luaEvent(`{"fail":false}`))
		if err != nil || res.ErrorMessage != "7,101,8,102" {
			t.Fatalf("round %d: call after an error = %+v, %v; want 7,101,8,102", i, res, err)
		}
	}
}
